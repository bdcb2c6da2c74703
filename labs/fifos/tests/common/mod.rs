//! Helpers shared by the tests: a fresh service directory, `fifo-server` and `fifo-client`
//! under real deadlines, and the other side of the protocol played by the test itself (a
//! reply FIFO it reads, a fake server that answers), so that each test judges one part.
//!
//! Every process a test starts runs in its own process group, which is killed when the
//! test ends, whatever happened; every FIFO a helper makes is removed when it is dropped.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, pipe, read, write};

/// How long a program may take for something that takes milliseconds when it is right.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Pids that the tests use when they play a client themselves: valid, above any real pid.
pub const FAKE_PID: u32 = 2_000_000_000;

/// A fresh, empty service directory, removed (with whatever is left in it) at the end.
pub fn service_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fifos-test-")
        .tempdir()
        .expect("cannot make a temporary directory")
}

/// `DIR/seqnum.fifo`.
pub fn server_fifo(dir: &Path) -> PathBuf {
    dir.join("seqnum.fifo")
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("cannot list the service directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether `path` exists, as anything.
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Starts `prog args...` in its own process group (a [`testkit::Group`], killed when
/// dropped), with stdout and stderr piped.
fn spawn(prog: &str, args: &[&std::ffi::OsStr]) -> testkit::Group {
    let mut cmd =
        Command::cargo_bin(prog).unwrap_or_else(|e| panic!("cannot find the {prog} binary: {e}"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    testkit::Group::spawn(&mut cmd, command_line(prog, args))
}

/// `prog arg...`, for messages.
fn command_line(prog: &str, args: &[&std::ffi::OsStr]) -> String {
    let mut line = prog.to_owned();
    for a in args {
        line.push(' ');
        line.push_str(&a.to_string_lossy());
    }
    line
}

/// Reads a whole stream on a thread.
fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = from.read_to_end(&mut all);
        all
    })
}

/// A running `fifo-server DIR`; its process group is killed when dropped.
pub struct Server {
    /// The server, leader of its own process group.
    pub group: testkit::Group,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Server {
    /// Starts `fifo-server DIR` and waits for its `ready` line; fails the test otherwise.
    #[track_caller]
    pub fn start(dir: &Path) -> Server {
        match Server::try_start(dir) {
            Ok(server) => server,
            Err(why) => panic!("`fifo-server DIR` did not become ready: {why}"),
        }
    }

    /// Starts `fifo-server DIR`: the server once it printed `ready`, or what it did instead.
    pub fn try_start(dir: &Path) -> Result<Server, String> {
        let mut group = spawn("fifo-server", &[dir.as_os_str()]);
        let stdout = group.child().stdout.take().expect("stdout is piped");
        let stderr = drain(group.child().stderr.take().expect("stderr is piped"));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) if l == "ready" => {
                        let _ = tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let mut server = Server {
            group,
            stderr: Some(stderr),
        };
        if rx.recv_timeout(DEADLINE).is_ok() {
            return Ok(server);
        }
        match server.group.wait_timeout(Duration::ZERO) {
            Some(status) => Err(format!(
                "it exited ({status}) without printing `ready`; stderr: {:?}",
                server.stderr()
            )),
            None => Err(format!(
                "it printed no `ready` line within {} s; what it was doing:\n{}",
                DEADLINE.as_secs(),
                server.group.hang_report()
            )),
        }
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: Signal) {
        self.group.signal(sig);
    }

    /// Waits for the server to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.group.wait_timeout(limit)
    }

    /// What the server is doing now, from `/proc`, for messages.
    pub fn report(&self) -> String {
        self.group.hang_report()
    }

    /// Everything it wrote on stderr (call once it has exited).
    pub fn stderr(&mut self) -> String {
        let bytes = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

/// Runs `prog args...` to its end, at most 10 s. Past that the test fails with what each
/// of its processes waits for (a client blocked opening a FIFO that no server reads, say),
/// and its process group is killed.
#[track_caller]
pub fn run(prog: &str, args: &[&std::ffi::OsStr]) -> (Output, Duration) {
    let mut cmd =
        Command::cargo_bin(prog).unwrap_or_else(|e| panic!("cannot find the {prog} binary: {e}"));
    cmd.args(args);
    let done = testkit::run(
        &mut cmd,
        &command_line(prog, args),
        b"",
        Duration::from_secs(10),
        if prog == "fifo-server" {
            "A fifo-server that must not start (a live server already reads DIR/seqnum.fifo, \
             or something that is not a FIFO is in its place) exits 1 at once and touches \
             nothing; one that waits in poll is serving: it took a FIFO that was not its to \
             take (never unlink an existing one: probe it with O_WRONLY|O_NONBLOCK, ENXIO \
             means stale)."
        } else {
            "A client must never block for good: it opens its reply FIFO for reading with \
             O_NONBLOCK before it sends, and opens the server's FIFO with O_NONBLOCK (ENXIO: \
             no server); it waits for the reply in poll with the time left of its 5 s, never \
             without a timeout; a server must reply with O_NONBLOCK (ENXIO: the client is \
             gone)."
        },
    );
    let output = Output {
        status: done.status,
        stdout: done.stdout,
        stderr: done.stderr,
    };
    (output, done.elapsed)
}

/// Runs `fifo-client DIR COUNT`.
#[track_caller]
pub fn client(dir: &Path, count: &str) -> (Output, Duration) {
    run("fifo-client", &[dir.as_os_str(), count.as_ref()])
}

/// Writes `bytes` into `DIR/seqnum.fifo` as a client would (one write when short).
#[track_caller]
pub fn send(dir: &Path, bytes: &[u8]) {
    let path = server_fifo(dir);
    let fd = open(
        &path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "cannot open {} for writing: {e} (no server reads it?)",
            path.display()
        )
    });
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::empty())).expect("fcntl");
    std::fs::File::from(fd)
        .write_all(bytes)
        .expect("cannot write a request");
}

/// A reply FIFO `DIR/client.<pid>.fifo` that the test reads, as a client; removed on drop.
pub struct ReplyEnd {
    pub path: PathBuf,
    fd: OwnedFd,
}

impl ReplyEnd {
    /// Creates it and opens it for reading (non-blocking), before any request is sent.
    pub fn new(dir: &Path, pid: u32) -> ReplyEnd {
        let path = dir.join(format!("client.{pid}.fifo"));
        mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("mkfifo of a reply FIFO");
        let fd = open(
            &path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("cannot open a reply FIFO");
        ReplyEnd { path, fd }
    }

    /// Waits up to [`DEADLINE`] for one whole line and returns what arrived.
    pub fn line(&self) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.contains(&b'\n') {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(left.as_millis()).unwrap_or(PollTimeout::MAX);
            if left.is_zero() || matches!(poll(&mut fds, ms), Ok(0) | Err(_)) {
                break;
            }
            match read(&self.fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

impl Drop for ReplyEnd {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How the fake server answers a request for `count` numbers, given the next free number.
pub type Answer = fn(next: u64, count: u64) -> Option<String>;

/// Answers as the real server does: `<next>\n`.
pub fn honest(next: u64, _count: u64) -> Option<String> {
    Some(format!("{next}\n"))
}

/// Never answers.
pub fn mute(_next: u64, _count: u64) -> Option<String> {
    None
}

/// A server played by the test, on a thread: it holds `DIR/seqnum.fifo`, records every
/// request line and answers with `answer`. Stopped and its FIFO removed when dropped.
pub struct FakeServer {
    fifo: PathBuf,
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    /// Every request line received so far, without its newline.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    pub fn start(dir: &Path, answer: Answer) -> FakeServer {
        let fifo = server_fifo(dir);
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).expect("mkfifo seqnum.fifo");
        let reader = open(
            &fifo,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open seqnum.fifo for reading");
        let keepalive = open(&fifo, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
            .expect("open seqnum.fifo for writing");
        let (stop_r, stop_w) = pipe().expect("pipe");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let dir = dir.to_owned();
        let thread = thread::spawn(move || {
            let _keepalive = keepalive;
            let mut pending = Vec::new();
            let mut next = 0;
            let mut buf = [0u8; 4096];
            loop {
                let mut fds = [
                    PollFd::new(reader.as_fd(), PollFlags::POLLIN),
                    PollFd::new(stop_r.as_fd(), PollFlags::POLLIN),
                ];
                if poll(&mut fds, PollTimeout::NONE).is_err()
                    || fds[1].revents().is_some_and(|r| !r.is_empty())
                {
                    return;
                }
                let Ok(n) = read(&reader, &mut buf) else {
                    continue;
                };
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line[..end]).into_owned();
                    seen.lock().unwrap().push(line.clone());
                    let Some((pid, count)) = line.split_once(' ') else {
                        continue;
                    };
                    let count: u64 = count.parse().unwrap_or(0);
                    let Some(reply) = answer(next, count) else {
                        continue;
                    };
                    let path = dir.join(format!("client.{pid}.fifo"));
                    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
                    let delivered = open(&path, flags, Mode::empty())
                        .is_ok_and(|fd| write(&fd, reply.as_bytes()).is_ok());
                    if delivered && !reply.starts_with("error") {
                        next += count;
                    }
                }
            }
        });
        FakeServer {
            fifo,
            stop: Some(stop_w),
            thread: Some(thread),
            requests,
        }
    }

    /// The request lines received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = write(&stop, b"x");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.fifo);
    }
}
