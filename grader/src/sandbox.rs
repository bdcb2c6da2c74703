//! Running untrusted processes: each in its own process group, with only fds 0-2 open at
//! exec, SIGPIPE at its default, resource limits, a capped capture of its output, a deadline
//! that is a real wait (pidfd + poll), and a clean-up that kills and reaps every descendant.
//!
//! The grader process is a child subreaper ([`become_subreaper`]), so a process that double
//! forks or calls setsid is reparented to the grader rather than to init, and
//! [`kill_descendants`] still finds and ends it.

//!
//! # Layout
//! - `spec.rs`: what to run ([`Spec`], [`Rlimits`], [`Input`]) and how it ended ([`Ending`]).
//! - `capture.rs`: capped capture of stdout and stderr.
//! - `process.rs`: starting a process ([`spawn`]) and holding it ([`Proc`]).
//! - `reap.rs`: subreaper, hang diagnosis, killing and reaping descendants.
//! - `isolate.rs`: a jail per run (a fresh root, private namespaces) and the unprivileged
//!   identities code runs as; `init.rs`: PID 1 of a jail's PID namespace.
//! - `cgroup.rs`: task, memory and CPU limits and accounting per run.
//! - `leftovers.rs`: IPC objects a run left, found and removed.
//! - here: running one process to the end ([`run`]).

mod capture;
pub mod cgroup;
pub mod init;
pub mod isolate;
pub mod leftovers;
mod process;
mod reap;
mod spec;

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

pub use process::{Proc, drop_privileges, spawn};
use reap::settle;
pub use reap::{become_subreaper, diagnose_tree, kill_descendants};
pub use spec::{DEFAULT_CAP, Ending, Input, Rlimits, Spec, minimal_env};
use testkit::procfs::{self, Stat};

/// Everything about one finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How the process ended.
    pub ending: Ending,
    /// Captured stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most the cap).
    pub stderr: Vec<u8>,
    /// Bytes of stdout past the cap.
    pub stdout_dropped: u64,
    /// The last bytes of stdout when it went past the cap.
    pub stdout_tail: Vec<u8>,
    /// Wall time.
    pub elapsed: Duration,
    /// On a timeout: what every process of the run was waiting for, in words.
    pub diagnosis: Option<String>,
    /// Processes that were still alive after the main one ended (killed by the grader).
    pub leftovers: Vec<Stat>,
    /// The run's private IPC namespace, kept open so its leftovers can be swept.
    pub ipc_ns: Option<crate::sandbox::leftovers::Namespace>,
}

/// Runs `spec` to completion or `timeout`, then kills whatever of it remains.
///
/// Call only when no other sandboxed process of this grader is meant to survive: the
/// clean-up ends every descendant of the calling process.
pub fn run(spec: &Spec, timeout: Duration) -> std::io::Result<Outcome> {
    let mut proc = spawn(spec)?;
    let ipc_ns = spec
        .isolation
        .as_ref()
        .and_then(|_| crate::sandbox::leftovers::Namespace::of(proc.pid));
    // A run in a PID namespace keeps everything it starts under its own process: its
    // clean-up looks there only, and other runs may go on beside it. Any other run may have
    // left orphans anywhere under the grader (its subreaper): every descendant goes.
    let root = if proc.scoped {
        proc.pid
    } else {
        std::process::id() as i32
    };
    let deadline = Instant::now() + timeout;
    let mut diagnosis = None;
    let ending = match proc.wait_until(deadline) {
        Some(e) => e,
        None => {
            let crowd = procfs::descendants(root).len();
            if crowd > 64 {
                // Far more processes than any lab needs: a fork loop. Stop it before reading
                // /proc process by process.
                if proc.scoped {
                    reap::kill_tree(root);
                } else {
                    let _ = killpg(Pid::from_raw(proc.pid), Signal::SIGKILL);
                    kill_descendants();
                }
                diagnosis = Some(format!(
                    "- {crowd} processes were running when it was stopped: a process that forks \
                     without end (check every loop around fork, and that a child never returns \
                     into the parent's code: it must exec or _exit)\n"
                ));
            } else {
                diagnosis = Some(reap::diagnose_under(root));
            }
            // SIGTERM first so that well-behaved programs remove their IPC objects.
            for s in procfs::descendants(root) {
                let _ = kill(Pid::from_raw(s.pid), Signal::SIGTERM);
            }
            if proc
                .wait_until(Instant::now() + Duration::from_millis(300))
                .is_none()
            {
                if proc.scoped {
                    // The namespace's init first, so that it never outlives the shim that
                    // waits for it (it would be reparented to the grader).
                    reap::kill_tree(root);
                }
                proc.kill();
            }
            Ending::TimedOut
        }
    };
    let elapsed = proc.elapsed();
    let leftovers = if proc.scoped {
        // It has been reaped, and with it everything it started: the shim exits only once
        // the namespace's init has, which takes every process of the namespace along (and
        // its pid may already be another run's).
        Vec::new()
    } else {
        if ending != Ending::TimedOut {
            settle(Instant::now() + Duration::from_millis(300));
        }
        kill_descendants()
    };
    proc.finish_streams(Instant::now() + Duration::from_secs(2));
    let (stdout, stdout_dropped) = proc.stdout();
    let stdout_tail = proc.stdout.tail();
    let (stderr, _) = proc.stderr();
    Ok(Outcome {
        ending,
        stdout,
        stderr,
        stdout_dropped,
        stdout_tail,
        elapsed,
        diagnosis,
        leftovers,
        ipc_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `run` ends every descendant of this process, so tests that spawn take turns.
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn sh(script: &str) -> Spec {
        let tmp = std::env::temp_dir();
        Spec::new("/bin/sh", &tmp).args(["-c", script])
    }

    #[test]
    fn output_is_captured_and_capped() {
        let _turn = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let mut spec = sh("head -c 100000 /dev/zero; echo oops >&2; exit 3");
        spec.cap = 1000;
        let out = run(&spec, Duration::from_secs(10)).unwrap();
        assert_eq!(out.ending, Ending::Exited(3));
        assert_eq!(out.stdout.len(), 1000);
        assert_eq!(out.stdout_dropped, 99_000);
        assert_eq!(out.stderr, b"oops\n");
    }

    /// A folder to start in that is missing or relative is named in the error (the kernel
    /// would only say "No such file or directory", as if the program were missing).
    #[test]
    fn a_missing_working_folder_is_named() {
        for cwd in ["/no/such/folder", "relative/folder"] {
            let spec = Spec::new("/bin/true", Path::new(cwd));
            let e = spawn(&spec).unwrap_err().to_string();
            assert!(e.contains(cwd) && e.contains("/bin/true"), "{e}");
        }
        let e = spawn(&Spec::new("/no/such/program", &std::env::temp_dir()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/program"), "{e}");
    }

    #[test]
    fn only_the_standard_fds_are_open_at_exec() {
        let _turn = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let _leak = std::fs::File::open("/dev/null").unwrap();
        let out = run(&sh("ls /proc/self/fd"), Duration::from_secs(10)).unwrap();
        // ls itself opens one fd to read the directory.
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n3\n");
    }

    /// A run past its deadline is diagnosed and killed, daemons it left (double fork and
    /// setsid) included: nothing of it survives.
    #[test]
    fn timeouts_kill_the_whole_tree_daemons_included() {
        let _turn = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        become_subreaper().unwrap();
        let spec = sh("setsid sh -c 'sleep 1000 & exit 0' & sleep 1000 | cat");
        let out = run(&spec, Duration::from_millis(500)).unwrap();
        assert_eq!(out.ending, Ending::TimedOut);
        let diagnosis = out.diagnosis.unwrap();
        assert!(
            diagnosis.contains("`sleep`") && diagnosis.contains("is sleeping"),
            "{diagnosis}"
        );
        assert!(
            diagnosis.contains("`cat`") && diagnosis.contains("waits to read fd 0"),
            "{diagnosis}"
        );
        let me = std::process::id() as i32;
        let alive: Vec<_> = procfs::descendants(me)
            .into_iter()
            .filter(|s| s.state != 'Z')
            .collect();
        assert!(alive.is_empty(), "survivors: {alive:?}");
    }
}
