//! Part B: sleeping until the other process rings, and noticing that it died.
//!
//! A waiting side first spins for a short, bounded time (the other side is usually about to
//! act), then sleeps in `futex(FUTEX_WAIT)` on a 32-bit word of the shared header. The other
//! side, after it moved its position, rings that word: it bumps it and calls
//! `futex(FUTEX_WAKE)`. The futex must be the shared variant (not `FUTEX_PRIVATE_FLAG`):
//! the two processes map the word at different addresses, and only the shared variant keys
//! the wait on the page itself.
//!
//! A sleep never lasts longer than [`WAIT_SLICE`]: after each one the waiter checks that its
//! peer still lives ([`Peer::is_dead`]), so a peer killed by SIGKILL is noticed within that.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The longest a waiter sleeps before it checks on its peer again.
pub const WAIT_SLICE: Duration = Duration::from_millis(100);

/// How long a waiter spins (pause instructions only) before it starts yielding.
pub const SPIN_PURE: Duration = Duration::from_micros(2);

/// How long a waiter spins and yields in all before it sleeps.
pub const SPIN: Duration = Duration::from_micros(50);

/// Whether spinning can pay: another CPU may run the other side at the same time. With one
/// CPU (a container started with `--cpus 1`, or `taskset -c 0`) the other side cannot act
/// while we spin, so a spin only delays it: skip it. `available_parallelism` counts the CPUs
/// this process may run on and the CPU quota of its cgroup. Given, and computed once.
pub fn spinning_pays() -> bool {
    static PAYS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PAYS.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2))
}

/// Sleeps while `*word == expected`, for at most `timeout`. Returns early when woken, when
/// the word already differs (EAGAIN), on a signal (EINTR) or at the timeout: the caller
/// always re-checks its condition, so every return is the same to it.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned 32-bit word for the whole call. FUTEX_WAIT without
    // FUTEX_PRIVATE_FLAG, because the word lives in memory shared with another process.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes one process sleeping in [`wait`] on `word`.
pub fn wake(word: &AtomicU32) {
    // SAFETY: as in `wait`; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1i32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// The other process of a ring, watched through a pidfd: it becomes readable when the
/// process has exited, even while it is still a zombie nobody reaped (a `kill(pid, 0)` would
/// still succeed then), and it cannot be fooled by a recycled pid.
#[derive(Debug)]
pub struct Peer {
    pid: i32,
    fd: Option<OwnedFd>,
}

impl Peer {
    /// Starts watching `pid`. A pid already gone is reported dead by [`Peer::is_dead`].
    pub fn watch(pid: i32) -> Peer {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) });
        Peer { pid, fd }
    }

    /// The pid watched.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the process has exited (or was killed).
    pub fn is_dead(&self) -> bool {
        match &self.fd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            }
            // No pidfd (an old kernel, or the pid was gone already): ask kill(pid, 0).
            // EPERM means it lives but belongs to someone else.
            None => {
                // SAFETY: signal 0 only checks that the process exists.
                let r = unsafe { libc::kill(self.pid, 0) };
                r != 0 && Errno::last() == Errno::ESRCH
            }
        }
    }
}
