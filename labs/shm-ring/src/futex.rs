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

// The imports name the calls you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

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
    todo!("part B: FUTEX_WAIT (shared, not PRIVATE) on word while it equals expected, with timeout")
}

/// Wakes one process sleeping in [`wait`] on `word`.
pub fn wake(word: &AtomicU32) {
    todo!("part B: FUTEX_WAKE one waiter on word")
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
        todo!("part B: open a pidfd for pid (SYS_pidfd_open); keep None if that fails")
    }

    /// The pid watched.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the process has exited (or was killed).
    pub fn is_dead(&self) -> bool {
        todo!("part B: poll the pidfd (readable = exited), or kill(pid, 0) == ESRCH without one")
    }
}
