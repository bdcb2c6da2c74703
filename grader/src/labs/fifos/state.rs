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
