//! Processes as `/proc` shows them: their state, what they wait in, their open descriptors
//! and what each descriptor is (a pipe end, a FIFO, a socket, a file, a message queue).
//!
//! Everything here reads `/proc` only; a process that vanishes while it is read is simply
//! left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::fs::FileTypeExt;

/// The magic number of the mqueue filesystem (`statfs(2)`): a descriptor on it is a POSIX
/// message queue.
const MQUEUE_MAGIC: i64 = 0x1980_0202;

/// The fields of `/proc/PID/stat` the tests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Process (or thread) id.
    pub pid: i32,
    /// Executable name, truncated to 15 bytes by the kernel.
    pub comm: String,
    /// R running, S sleeping, D uninterruptible, Z zombie, T stopped.
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// CPU time in user mode, in clock ticks.
    pub utime: u64,
    /// CPU time in kernel mode, in clock ticks.
    pub stime: u64,
    /// When the process started, in clock ticks since boot (`CLOCK_BOOTTIME`).
    pub starttime: u64,
}

/// Parses a `stat` file (`/proc/PID/stat` or `/proc/PID/task/TID/stat`).
pub fn parse_stat(text: &str) -> Option<Stat> {
    // "PID (COMM) STATE PPID PGRP SESSION TTY TPGID FLAGS MINFLT CMINFLT MAJFLT CMAJFLT
    // UTIME STIME ...", where COMM may hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_owned();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    Some(Stat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgid: rest.get(2)?.parse().ok()?,
        utime: rest.get(11)?.parse().ok()?,
        stime: rest.get(12)?.parse().ok()?,
        starttime: rest.get(19)?.parse().ok()?,
    })
}

/// Reads `/proc/PID/stat`; `None` once the process is gone (a zombie is still there).
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process in `/proc`.
pub fn all() -> Vec<Stat> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The direct children of `pid`, zombies included, lowest pid first.
pub fn children(pid: i32) -> Vec<Stat> {
    let mut out: Vec<Stat> = all().into_iter().filter(|p| p.ppid == pid).collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// Every descendant of `root` (not `root` itself), parents before their children.
pub fn descendants(root: i32) -> Vec<Stat> {
    let procs = all();
    let mut by_parent: BTreeMap<i32, Vec<&Stat>> = BTreeMap::new();
    for p in &procs {
        by_parent.entry(p.ppid).or_default().push(p);
    }
    let (mut out, mut queue, mut seen) = (Vec::new(), vec![root], BTreeSet::new());
    while let Some(pid) = queue.pop() {
        for c in by_parent.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c.pid) {
                out.push((*c).clone());
                queue.push(c.pid);
            }
        }
    }
    out
}

/// The members of process group `pgid`, lowest pid first.
pub fn group(pgid: i32) -> Vec<Stat> {
    let mut out: Vec<Stat> = all().into_iter().filter(|p| p.pgid == pgid).collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// The thread ids of `pid` (`/proc/PID/task`).
pub fn threads(pid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut tids: Vec<i32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

/// What an open descriptor refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FdKind {
    /// The read end of an anonymous pipe (`pipe:[inode]`).
    PipeRead(u64),
    /// The write end of an anonymous pipe.
    PipeWrite(u64),
    /// A named pipe (FIFO), by path, open for reading and/or writing.
    Fifo {
        /// Its path.
        path: String,
        /// Open for reading.
        read: bool,
        /// Open for writing.
        write: bool,
    },
    /// A socket (`socket:[inode]`).
    Socket(u64),
    /// A POSIX message queue, by name (`/name`).
    MessageQueue(String),
    /// An anonymous inode (`anon_inode:[eventfd]`, `anon_inode:[pidfd]`, ...).
    AnonInode(String),
    /// A regular file, a directory or a device, by path.
    File(String),
}

impl FdKind {
    /// The kind in the plural, for "1000 more descriptors are open: pipe read ends".
    pub fn plural(&self) -> String {
        match self {
            FdKind::PipeRead(_) => "pipe read ends".into(),
            FdKind::PipeWrite(_) => "pipe write ends".into(),
            FdKind::Fifo { path, read, write } => {
                let how = match (read, write) {
                    (true, true) => "read and write",
                    (true, false) => "reading",
                    _ => "writing",
                };
                format!("FIFOs open for {how} ({path})")
            }
            FdKind::Socket(_) => "sockets".into(),
            FdKind::MessageQueue(name) if name.is_empty() => "message queue descriptors".into(),
            FdKind::MessageQueue(name) => format!("message queue descriptors ({name})"),
            FdKind::AnonInode(what) => format!("{what} descriptors"),
            FdKind::File(path) => format!("files ({path})"),
        }
    }

    /// The kind without its identity (inode, exact path), so that leaks group by kind.
    pub fn class(&self) -> FdKind {
        match self {
            FdKind::PipeRead(_) => FdKind::PipeRead(0),
            FdKind::PipeWrite(_) => FdKind::PipeWrite(0),
            FdKind::Socket(_) => FdKind::Socket(0),
            FdKind::MessageQueue(_) => FdKind::MessageQueue(String::new()),
            other => other.clone(),
        }
    }
}

impl fmt::Display for FdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdKind::PipeRead(ino) => write!(f, "pipe:[{ino}] (read end)"),
            FdKind::PipeWrite(ino) => write!(f, "pipe:[{ino}] (write end)"),
            FdKind::Fifo { path, read, write } => {
                let how = match (read, write) {
                    (true, true) => "read and write",
                    (true, false) => "read",
                    _ => "write",
                };
                write!(f, "FIFO {path} (open for {how})")
            }
            FdKind::Socket(ino) => write!(f, "socket:[{ino}]"),
            FdKind::MessageQueue(name) => write!(f, "message queue {name}"),
            FdKind::AnonInode(what) => write!(f, "anon_inode:[{what}]"),
            FdKind::File(path) => write!(f, "{path}"),
        }
    }
}

/// A field of `/proc/PID/status` counted in kB (`VmHWM`, `VmRSS`, `VmSize`); `None` once the
/// process is gone.
pub fn status_kb(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// Whether signal number `signo` waits to be delivered to `pid` (`ShdPnd` or `SigPnd` of its
/// status): a stopped process keeps the signals sent to it pending.
pub fn signal_pending(pid: i32, signo: i32) -> bool {
    let bit = 1u64 << (signo - 1);
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("ShdPnd:")
                .or_else(|| l.strip_prefix("SigPnd:"))
        })
        .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
        .any(|mask| mask & bit != 0)
}

/// How many descriptors `pid` has open; `None` once it is gone.
pub fn fd_count(pid: i32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

/// One open descriptor of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fd {
    /// The descriptor's number.
    pub num: i32,
    /// What it refers to.
    pub kind: FdKind,
    /// Whether it is close-on-exec.
    pub cloexec: bool,
}

/// The open descriptors of `pid` (`"self"` works too), lowest first.
pub fn fds(pid: impl fmt::Display) -> Vec<Fd> {
    let dir = format!("/proc/{pid}/fd");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<Fd> = rd
        .flatten()
        .filter_map(|e| {
            let num: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let target = target.to_string_lossy().into_owned();
            let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{num}"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("flags:"))
                        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
                })
                .unwrap_or(0);
            let kind = classify(&e.path(), &target, flags);
            Some(Fd {
                num,
                kind,
                cloexec: flags & libc::O_CLOEXEC as u32 != 0,
            })
        })
        .collect();
    out.sort_by_key(|f| f.num);
    out
}

/// What the descriptor at `link` (`/proc/PID/fd/N`) that reads `target` is.
fn classify(link: &std::path::Path, target: &str, flags: u32) -> FdKind {
    let access = flags & 0o3;
    let (read, write) = (access != 1, access != 0);
    let inode = |prefix: &str| -> Option<u64> {
        target.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
    };
    if let Some(ino) = inode("pipe:[") {
        return if write {
            FdKind::PipeWrite(ino)
        } else {
            FdKind::PipeRead(ino)
        };
    }
    if let Some(ino) = inode("socket:[") {
        return FdKind::Socket(ino);
    }
    if let Some(what) = target.strip_prefix("anon_inode:") {
        let what = what.trim_start_matches('[').trim_end_matches(']');
        return FdKind::AnonInode(what.to_owned());
    }
    if std::fs::metadata(link).is_ok_and(|m| m.file_type().is_fifo()) {
        return FdKind::Fifo {
            path: target.to_owned(),
            read,
            write,
        };
    }
    // The field's width differs between targets.
    #[allow(clippy::unnecessary_cast)]
    if nix::sys::statfs::statfs(link).is_ok_and(|s| s.filesystem_type().0 as i64 == MQUEUE_MAGIC) {
        return FdKind::MessageQueue(target.to_owned());
    }
    FdKind::File(target.to_owned())
}

/// The kernel function the process or thread at `dir` sleeps in, and the system call it
/// is blocked in with that call's first argument.
fn read_wait(dir: &str) -> (char, String, Option<(i64, Vec<u64>)>) {
    let state = std::fs::read_to_string(format!("{dir}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .map_or('?', |s| s.state);
    let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
    let wchan = if wchan.trim() == "0" {
        String::new()
    } else {
        wchan.trim().to_owned()
    };
    let syscall = std::fs::read_to_string(format!("{dir}/syscall"))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace();
            let nr = it.next()?.parse::<i64>().ok()?;
            let args = it
                .take(6)
                .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
                .collect();
            Some((nr, args))
        });
    (state, wchan, syscall)
}

/// A process in full: what it is, what it waits in, what it holds.
#[derive(Debug, Clone)]
pub struct Process {
    /// Its `/proc/PID/stat` fields.
    pub stat: Stat,
    /// The kernel function its most telling thread sleeps in (`anon_pipe_read`,
    /// `wait_for_partner`, `do_wait`), or empty when it runs.
    pub wchan: String,
    /// The system call that thread is blocked in and its arguments, when readable
    /// (`/proc/PID/syscall` needs the same user, or root).
    pub syscall: Option<(i64, Vec<u64>)>,
    /// Its command line.
    pub cmdline: Vec<String>,
    /// Its open descriptors.
    pub fds: Vec<Fd>,
}

impl Process {
    /// Reads `/proc/PID`; `None` if the process is gone.
    pub fn read(pid: i32) -> Option<Process> {
        let stat = stat(pid)?;
        // A thread blocked in something other than a futex says most (the others often
        // just wait for it); then a running thread; then the main thread.
        let mut waits = vec![read_wait(&format!("/proc/{pid}"))];
        waits.extend(
            threads(pid)
                .into_iter()
                .map(|t| read_wait(&format!("/proc/{pid}/task/{t}"))),
        );
        let (_, wchan, syscall) = waits
            .iter()
            .find(|(_, w, _)| !w.is_empty() && !w.starts_with("futex"))
            .or_else(|| waits.iter().find(|(st, _, _)| *st == 'R'))
            .or_else(|| waits.first())
            .cloned()
            .unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        Some(Process {
            stat,
            wchan,
            syscall,
            cmdline,
            fds: fds(pid),
        })
    }

    /// `` `comm` (pid N) ``, the way reports name a process.
    pub fn name(&self) -> String {
        format!("`{}` (pid {})", self.stat.comm, self.stat.pid)
    }

    /// The descriptor the process is blocked on, when its system call takes one first.
    pub fn blocked_fd(&self) -> Option<&Fd> {
        // x86_64: read, write, pread64, pwrite64, readv, writev, accept, recvfrom, recvmsg,
        // accept4, splice, mq_timedsend, mq_timedreceive.
        #[cfg(target_arch = "x86_64")]
        const FD_CALLS: &[i64] = &[0, 1, 17, 18, 19, 20, 43, 45, 47, 288, 275, 242, 243];
        #[cfg(not(target_arch = "x86_64"))]
        const FD_CALLS: &[i64] = &[];
        let (nr, args) = self.syscall.as_ref()?;
        let num = i32::try_from(*args.first()?).ok()?;
        FD_CALLS
            .contains(nr)
            .then(|| self.fds.iter().find(|f| f.num == num))
            .flatten()
    }
}

/// [`Process::read`] of each of `pids` still alive, in order.
pub fn processes(pids: impl IntoIterator<Item = i32>) -> Vec<Process> {
    pids.into_iter().filter_map(Process::read).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_status_and_descriptors() {
        let me = std::process::id() as i32;
        assert!(status_kb(me, "VmHWM").is_some_and(|kb| kb > 0));
        assert!(status_kb(me, "NoSuchField").is_none());
        assert!(fd_count(me).is_some_and(|n| n >= 3));
        assert!(fd_count(i32::MAX).is_none());
    }

    #[test]
    fn reads_a_stat_line_with_spaces_in_comm() {
        let line = "4712 (a (b) c) S 1 4712 4712 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 \
                    123456 1000 10 18446744073709551615";
        let st = parse_stat(line).unwrap();
        assert_eq!(
            (st.pid, st.comm.as_str(), st.state, st.ppid, st.pgid),
            (4712, "a (b) c", 'S', 1, 4712)
        );
        assert_eq!((st.utime, st.stime, st.starttime), (7, 3, 123456));
    }
}
