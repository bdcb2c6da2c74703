//! What the student's processes are doing: the /proc readers (namespaced pids, runnable
//! and CPU time, wait channel) and the descriptions of a process that messages quote.

use std::time::{Duration, Instant};

use crate::procinfo;
use crate::sandbox::{Ending, Proc};

/// What a process says on stderr, for messages (once it has ended, all of it).
pub(super) fn stderr_of(p: &Proc) -> String {
    p.wait_stderr(Instant::now() + Duration::from_millis(500), |_| false);
    let err = String::from_utf8_lossy(&p.stderr().0).trim().to_owned();
    if err.is_empty() {
        "(nothing on stderr)".into()
    } else {
        format!("its stderr: {}", crate::run::clip(&err, 600))
    }
}

/// What the process is doing, from /proc, for messages about a stall.
pub(super) fn doing(pid: i32) -> String {
    match procinfo::Snapshot::take(pid) {
        Some(s) if s.stat.state == 'Z' => "it has exited".into(),
        Some(s) if s.wchan.is_empty() => format!("its state is {}", s.stat.state),
        Some(s) => format!("it {}", procinfo::describe_wait(&s.wchan)),
        None => "it is gone".into(),
    }
}

/// Why a server did not answer: it died, or where it is stuck.
pub(super) fn server_state(server: &mut Proc) -> String {
    match server.try_ending() {
        Some(Ending::Signaled(s)) if s == libc::SIGPIPE => {
            "the server was killed by SIGPIPE".to_string()
        }
        Some(e) => format!("the server {}; {}", e.describe(), stderr_of(server)),
        None => format!("the server is still running, and {}", doing(server.pid)),
    }
}

/// The ids of process `pid` in every PID namespace it is in (NSpid), outermost first; a
/// process inside the sandbox's own namespace knows itself by the last one.
pub(super) fn own_pids(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mut ids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        ids.push(pid as u32);
    }
    ids
}

/// How long the threads of `pid` have been runnable, in seconds: on a CPU or waiting for
/// one (/proc/PID/task/TID/schedstat). A process that spins is runnable the whole time
/// even when other processes leave it little CPU; an idle one is not runnable at all.
pub(super) fn runnable_seconds(pid: i32) -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue; // a thread that has just ended
        };
        let mut fields = text
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        total += fields.next()? + fields.next()?;
    }
    Some(total as f64 / 1e9)
}

/// utime + stime of `pid` in seconds, from /proc/PID/stat.
pub(super) fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3 of the line, utime 14 and stime 15.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    Some(ticks as f64 / hz as f64)
}
