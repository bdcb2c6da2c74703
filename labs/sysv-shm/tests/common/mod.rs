//! Helpers shared by the tests: a guard that removes every segment and semaphore a test
//! made (even when the test fails), a counter file with its key in a fresh folder, a
//! deadline for calls that may block, and `shmctr` under a timeout.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use sysv_shm::Key;

/// How long one call or one `shmctr` run may take. Every scenario here takes milliseconds
/// when the code is right.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// The project id of `shmctr`'s keys: `ftok(PATH, 'c')`.
pub const PROJ: u8 = b'c';

/// Removes, when dropped, every System V object it was told about: by key (segment and
/// semaphore set with that key) and by id. A test keeps one alive for its whole body, so
/// that nothing is left in the kernel whether the test passes, fails or panics.
#[derive(Debug, Default)]
pub struct Cleanup {
    keys: Vec<Key>,
    segments: Vec<i32>,
    semaphores: Vec<i32>,
}

impl Cleanup {
    /// A guard with nothing to remove yet.
    pub fn new() -> Cleanup {
        Cleanup::default()
    }

    /// Also removes the segment and the semaphore set with `key`, if any.
    pub fn key(&mut self, key: Key) {
        self.keys.push(key);
    }

    /// Also removes the segment with the id `id`.
    pub fn segment(&mut self, id: i32) {
        self.segments.push(id);
    }

    /// Also removes the semaphore set with the id `id`.
    pub fn semaphore(&mut self, id: i32) {
        self.semaphores.push(id);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Plain libc, not the code under test: the clean-up must work even when it does not.
        for key in &self.keys {
            // SAFETY: shmget and semget take plain integers.
            let (shm, sem) =
                unsafe { (libc::shmget(key.raw(), 0, 0), libc::semget(key.raw(), 0, 0)) };
            if shm != -1 {
                self.segments.push(shm);
            }
            if sem != -1 {
                self.semaphores.push(sem);
            }
        }
        for &id in &self.segments {
            // SAFETY: IPC_RMID ignores the buffer; a stale id just fails.
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
        for &id in &self.semaphores {
            // SAFETY: IPC_RMID takes no fourth argument; a stale id just fails.
            unsafe { libc::semctl(id, 0, libc::IPC_RMID) };
        }
    }
}

/// A fresh folder with an empty file `counter` in it, the file's key `ftok(file, 'c')`,
/// and a [`Cleanup`] that already knows that key. Keep it alive for the whole test.
pub struct Counter {
    /// Dropped first: the objects go before the file does. A deleted file's inode is soon
    /// reused by a new file, which then has the same key.
    pub cleanup: Cleanup,
    pub path: PathBuf,
    pub key: Key,
    pub dir: tempfile::TempDir,
}

impl Counter {
    /// The path as a `&str`, for command lines.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }
}

/// A [`Counter`] in a new temporary folder (under `$TMPDIR`): the fixture of every test
/// that needs a key from a file (`#[from(counter)] c: Counter`).
#[rstest::fixture]
pub fn counter() -> Counter {
    let dir = tempfile::Builder::new()
        .prefix("sysv-shm-test-")
        .tempdir()
        .expect("cannot make a temporary folder");
    let path = dir.path().join("counter");
    std::fs::write(&path, b"").expect("cannot make the counter file");
    let key = ftok(&path);
    let mut cleanup = Cleanup::new();
    cleanup.key(key);
    Counter {
        cleanup,
        path,
        key,
        dir,
    }
}

/// `ftok(path, 'c')` with plain libc, to compare the student's keys with.
pub fn ftok(path: &Path) -> Key {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in the path");
    // SAFETY: a valid C string that outlives the call.
    let raw = unsafe { libc::ftok(c.as_ptr(), libc::c_int::from(PROJ)) };
    assert_ne!(raw, -1, "ftok({}) failed", path.display());
    Key::from_raw(raw)
}

/// Runs `f` on a thread and returns its result, or fails the test if it takes longer than
/// [`DEADLINE`]. `what` names the call and `hint` says what usually makes it block; the
/// message also says what this test's threads wait in (a semop, say).
#[track_caller]
pub fn within_deadline<T: Send + 'static>(
    what: &str,
    hint: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    testkit::within(what, DEADLINE, hint, f)
}

/// `shmctr ARGS...`, run to completion (killed after [`DEADLINE`]), ready for assertions.
pub fn shmctr(args: &[&str]) -> Assert {
    Command::cargo_bin("shmctr")
        .unwrap_or_else(|err| panic!("cannot find the shmctr binary: {err}"))
        .args(args)
        .timeout(DEADLINE)
        .assert()
        .append_context(
            "deadline",
            "shmctr is killed after 5 s (`<interrupted>` below): one that waits that long in \
             semop waits for a lock that nobody releases",
        )
}

/// The stdout of an [`Assert`] as text.
pub fn stdout(assert: &Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

/// Forks a child that runs `child` and then `_exit(0)`s (`_exit(101)` if `child` panics).
/// `child` should only make system calls: the test process has other threads.
pub fn fork_child(child: impl FnOnce()) -> nix::unistd::Pid {
    // SAFETY: the child only runs `child`, which makes system calls, then _exit.
    match unsafe { nix::unistd::fork() }.expect("fork failed") {
        nix::unistd::ForkResult::Child => {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).is_ok();
            // SAFETY: _exit is async-signal-safe and never returns; the child must not go
            // back into the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 101 }) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    }
}

/// Waits for the child `pid` to exit, for at most [`DEADLINE`]; past it, kills it and fails
/// the test with `hint`. Returns its exit code (128 + N if signal N killed it).
#[track_caller]
pub fn wait_child(pid: nix::unistd::Pid, hint: &str) -> i32 {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) if std::time::Instant::now() < end => {
                thread::sleep(Duration::from_millis(1));
            }
            Ok(_) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(pid, None);
                panic!(
                    "the child process did not exit within {} s and was killed. {hint}",
                    DEADLINE.as_secs()
                );
            }
            Err(err) => panic!("waitpid({pid}) failed: {err}"),
        }
    }
}

/// Polls `cond` every millisecond until it holds; `false` after [`DEADLINE`].
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    cond()
}
