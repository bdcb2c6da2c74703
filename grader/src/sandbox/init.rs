//! `grader __init -- PROGRAM ARGS...`: a tiny init for a test's own PID namespace.
//!
//! The grader starts this shim with `unshare(CLONE_NEWPID)` done in its pre-exec, so the
//! shim's first child is PID 1 of a new namespace. That child mounts a /proc of the new
//! namespace, starts the test as PID 2, reaps every orphan, and when the test ends reports
//! whatever is still running on stderr (`grader-init: still running ...`) and exits, which
//! makes the kernel kill every process left in the namespace: nothing a test starts can
//! outlive it, daemons included. The shim passes the test's exit status (or signal) on.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::wait::{WaitStatus, wait, waitpid};
use nix::unistd::{ForkResult, Pid, execvp, fork};

static PROVIDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says that this program is the grader, whose `__init` subcommand the sandbox may start
/// (as `/proc/self/exe`) for a PID namespace. Another program using the library (xtask)
/// runs its jails without one.
pub fn provide() {
    PROVIDED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`provide`] was called.
pub fn provided() -> bool {
    PROVIDED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The stderr line that names a process a test left running.
pub const LEFT_RUNNING: &str = "grader-init: still running after the test ended: ";

/// Runs PROGRAM ARGS under the init, as `user` when given; returns the status to exit with.
pub fn main(user: Option<(u32, u32)>, argv: &[OsString]) -> i32 {
    let Some(program) = argv.first() else {
        return 2;
    };
    let Ok(cargs) = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return 2;
    };
    let Ok(cprog) = CString::new(program.as_bytes()) else {
        return 2;
    };
    // SAFETY: this process is single-threaded (it has just been exec'd and parsed its
    // arguments), so fork is sound; the child only makes system calls before exec or exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => std::process::exit(pid_one(user, &cprog, &cargs)),
        Ok(ForkResult::Parent { child }) => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => {
                    // 128+N from the init means the test died of signal N: die of it too, so
                    // the grader sees the same ending as without the namespace.
                    if (129..160).contains(&code) {
                        if let Ok(sig) = Signal::try_from(code - 128) {
                            // SAFETY: restoring a default disposition.
                            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
                            let _ = nix::sys::signal::raise(sig);
                        }
                    }
                    return code;
                }
                Ok(WaitStatus::Signaled(..)) => return 128 + libc::SIGKILL,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return 3,
            }
        },
        Err(_) => 3,
    }
}

/// PID 1 of the namespace: starts the test (as `user`), reaps, reports survivors. PID 1 itself
/// keeps the grader's identity, out of reach of the test's signals and ptrace.
fn pid_one(user: Option<(u32, u32)>, program: &CString, args: &[CString]) -> i32 {
    // A /proc that shows this namespace's pids, for the test's own diagnostics; to an
    // unprivileged process only those of its own user (`hidepid`), so that a check's peers
    // (another identity) are out of the student's sight, not only out of its reach.
    // SAFETY: mount with constant strings.
    unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"hidepid=2".as_ptr().cast(),
        );
    }
    // SAFETY: single-threaded; the child execs or exits at once.
    let test = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // The shim is a Rust program and ignores SIGPIPE; the test starts as it would
            // without the namespace, with the default.
            // SAFETY: restoring a default disposition before exec.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            if let Some(user) = user {
                if let Err(e) = crate::sandbox::drop_privileges(user) {
                    crate::errln!("grader-init: cannot drop privileges: {e}");
                    // SAFETY: leaving the forked child without running destructors.
                    unsafe { libc::_exit(126) }
                }
            }
            let _ = execvp(program, args);
            // SAFETY: leaving the forked child without running destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(_) => return 3,
    };
    let status = loop {
        match wait() {
            Ok(WaitStatus::Exited(pid, code)) if pid == test => break code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == test => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break 3,
        }
    };
    report_survivors();
    status
}

/// Gives exiting processes a moment, then names on stderr those still running.
fn report_survivors() {
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        // Reap whatever has exited meanwhile.
        while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) = waitpid(
            Pid::from_raw(-1),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {}
        let alive: Vec<testkit::procfs::Stat> = testkit::procfs::all()
            .into_iter()
            .filter(|s| s.pid != 1 && s.state != 'Z' && s.state != 'X')
            .collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for s in alive {
                crate::errln!(
                    "{LEFT_RUNNING}`{}` (pid {} in the test's namespace)",
                    s.comm,
                    s.pid
                );
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
