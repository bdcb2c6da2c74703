//! Ending a run: the grader as child subreaper, the hang diagnosis, and killing and reaping
//! every descendant.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use testkit::procfs::{self, Stat};

/// Makes this process a child subreaper: orphaned descendants are reparented to it.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

/// What every process under `root` waits for.
pub(super) fn diagnose_under(root: i32) -> String {
    explain(procfs::descendants(root))
}

/// What each of `procs` waits for, in a student's terms. The grader's own PID-namespace
/// shim and init (`__init`) are not the student's processes and are left out.
fn explain(procs: Vec<Stat>) -> String {
    let procs: Vec<procfs::Process> = procfs::processes(procs.into_iter().map(|s| s.pid))
        .into_iter()
        .filter(|p| p.cmdline.get(1).is_none_or(|a| a != "__init"))
        .collect();
    testkit::hang::explain_from_outside(&procs)
}

/// SIGKILLs every process under `root` (not `root` itself, and never by process group, which
/// `root` shares) until none is left (bounded); returns those alive when it started. For a
/// run in a PID namespace, killing the namespace's init ends every process in it at once.
pub(super) fn kill_tree(root: i32) -> Vec<Stat> {
    kill_under(root, false)
}

/// Kills everything under `root`, round after round until nothing is left (at most 2 s):
/// with `whole_groups` (only for `root` = this process) every process group too, so that a
/// fork loop cannot outrun the kills, and this process's own children are reaped.
fn kill_under(root: i32, whole_groups: bool) -> Vec<Stat> {
    // A child between its fork and its `setpgid` is still in our own process group, which
    // may hold whoever started the grader (a shell, a test harness): never that group, nor
    // any ancestor's.
    let protected = if whole_groups {
        ancestor_groups()
    } else {
        Default::default()
    };
    let mut first = None;
    for round in 0..400 {
        let all = procfs::descendants(root);
        let live: Vec<Stat> = all
            .iter()
            .filter(|s| s.state != 'Z' && s.state != 'X')
            .cloned()
            .collect();
        if first.is_none() {
            first = Some(live.clone());
        }
        if all.is_empty() {
            break;
        }
        for s in &live {
            if whole_groups && !protected.contains(&s.pgid) {
                let _ = killpg(Pid::from_raw(s.pgid), Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
        }
        if whole_groups {
            for s in all.iter().filter(|s| s.ppid == root) {
                let _ = waitpid(Pid::from_raw(s.pid), Some(WaitPidFlag::WNOHANG));
            }
        }
        if round > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    first.unwrap_or_default()
}

/// The process groups of this process and of each of its ancestors.
fn ancestor_groups() -> std::collections::BTreeSet<i32> {
    let mut groups = std::collections::BTreeSet::new();
    groups.insert(nix::unistd::getpgrp().as_raw());
    let mut pid = std::process::id() as i32;
    for _ in 0..64 {
        let Some(s) = procfs::stat(pid) else { break };
        groups.insert(s.pgid);
        if s.ppid <= 1 {
            break;
        }
        pid = s.ppid;
    }
    groups
}

/// Gives processes that are already exiting (a child just killed, a stage finishing) until
/// `deadline` to be gone, so that only real survivors count as left behind.
pub(super) fn settle(deadline: Instant) {
    let me = std::process::id() as i32;
    while Instant::now() < deadline {
        let live = procfs::descendants(me)
            .iter()
            .any(|s| s.state != 'Z' && s.state != 'X');
        if !live {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Snapshots every descendant of this process and explains what each waits for.
pub fn diagnose_tree() -> String {
    let me = std::process::id() as i32;
    explain(procfs::descendants(me))
}

/// SIGKILLs every descendant of this process and reaps those that are its children, until
/// none is left (bounded). Returns the ones that were alive when it started.
pub fn kill_descendants() -> Vec<Stat> {
    kill_under(std::process::id() as i32, true)
}
