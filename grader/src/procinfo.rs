//! Reading processes from /proc, and explaining a hang in a student's terms.
//!
//! On a timeout the grader snapshots every process of the run (state, the kernel function it
//! waits in, the system call and its first argument, its open fds) and [`explain`] turns that
//! into sentences such as: "`cat` (pid 412) waits to read fd 0, pipe:[9137]; the write end of
//! that pipe is still open as fd 4 in `pipeline` (pid 410): close it in the parent after fork".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One line of /proc/PID/stat: enough to build the process tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Process id.
    pub pid: i32,
    /// Executable name (truncated to 15 bytes by the kernel).
    pub comm: String,
    /// R, S, D, Z, T, ...
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgid: i32,
    /// Session.
    pub sid: i32,
}

/// Reads /proc/PID/stat.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may itself contain spaces or parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    let sid = rest.next()?.parse().ok()?;
    Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgid,
        sid,
    })
}

/// Every process visible in /proc.
pub fn all() -> Vec<Stat> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// Every descendant of `root` (not `root` itself), parents before children.
pub fn descendants(root: i32) -> Vec<Stat> {
    let procs = all();
    let mut children: BTreeMap<i32, Vec<&Stat>> = BTreeMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    let mut seen = BTreeSet::new();
    while let Some(pid) = queue.pop() {
        for c in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(c.pid) {
                out.push((*c).clone());
                queue.push(c.pid);
            }
        }
    }
    out
}

/// An open file descriptor of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fd {
    /// The fd number.
    pub num: i32,
    /// What it points at, as readlink shows it (`pipe:[123]`, a path, `socket:[9]`).
    pub target: String,
    /// Open for writing (O_WRONLY or O_RDWR).
    pub write: bool,
    /// Open for reading (O_RDONLY or O_RDWR).
    pub read: bool,
}

/// A full snapshot of one process.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its /proc/PID/stat fields.
    pub stat: Stat,
    /// The kernel function it sleeps in (`anon_pipe_read`, `do_wait`, ...), or empty.
    pub wchan: String,
    /// The system call it is blocked in and that call's first argument, when readable.
    pub syscall: Option<(i64, u64)>,
    /// Its command line.
    pub cmdline: Vec<String>,
    /// Its open fds.
    pub fds: Vec<Fd>,
}

impl Snapshot {
    /// Takes a snapshot of `pid`, if it still exists.
    pub fn take(pid: i32) -> Option<Snapshot> {
        let stat = stat(pid)?;
        // A test harness runs the test on a thread while the main thread waits for it: the
        // interesting wait is the one of a thread that is not just waiting for another.
        let mut waits = vec![read_wait(&format!("/proc/{pid}"))];
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            waits.extend(
                rd.flatten()
                    .map(|t| read_wait(&t.path().display().to_string())),
            );
        }
        // A thread blocked in something other than a futex says most; then a thread that is
        // running (a busy loop); then the main thread.
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
        let mut fds = Vec::new();
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for e in rd.flatten() {
                let Some(num) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let target = std::fs::read_link(e.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                let flags = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{num}"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("flags:"))
                            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
                    })
                    .unwrap_or(0);
                let acc = flags & 0o3;
                fds.push(Fd {
                    num,
                    target,
                    write: acc != 0,
                    read: acc != 1,
                });
            }
        }
        fds.sort_by_key(|f| f.num);
        Some(Snapshot {
            stat,
            wchan,
            syscall,
            cmdline,
            fds,
        })
    }

    /// `comm` (pid N), the way reports name a process.
    pub fn name(&self) -> String {
        format!("`{}` (pid {})", self.stat.comm, self.stat.pid)
    }

    fn blocked_fd(&self) -> Option<i32> {
        // x86_64 numbers of the calls whose first argument is the fd they block on.
        #[cfg(target_arch = "x86_64")]
        const FD_CALLS: &[i64] = &[0, 1, 17, 18, 19, 20, 43, 45, 47, 288, 275];
        #[cfg(not(target_arch = "x86_64"))]
        const FD_CALLS: &[i64] = &[];
        let (nr, arg) = self.syscall?;
        FD_CALLS.contains(&nr).then_some(arg as i32)
    }
}

/// The state, wait channel and blocked system call of the process or thread at `dir`.
fn read_wait(dir: &str) -> (char, String, Option<(i64, u64)>) {
    let state = std::fs::read_to_string(format!("{dir}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].trim_start().chars().next())
        })
        .unwrap_or('?');
    let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
    let wchan = if wchan == "0" { String::new() } else { wchan };
    let syscall = std::fs::read_to_string(format!("{dir}/syscall"))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace();
            let nr = it.next()?.parse::<i64>().ok()?;
            let arg = u64::from_str_radix(it.next()?.trim_start_matches("0x"), 16).ok()?;
            Some((nr, arg))
        });
    (state, wchan, syscall)
}

/// Snapshots of `pids` (those still alive), in order.
pub fn snapshot(pids: impl IntoIterator<Item = i32>) -> Vec<Snapshot> {
    pids.into_iter().filter_map(Snapshot::take).collect()
}

/// Explains what each process in `procs` waits for, naming pipe ends that are held open
/// where they should not be. The text is for a student; one paragraph per process.
pub fn explain(procs: &[Snapshot]) -> String {
    let mut out = String::new();
    let by_pid: BTreeMap<i32, &Snapshot> = procs.iter().map(|p| (p.stat.pid, p)).collect();
    let is_ancestor = |anc: i32, mut pid: i32| {
        for _ in 0..64 {
            match by_pid.get(&pid) {
                Some(p) if p.stat.ppid == anc => return true,
                Some(p) => pid = p.stat.ppid,
                None => return false,
            }
        }
        false
    };
    for p in procs {
        // The grader's own PID-namespace shim and init are not the student's processes.
        if p.cmdline.get(1).is_some_and(|a| a == "__init") {
            continue;
        }
        if p.stat.state == 'Z' {
            let _ = writeln!(
                out,
                "- {} has exited but nobody has waited for it (zombie)",
                p.name()
            );
            continue;
        }
        let args = p.cmdline.join(" ");
        let mut line = format!("- {} `{}`", p.name(), truncate(&args, 80));
        let w = p.wchan.as_str();
        let reading = w.contains("pipe_read");
        let writing = w.contains("pipe_write");
        if reading || writing {
            let fd = p
                .blocked_fd()
                .and_then(|n| p.fds.iter().find(|f| f.num == n));
            let fd = fd.or_else(|| {
                p.fds.iter().find(|f| {
                    f.target.starts_with("pipe:") && if reading { f.read } else { f.write }
                })
            });
            let what = if reading { "read" } else { "write" };
            match fd {
                Some(fd) => {
                    let _ = write!(line, " waits to {what} fd {} ({})", fd.num, fd.target);
                    if reading {
                        let writers: Vec<(&Snapshot, &Fd)> = holders(procs, &fd.target, true);
                        if writers.is_empty() {
                            let _ = write!(
                                line,
                                "; no process holds its write end any more, so it should see EOF"
                            );
                        }
                        for (h, hfd) in writers {
                            let advice = if h.stat.pid == p.stat.pid {
                                "a process never sees EOF on a pipe it can still write to itself: close the unused write end in the child before exec (or create the pipe with O_CLOEXEC)".to_string()
                            } else if is_ancestor(h.stat.pid, p.stat.pid) {
                                "close it in the parent after fork".to_string()
                            } else if h.wchan.contains("pipe_write")
                                || h.wchan.contains("pipe_read")
                            {
                                format!("{} is itself blocked", h.name())
                            } else {
                                "every process must close the pipe ends it does not use".to_string()
                            };
                            let _ = write!(
                                line,
                                "; the write end of {} is still open as fd {} in {}: {advice}",
                                fd.target,
                                hfd.num,
                                h.name()
                            );
                        }
                    } else {
                        let readers = holders(procs, &fd.target, false);
                        if readers.is_empty() {
                            let _ = write!(
                                line,
                                "; the pipe is full and no process holds its read end"
                            );
                        }
                        for (h, hfd) in readers {
                            let advice = if h.stat.pid == p.stat.pid {
                                format!(
                                    "; it holds that pipe's read end itself (fd {}), so it can never be told \
                                     that its reader is gone (no SIGPIPE, no EPIPE): close the unused ends \
                                     in the child before exec (or create the pipes with O_CLOEXEC)",
                                    hfd.num
                                )
                            } else if h.wchan == "do_wait" && is_ancestor(h.stat.pid, p.stat.pid) {
                                format!(
                                    "; the pipe is full and its read end is fd {} in {}, which waits for \
                                     its children instead of starting the stage that reads this pipe: \
                                     fork every stage first, then wait for them",
                                    hfd.num,
                                    h.name()
                                )
                            } else {
                                format!(
                                    "; the pipe is full: its read end is fd {} in {}, which is not reading it ({})",
                                    hfd.num,
                                    h.name(),
                                    describe_wait(&h.wchan)
                                )
                            };
                            line.push_str(&advice);
                        }
                    }
                }
                None => {
                    let _ = write!(line, " waits to {what} a pipe");
                }
            }
        } else {
            let _ = write!(line, " {}", describe_wait(w));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Processes holding `target` open for writing (`write`) or reading.
fn holders<'a>(procs: &'a [Snapshot], target: &str, write: bool) -> Vec<(&'a Snapshot, &'a Fd)> {
    let mut v = Vec::new();
    for p in procs {
        for f in &p.fds {
            if f.target == target && (if write { f.write } else { f.read }) {
                v.push((p, f));
            }
        }
    }
    v
}

/// A kernel wait channel in words.
pub fn describe_wait(wchan: &str) -> String {
    match wchan {
        "" => "is running (busy on the CPU, or between system calls)".into(),
        "do_wait" | "kernel_wait4" => "waits for a child process to exit (waitpid)".into(),
        "wait_for_partner" => {
            "is blocked opening a FIFO: no process has opened the other end".into()
        }
        "hrtimer_nanosleep" | "do_nanosleep" => "is sleeping".into(),
        "do_sys_poll" | "do_select" | "ep_poll" | "do_epoll_wait" => "waits in poll/select".into(),
        w if w.starts_with("futex") => {
            "waits on a futex: a lock, a condition variable, or a parked or joined thread".into()
        }
        "do_mq_timedreceive" | "wq_sleep" => "waits on a message queue".into(),
        "do_msgrcv" => "waits in msgrcv on a System V queue".into(),
        "do_semtimedop" => "waits in semop on a System V semaphore".into(),
        "unix_stream_read_generic" | "unix_stream_data_wait" => {
            "waits to read a UNIX socket".into()
        }
        "inet_csk_accept" | "unix_accept" => "waits in accept".into(),
        "sk_wait_data" | "wait_woken" => "waits to read a socket".into(),
        "do_signal_stop" => "is stopped by a signal".into(),
        "pipe_read" | "anon_pipe_read" => "waits to read a pipe".into(),
        other => format!("waits in the kernel function `{other}`"),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let t: String = s.chars().take(max).collect();
        format!("{t}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pid: i32, ppid: i32, comm: &str, wchan: &str, fds: &[(i32, &str, bool)]) -> Snapshot {
        Snapshot {
            stat: Stat {
                pid,
                comm: comm.into(),
                state: 'S',
                ppid,
                pgid: 1,
                sid: 1,
            },
            wchan: wchan.into(),
            syscall: None,
            cmdline: vec![comm.into()],
            fds: fds
                .iter()
                .map(|(n, t, w)| Fd {
                    num: *n,
                    target: (*t).into(),
                    write: *w,
                    read: !*w,
                })
                .collect(),
        }
    }

    #[test]
    fn a_parent_holding_the_write_end_is_named() {
        let procs = [
            snap(10, 1, "pipeline", "do_wait", &[(4, "pipe:[77]", true)]),
            snap(11, 10, "cat", "anon_pipe_read", &[(0, "pipe:[77]", false)]),
        ];
        let text = explain(&procs);
        assert!(
            text.contains("`cat` (pid 11) `cat` waits to read fd 0 (pipe:[77])"),
            "{text}"
        );
        assert!(
            text.contains(
                "still open as fd 4 in `pipeline` (pid 10): close it in the parent after fork"
            ),
            "{text}"
        );
        assert!(text.contains("waits for a child process to exit"), "{text}");
    }

    #[test]
    fn a_reader_holding_its_own_write_end_is_named() {
        let procs = [snap(
            11,
            10,
            "cat",
            "anon_pipe_read",
            &[(0, "pipe:[5]", false), (5, "pipe:[5]", true)],
        )];
        let text = explain(&procs);
        assert!(
            text.contains("never sees EOF on a pipe it can still write to itself"),
            "{text}"
        );
    }

    #[test]
    fn live_processes_are_read_from_proc() {
        let me = std::process::id() as i32;
        let s = Snapshot::take(me).unwrap();
        assert_eq!(s.stat.pid, me);
        assert!(s.fds.iter().any(|f| f.num == 0 || f.num == 1 || f.num == 2));
        assert!(stat(i32::MAX).is_none());
    }
}
