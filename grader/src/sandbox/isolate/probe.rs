//! Whether the kernel lets the grader build jails here: tried once, remembered for the rest
//! of the process, and said once in the report when it does not.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use super::Jail;

const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static WHY_NOT: Mutex<Option<String>> = Mutex::new(None);

/// Whether isolation should be tried (not yet known to be refused).
pub fn worth_trying() -> bool {
    STATE.load(Ordering::Relaxed) != NO
}

/// Whether isolation has been used successfully in this process.
pub fn active() -> bool {
    STATE.load(Ordering::Relaxed) == YES
}

/// Records that isolation worked.
pub fn worked() {
    STATE.store(YES, Ordering::Relaxed);
}

/// Records that the kernel refused isolation, and why; said once in the report.
pub fn refused(e: &std::io::Error) {
    if STATE.swap(NO, Ordering::Relaxed) != NO {
        let who = if nix::unistd::geteuid().is_root() {
            "the submission's code still ran as an unprivileged user of its own, but could \
             read whatever any user may read on this machine, and the build ran as root"
        } else {
            "the submission's code ran as the grader's own user, with that user's access"
        };
        let msg = format!(
            "namespaces are not available here ({e}): the build, tests and checks ran without \
             a private root and private IPC, mount, PID and network namespaces; {who}. \
             Leftover IPC objects were found by name and removed instead. Allow unshare and \
             mount (e.g. a container with CAP_SYS_ADMIN, or outside a container) to confine \
             submissions fully"
        );
        crate::errln!("grader: {msg}");
        *WHY_NOT.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }
}

/// Whether a spawn error is the kernel (or a container's seccomp profile, as Docker's
/// default one on Gradescope) refusing namespaces or mounts, rather than a missing program.
/// The fallback still runs the submission as the unprivileged identity where the grader is
/// root: a refused jail never means running student code as root.
pub fn is_refusal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EINVAL | libc::ENOSYS | libc::ENOSPC | libc::EACCES)
    ) && STATE.load(Ordering::Relaxed) != YES
}

/// Whether jails work on this machine: tried once with `true` and remembered.
pub fn available() -> bool {
    if STATE.load(Ordering::Relaxed) == UNKNOWN {
        let mut spec = crate::sandbox::Spec::new("true", Path::new("/"));
        spec.isolation = Some(std::sync::Arc::new(Jail::new().build()));
        if let Ok(mut p) = crate::sandbox::spawn(&spec) {
            p.wait_until(std::time::Instant::now() + std::time::Duration::from_secs(10));
        }
    }
    active()
}

/// The note for the report when isolation was refused.
pub fn note() -> Option<String> {
    WHY_NOT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
