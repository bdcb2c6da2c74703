//! The ptrace helper of `worker_killed`: following a worker to its `mq_send` and killing it
//! while it holds a job.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// Lets the worker `pid` run until it enters `mq_send` (the `mq_timedsend` system call)
/// and SIGKILLs it there: it has taken a job from the job queue and not yet delivered the
/// result, so that job is lost unless the dispatcher sends it again. The grader follows
/// the worker with ptrace, stopping it at each system call. Returns whether it could; if
/// not (ptrace refused, the deadline), the worker is killed wherever it is.
pub(super) fn kill_holding_a_job(pid: i32, deadline: Instant) -> bool {
    use std::mem::{MaybeUninit, size_of};
    let kill = || {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    };
    let mut status = 0;
    // SAFETY: ptrace and waitpid on a pid, with valid pointers; the worker is a process of
    // this check, and the grader may trace it (root).
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, libc::PTRACE_O_TRACESYSGOOD) != 0 {
            kill();
            return false;
        }
        libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0);
        loop {
            // The next stop, without blocking past the deadline.
            loop {
                let r = libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG);
                if r == pid {
                    break;
                }
                if r < 0 {
                    return false;
                }
                if Instant::now() >= deadline {
                    kill();
                    libc::waitpid(pid, &mut status, libc::__WALL);
                    return false;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if !libc::WIFSTOPPED(status) {
                return false;
            }
            let sig = libc::WSTOPSIG(status);
            let mut inject = 0;
            if sig == libc::SIGTRAP | 0x80 {
                let mut info = MaybeUninit::<libc::ptrace_syscall_info>::zeroed();
                let n = libc::ptrace(
                    libc::PTRACE_GET_SYSCALL_INFO,
                    pid,
                    size_of::<libc::ptrace_syscall_info>(),
                    info.as_mut_ptr(),
                );
                let info = info.assume_init();
                if n > 0
                    && info.op == libc::PTRACE_SYSCALL_INFO_ENTRY
                    && info.u.entry.nr == libc::SYS_mq_timedsend as u64
                {
                    kill();
                    libc::waitpid(pid, &mut status, libc::__WALL);
                    return true;
                }
            } else if status >> 16 == 0 {
                // A signal on its way to the worker: deliver it.
                inject = sig;
            }
            libc::ptrace(libc::PTRACE_SYSCALL, pid, 0, inject);
        }
    }
}
