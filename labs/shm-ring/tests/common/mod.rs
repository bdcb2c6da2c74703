//! Helpers shared by the tests: unique ring names that are removed whatever happens, a look
//! at /dev/shm, and the programs run in their own process group under a deadline.
//!
//! The helpers remove objects with `shm_unlink` itself, never with your code, so a bug in
//! your `unlink` cannot leave objects behind on your machine.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

/// How long one library call or one program run may take. Every scenario here ends in
/// well under a second when the code is right.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// A ring name for one test, `/shmring-test-<pid>-<counter>`, unlinked on drop.
pub struct RingName(pub String);

impl RingName {
    /// A name no other test, and no other test process, uses.
    pub fn new() -> RingName {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        RingName(format!("/shmring-test-{}-{n}", std::process::id()))
    }

    /// The name, as `Ring::create` takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its file under /dev/shm.
    pub fn path(&self) -> String {
        format!("/dev/shm{}", self.0)
    }

    /// Whether the ring is finished: the object exists and its header starts with the magic.
    /// A test starts the second program only then (the start-up race itself is judged by
    /// `ring::open_waits_for_a_ring_being_made_part_a`).
    pub fn made(&self) -> bool {
        std::fs::read(self.path()).is_ok_and(|b| b.starts_with(b"SHMRING1"))
    }

    /// Whether the object exists now.
    pub fn exists(&self) -> bool {
        std::path::Path::new(&self.path()).exists()
    }
}

impl Drop for RingName {
    fn drop(&mut self) {
        let _ = nix::sys::mman::shm_unlink(self.0.as_str());
    }
}

/// A command for the binary `name` of this crate.
pub fn bin(name: &str) -> Command {
    Command::cargo_bin(name).unwrap_or_else(|e| panic!("no binary {name}: {e}"))
}

/// Bytes `0..n` of a pattern that shows a shift, a repeat or a lost byte.
pub fn pattern(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// How many mappings of /dev/shm objects this process has.
pub fn shm_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/dev/shm/"))
        .count()
}

/// Starts `body` on a thread; its thread id (for [`wait_asleep`]) and its handle.
pub fn reader_thread<T: Send + 'static>(
    body: impl FnOnce() -> T + Send + 'static,
) -> (i32, std::thread::JoinHandle<T>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let _ = tx.send(unsafe { libc::gettid() });
        body()
    });
    let tid = rx.recv().expect("the reader thread starts");
    (tid, handle)
}

/// Waits until process `pid` (or thread `pid` of this process) sleeps in a system call (it
/// got as far as waiting for input or for its peer), at most `limit`.
pub fn wait_asleep(pid: i32, limit: Duration) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if is_asleep(pid) {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether process `pid`, or thread `pid` of this process, sleeps in a system call now.
pub fn is_asleep(pid: i32) -> bool {
    let task = format!("/proc/self/task/{pid}");
    if std::path::Path::new(&task).exists() {
        // One of our own threads: its own state and wait, not the process's.
        let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .unwrap_or("");
        let wchan = std::fs::read_to_string(format!("{task}/wchan")).unwrap_or_default();
        return state == "S" && !wchan.is_empty() && wchan != "0";
    }
    testkit::procfs::Process::read(pid).is_some_and(|p| p.stat.state == 'S' && !p.wchan.is_empty())
}
