//! What `/proc` says about processes and the pipe ends they hold, and how that explains
//! a hang.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use nix::unistd::Pid;

/// One process as `/proc` shows it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// The program's name (`/proc/PID/comm`).
    pub comm: String,
    /// R running, S sleeping, D uninterruptible, Z zombie, T stopped.
    pub state: char,
    /// The kernel function it sleeps in (`anon_pipe_read`), if any.
    pub wchan: String,
    /// Its fds that are pipe ends, by fd number.
    pub pipes: Vec<PipeEnd>,
}

/// One fd that is a pipe end.
#[derive(Debug, Clone)]
pub struct PipeEnd {
    pub fd: i32,
    /// The pipe's inode: two ends with the same inode are the same pipe.
    pub inode: u64,
    /// `true` for a write end, `false` for a read end.
    pub write: bool,
}

impl ProcInfo {
    /// Reads `/proc/PID`; `None` if the process is gone.
    pub fn read(pid: i32) -> Option<ProcInfo> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "PID (COMM) STATE PPID PGRP ...", where COMM may hold spaces and parentheses.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_owned();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        let pgrp = rest.next()?.parse().ok()?;
        let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        Some(ProcInfo {
            pid,
            ppid,
            pgrp,
            comm,
            state,
            wchan: wchan.trim().to_owned(),
            pipes: pipe_ends(&format!("/proc/{pid}")),
        })
    }

    /// `cat (pid 12) waits in anon_pipe_read (reading a pipe); fd 0 pipe:[123] (read end)`
    pub fn describe(&self) -> String {
        let doing = match self.state {
            'Z' => "has exited, but nobody has waited for it yet (zombie)".to_owned(),
            'R' => "is running".to_owned(),
            'T' | 't' => "is stopped".to_owned(),
            _ if self.wchan.is_empty() || self.wchan == "0" => "is sleeping".to_owned(),
            _ => format!("waits in {}{}", self.wchan, explain_wchan(&self.wchan)),
        };
        let fds = if self.pipes.is_empty() {
            "no pipe open".to_owned()
        } else {
            self.pipes
                .iter()
                .map(|end| {
                    format!(
                        "fd {} pipe:[{}] ({} end)",
                        end.fd,
                        end.inode,
                        if end.write { "write" } else { "read" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("{} (pid {}) {doing}; {fds}", self.comm, self.pid)
    }
}

fn explain_wchan(wchan: &str) -> &'static str {
    if wchan.contains("pipe_read") {
        " (reading a pipe)"
    } else if wchan.contains("pipe_write") {
        " (writing to a full pipe)"
    } else if wchan.contains("do_wait") {
        " (waitpid)"
    } else if wchan.contains("poll") || wchan.contains("select") {
        " (poll)"
    } else {
        ""
    }
}

/// The pipe ends open in `/proc/PID` (or `/proc/self`, or a thread's directory).
fn pipe_ends(proc_dir: &str) -> Vec<PipeEnd> {
    let Ok(entries) = fs::read_dir(format!("{proc_dir}/fd")) else {
        return Vec::new();
    };
    let mut ends: Vec<PipeEnd> = entries
        .flatten()
        .filter_map(|entry| {
            let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(entry.path()).ok()?;
            let inode = target
                .to_str()?
                .strip_prefix("pipe:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            // "flags:\t0100001": the access mode is the low two bits (0 read, 1 write).
            let info = fs::read_to_string(format!("{proc_dir}/fdinfo/{fd}")).ok()?;
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            let flags = u32::from_str_radix(flags.trim(), 8).ok()?;
            Some(PipeEnd {
                fd,
                inode,
                write: flags & 3 == 1,
            })
        })
        .collect();
    ends.sort_by_key(|end| end.fd);
    ends
}

/// Every process in `/proc`.
fn all_processes() -> Vec<ProcInfo> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter_map(ProcInfo::read)
        .collect()
}

/// The processes of process group `pgid`, lowest pid first.
pub fn group_members(pgid: Pid) -> Vec<ProcInfo> {
    let mut members: Vec<ProcInfo> = all_processes()
        .into_iter()
        .filter(|p| p.pgrp == pgid.as_raw())
        .collect();
    members.sort_by_key(|p| p.pid);
    members
}

/// This process's children that run one of `programs` (or are forks of this test that
/// have not exec'd yet), and all their descendants.
pub fn children_running(programs: &[&[&str]]) -> Vec<ProcInfo> {
    let me = std::process::id() as i32;
    let my_exe = fs::read_link("/proc/self/exe").ok();
    let everyone = all_processes();
    let runs_a_program = |p: &ProcInfo| {
        let cmdline = fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
        let argv: Vec<&[u8]> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        let is_program = programs.iter().any(|prog| {
            prog.len() == argv.len() && prog.iter().zip(&argv).all(|(a, b)| a.as_bytes() == *b)
        });
        let exe: Option<PathBuf> = fs::read_link(format!("/proc/{}/exe", p.pid)).ok();
        is_program || (exe.is_some() && exe == my_exe)
    };
    let mut chosen: Vec<ProcInfo> = everyone
        .iter()
        .filter(|p| p.ppid == me && runs_a_program(p))
        .cloned()
        .collect();
    let mut i = 0;
    while i < chosen.len() {
        let parent = chosen[i].pid;
        chosen.extend(everyone.iter().filter(|p| p.ppid == parent).cloned());
        i += 1;
    }
    chosen
}

/// What each process does and holds, then, for each one waiting on a pipe, who holds the
/// other ends of that pipe: the usual cause of a hang.
pub fn describe_hang(procs: &[ProcInfo]) -> String {
    if procs.is_empty() {
        return "  (no process left)\n".to_owned();
    }
    let mut out = String::new();
    for p in procs {
        out.push_str(&format!("  {}\n", p.describe()));
    }
    // Every end of every pipe, in these processes and in this test.
    let me = ProcInfo::read(std::process::id() as i32);
    let mut holders: BTreeMap<(u64, bool), Vec<String>> = BTreeMap::new();
    for p in procs.iter().chain(me.as_ref()) {
        let who = if Some(p.pid) == me.as_ref().map(|m| m.pid) {
            "this test".to_owned()
        } else {
            format!("{} (pid {})", p.comm, p.pid)
        };
        for end in &p.pipes {
            holders
                .entry((end.inode, end.write))
                .or_default()
                .push(format!("fd {} in {who}", end.fd));
        }
    }
    let mut why = String::new();
    for p in procs {
        let stdin = p.pipes.iter().find(|e| e.fd == 0 && !e.write);
        let stdout = p.pipes.iter().find(|e| e.fd == 1 && e.write);
        if let (true, Some(end)) = (p.wchan.contains("pipe_read"), stdin) {
            let writers = holders.get(&(end.inode, true)).cloned().unwrap_or_default();
            why.push_str(&format!(
                "  {} (pid {}) waits for input on its stdin, pipe:[{}]. It sees EOF only once \
                 every write end of that pipe is closed, and these are open: {}.\n",
                p.comm,
                p.pid,
                end.inode,
                writers.join(", ")
            ));
        }
        if let (true, Some(end)) = (p.wchan.contains("pipe_write"), stdout) {
            let readers = holders
                .get(&(end.inode, false))
                .cloned()
                .unwrap_or_default();
            why.push_str(&format!(
                "  {} (pid {}) waits for room in its stdout, pipe:[{}], which is full. Read \
                 ends of that pipe are open in: {}. Either someone reads it, or every read \
                 end is closed and the writer gets SIGPIPE.\n",
                p.comm,
                p.pid,
                end.inode,
                readers.join(", ")
            ));
            // The only reader is a process blocked in waitpid: the stage that should read
            // was never started.
            let waiting_readers: Vec<&ProcInfo> = procs
                .iter()
                .filter(|q| q.pipes.iter().any(|e| e.inode == end.inode && !e.write))
                .collect();
            let blocked_parent = match waiting_readers[..] {
                [only] if only.pid != p.pid && only.wchan.contains("do_wait") => Some(only),
                _ => None,
            };
            if let Some(only) = blocked_parent {
                why.push_str(&format!(
                    "  {} (pid {}), the only holder of that read end, is in waitpid: the \
                     stage that should read the pipe has not been started. Start every \
                     stage before waiting for any.\n",
                    only.comm, only.pid
                ));
            }
        }
    }
    if !why.is_empty() {
        out.push_str("What they wait for:\n");
        out.push_str(&why);
    }
    out
}

/// This test's threads named `filter-call*`: where each one is blocked.
pub fn describe_own_threads() -> String {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return String::new();
    };
    let mut out = String::new();
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if !comm.starts_with("filter-call") {
            continue;
        }
        let wchan = fs::read_to_string(dir.join("wchan")).unwrap_or_default();
        let wchan = wchan.trim();
        out.push_str(&format!(
            "  in this test, thread {comm} waits in {wchan}{}\n",
            explain_wchan(wchan)
        ));
    }
    out
}
