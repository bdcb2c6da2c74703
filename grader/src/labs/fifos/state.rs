//! What the student's processes are doing: the /proc readers (namespaced pids, runnable
//! and CPU time, wait channel) and the descriptions of a process that messages quote.

use crate::sandbox::{Ending, Proc};

pub(super) use crate::check::{doing, stderr_of};

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
