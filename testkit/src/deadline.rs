//! Real deadlines: a program runs in its own process group, the test waits for it with a
//! deadline (a pidfd and `poll(2)`, no sleeping), and past the deadline the whole group is
//! described from `/proc` (see [`crate::hang`]), killed and reaped before the test fails.
//!
//! rstest's `#[timeout]` runs a test on a thread and kills nothing; these helpers leave no
//! process behind, whatever happens, because [`Group`] kills its group when dropped.

use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::hang;
use crate::procfs;

/// A child process that leads its own process group, which it and everything it starts
/// share. Dropping it kills the whole group and reaps the child.
pub struct Group {
    child: Child,
    pidfd: Option<OwnedFd>,
    /// The command line, for messages.
    pub what: String,
}

impl Group {
    /// Starts `cmd` as the leader of a new process group (`process_group(0)`); `what` names
    /// it in messages. Fails the test if it cannot start.
    #[track_caller]
    pub fn spawn(cmd: &mut Command, what: impl Into<String>) -> Group {
        let what = what.into();
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        let pid = child.id() as libc::pid_t;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        // SAFETY: a non-negative return is a new descriptor that nothing else owns.
        let pidfd = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as i32) });
        Group { child, pidfd, what }
    }

    /// The child's pid, which is also the group's id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The [`Child`], to take its pipes.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits until the child has exited, at most `limit`, without reaping it (its pid, the
    /// group's id, stays reserved). `true` once it has exited.
    pub fn exited_within(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
            match waitid(Id::Pid(Pid::from_raw(self.pid())), flags) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(_) | Err(_) => return true,
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match &self.pidfd {
                Some(fd) => {
                    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    let ms = PollTimeout::try_from(left.as_millis().min(60_000))
                        .unwrap_or(PollTimeout::MAX);
                    let _ = poll(&mut fds, ms);
                }
                // No pidfd (a kernel before 5.3): look again in a moment.
                None => thread::sleep(left.min(Duration::from_millis(2))),
            }
        }
    }

    /// Waits for the child to exit, at most `limit`, and reaps it; `None` past the limit
    /// (nothing is killed then).
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exited_within(limit) {
            Some(
                self.child
                    .wait()
                    .expect("cannot reap a child that has exited"),
            )
        } else {
            None
        }
    }

    /// Waits for the child to exit, at most `limit`, and returns its status. Past the
    /// limit the test fails with what every process of the group was doing (see
    /// [`hang::explain`]) and `hint`, after the group is killed.
    #[track_caller]
    pub fn wait_or_explain(&mut self, limit: Duration, hint: &str) -> ExitStatus {
        if let Some(status) = self.wait_timeout(limit) {
            return status;
        }
        let report = self.hang_report();
        self.kill();
        panic!(
            "`{}` did not exit within {}; its process group was killed. At the deadline:\n\
             {report}{hint}",
            self.what,
            secs(limit)
        );
    }

    /// What each process of the group is doing now, from `/proc`.
    pub fn hang_report(&self) -> String {
        hang::explain_group(self.pid())
    }

    /// The members of the group other than the child, that still run (not zombies).
    pub fn strays(&self) -> Vec<procfs::Process> {
        let me = self.pid();
        procfs::processes(
            procfs::group(me)
                .into_iter()
                .filter(|p| p.pid != me && p.state != 'Z')
                .map(|p| p.pid),
        )
    }

    /// Sends `sig` to the child alone.
    pub fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid()), sig);
    }

    /// Kills the whole group and reaps the child.
    pub fn kill(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `limit` in words: "5 s", "1.5 s".
pub fn secs(limit: Duration) -> String {
    if limit.subsec_millis() == 0 {
        format!("{} s", limit.as_secs())
    } else {
        format!("{:.1} s", limit.as_secs_f64())
    }
}

/// Reads a stream to its end on a thread, into a buffer that can be looked at meanwhile
/// (capped at `cap` bytes; the rest is read and counted, not kept).
pub struct Capture {
    shared: Arc<Mutex<(Vec<u8>, usize)>>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts reading `from`.
    pub fn start(mut from: impl Read + Send + 'static, cap: usize) -> Capture {
        let shared = Arc::new(Mutex::new((Vec::new(), 0)));
        let (tx, done) = mpsc::channel();
        let sink = Arc::clone(&shared);
        let thread = thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.1 += n;
                let room = cap.saturating_sub(s.0.len()).min(n);
                s.0.extend_from_slice(&buf[..room]);
            }
            let _ = tx.send(());
        });
        Capture {
            shared,
            done,
            thread: Some(thread),
        }
    }

    /// Waits for the end of the stream, at most `limit`; `true` once it ended.
    pub fn ended_within(&self, limit: Duration) -> bool {
        match self.done.recv_timeout(limit) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        }
    }

    /// The bytes read so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// "(12 bytes) \"hello\"": an excerpt of what was read so far, for messages.
    pub fn excerpt(&self) -> String {
        const SHOWN: usize = 600;
        let s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&s.0[..s.0.len().min(SHOWN)]);
        let more = if s.1 > SHOWN { " ..." } else { "" };
        format!("({} bytes) {text:?}{more}", s.1)
    }

    /// Waits for the reading thread (after the stream ended) and returns everything kept.
    pub fn finish(mut self) -> Vec<u8> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bytes()
    }
}

/// What [`run`] observed.
#[derive(Debug)]
pub struct Finished {
    /// How the program ended.
    pub status: ExitStatus,
    /// Its stdout (at most 16 MiB kept).
    pub stdout: Vec<u8>,
    /// Its stderr (at most 16 MiB kept).
    pub stderr: Vec<u8>,
    /// How long it took, from start to the end of its output.
    pub elapsed: Duration,
    /// The processes of its group still running when it exited (described, then killed).
    pub strays: String,
}

/// Runs `cmd` in its own process group with `stdin` fed on a thread and stdout and stderr
/// read on threads, until it has exited and both streams are closed, at most `limit`.
///
/// Past the limit the test fails with `what did not exit within N s`, what every process
/// of the group waits for (from `/proc`), `hint`, and the output so far; the group is
/// killed first. Processes of the group still running when the program exits are
/// described in [`Finished::strays`] and killed.
#[track_caller]
pub fn run(cmd: &mut Command, what: &str, stdin: &[u8], limit: Duration, hint: &str) -> Finished {
    const CAP: usize = 16 << 20;
    let start = Instant::now();
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut group = Group::spawn(cmd, what);
    let mut input = group.child().stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    // EPIPE here means the program stopped reading: fine, as in a shell.
    thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = Capture::start(group.child().stdout.take().expect("stdout is piped"), CAP);
    let err = Capture::start(group.child().stderr.take().expect("stderr is piped"), CAP);
    let left = || limit.saturating_sub(start.elapsed());
    let exited = group.exited_within(left());
    let strays = if exited {
        let strays = group.strays();
        if strays.is_empty() {
            String::new()
        } else {
            hang::explain(&strays)
        }
    } else {
        String::new()
    };
    if exited && strays.is_empty() && out.ended_within(left()) && err.ended_within(left()) {
        let status = group.wait_timeout(Duration::ZERO).expect("it has exited");
        return Finished {
            status,
            stdout: out.finish(),
            stderr: err.finish(),
            elapsed: start.elapsed(),
            strays,
        };
    }
    if exited && !strays.is_empty() {
        group.kill();
        return Finished {
            status: group.wait_timeout(Duration::ZERO).expect("it was reaped"),
            stdout: out.bytes(),
            stderr: err.bytes(),
            elapsed: start.elapsed(),
            strays,
        };
    }
    let report = group.hang_report();
    group.kill();
    let state = if exited {
        "exited, but its stdout or stderr stayed open (a process it started still held it)"
    } else {
        "did not exit"
    };
    panic!(
        "`{what}` {state} within {}; its whole process group was killed.\n\
         Its processes at the deadline:\n{report}{hint}\nstdout so far {}\nstderr so far {}",
        secs(limit),
        out.excerpt(),
        err.excerpt()
    );
}

/// Calls `f` on a thread and returns its result; if it has not returned within `limit`,
/// the test fails with `what did not return within N s`, what this test's threads and the
/// processes it started during the call wait in, and `hint`. Those processes are killed.
#[track_caller]
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    hint: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let me = std::process::id() as i32;
    let before: Vec<i32> = procfs::descendants(me).iter().map(|p| p.pid).collect();
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("call-under-test".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("cannot spawn a thread");
    match rx.recv_timeout(limit) {
        Ok(value) => {
            // It has sent: it ends now. Joined, so that no thread outlives the call.
            let _ = handle.join();
            value
        }
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
        Err(RecvTimeoutError::Timeout) => {
            let started: Vec<i32> = procfs::descendants(me)
                .iter()
                .map(|p| p.pid)
                .filter(|p| !before.contains(p))
                .collect();
            let mut report = hang::explain_pids(started.iter().copied());
            report.push_str(&own_threads());
            for pid in &started {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            panic!(
                "{what} did not return within {}; what was waiting at the deadline:\n\
                 {report}{hint}",
                secs(limit)
            );
        }
    }
}

/// One line per thread of this test that is blocked in the kernel on something other than
/// a futex (a pipe, a FIFO, a queue, a semaphore): where it waits and on what.
pub fn own_threads() -> String {
    let me = std::process::id() as i32;
    let mut out = String::new();
    for tid in procfs::threads(me) {
        let dir = format!("/proc/{me}/task/{tid}");
        let comm = std::fs::read_to_string(format!("{dir}/comm")).unwrap_or_default();
        let wchan = std::fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default();
        let (comm, wchan) = (comm.trim(), wchan.trim());
        if wchan.is_empty() || wchan == "0" || wchan.starts_with("futex") {
            continue;
        }
        out.push_str(&format!(
            "- in this test, thread `{comm}` {}\n",
            hang::describe_wait(wchan)
        ));
    }
    out
}
