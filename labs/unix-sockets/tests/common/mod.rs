//! Helpers shared by the tests: a fresh folder for sockets, `uds-bus` and `fd-server` under
//! real deadlines with their stderr log readable as it grows, and bus clients played by the
//! test that read whole lines with a deadline.
//!
//! Every process a test starts runs in its own process group, killed when the test ends
//! whatever happened; the folder and whatever is left in it are removed at the end.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use nix::sys::signal::Signal;

/// How long a program may take for something that takes milliseconds when it is right.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A fresh, empty folder for socket files (short enough for `sun_path`), removed at the end.
pub fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("uds-")
        .tempdir_in("/tmp")
        .expect("cannot make a temporary directory")
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("cannot list the test's folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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

/// Lines a process writes on stderr, as they come.
#[derive(Clone, Default)]
pub struct Log(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Log {
    fn follow(from: impl Read + Send + 'static) -> Log {
        let log = Log::default();
        let inner = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                let (lines, cv) = &*inner.0;
                lines.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        log
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    /// Waits up to [`DEADLINE`] for a line that contains `needle`.
    pub fn wait_for(&self, needle: &str) -> bool {
        self.wait_count(needle, 1)
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits up to [`DEADLINE`] until `n` lines contain `needle`.
    pub fn wait_count(&self, needle: &str, n: usize) -> bool {
        let deadline = Instant::now() + DEADLINE;
        let (lines, cv) = &*self.0;
        let mut guard = lines.lock().unwrap();
        loop {
            if guard.iter().filter(|l| l.contains(needle)).count() >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
    }
}

/// A running server (`uds-bus` or `fd-server`); its process group is killed when dropped.
pub struct Server {
    pub group: testkit::Group,
    pub log: Log,
    pub what: String,
}

impl Server {
    /// Starts `prog args...` and waits for its `ready` line; fails the test otherwise.
    #[track_caller]
    pub fn start(prog: &str, args: &[&std::ffi::OsStr]) -> Server {
        match Server::try_start(prog, args) {
            Ok(s) => s,
            Err(why) => panic!("`{}` did not become ready: {why}", command_line(prog, args)),
        }
    }

    /// Starts `uds-bus PATH`.
    #[track_caller]
    pub fn bus(path: &Path) -> Server {
        Server::start("uds-bus", &[path.as_os_str()])
    }

    /// Starts `prog args...`: the server once it printed `ready`, or what it did instead.
    pub fn try_start(prog: &str, args: &[&std::ffi::OsStr]) -> Result<Server, String> {
        let what = command_line(prog, args);
        let mut cmd = Command::cargo_bin(prog)
            .unwrap_or_else(|e| panic!("cannot find the {prog} binary: {e}"));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = testkit::Group::spawn(&mut cmd, what.clone());
        let stdout = group.child().stdout.take().expect("stdout is piped");
        let log = Log::follow(group.child().stderr.take().expect("stderr is piped"));
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
        let mut server = Server { group, log, what };
        if rx.recv_timeout(DEADLINE).is_ok() {
            return Ok(server);
        }
        match server.group.wait_timeout(Duration::ZERO) {
            Some(status) => Err(format!(
                "it exited ({status}) without printing `ready`; stderr: {:?}",
                server.log.lines()
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

    /// Waits for the log line `client PID (uid UID) <event>` of the test's own process.
    #[track_caller]
    pub fn expect_log(&self, event: &str) {
        let needle = format!("client {} (uid {}) {event}", std::process::id(), uid());
        assert!(
            self.log.wait_for(&needle),
            "`{}` did not log `{needle}` on stderr within {} s; its log: {:?}",
            self.what,
            DEADLINE.as_secs(),
            self.log.lines()
        );
    }
}

/// This process's uid.
pub fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// A bus client played by the test.
pub struct Client {
    pub stream: UnixStream,
    /// Bytes read but not yet returned as a line.
    pending: Vec<u8>,
}

impl Client {
    /// Connects to the bus at `path` and waits until the bus logged that this client joined
    /// (the n-th `joined` line of this process), so that it gets every line sent after.
    #[track_caller]
    pub fn join(bus: &Server, path: &Path) -> Client {
        let needle = format!("client {} (uid {}) joined", std::process::id(), uid());
        let before = bus.log.count(&needle);
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", path.display()));
        assert!(
            bus.log.wait_count(&needle, before + 1),
            "uds-bus did not log `{needle}` within {} s of a connect by this test (its own \
             uid): it must accept, read SO_PEERCRED, admit the server's own uid and log one \
             line per client. Its log: {:?}",
            DEADLINE.as_secs(),
            bus.log.lines()
        );
        Client::from(stream)
    }

    /// Sends `bytes` (all of them).
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("cannot write to the bus: {e}"));
    }

    /// The next whole line (with its `\n`), waiting up to [`DEADLINE`]; `Err` says what came
    /// instead: the end of the stream, or nothing in time (with the bytes of a partial line).
    pub fn line(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + DEADLINE;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=nl).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no whole line within {} s (a partial line: {:?})",
                    DEADLINE.as_secs(),
                    String::from_utf8_lossy(&self.pending)
                ));
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(format!(
                        "the bus closed the connection (after the partial line {:?})",
                        String::from_utf8_lossy(&self.pending)
                    ));
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading from the bus failed: {e}")),
            }
        }
    }

    /// The next line, which must be `expected`.
    #[track_caller]
    pub fn expect(&mut self, expected: &str, why: &str) {
        match self.line() {
            Ok(l) if l == expected => {}
            Ok(l) => panic!("{why}: expected the line {expected:?}, got {l:?}"),
            Err(e) => panic!("{why}: expected the line {expected:?}: {e}"),
        }
    }

    /// Waits until the bus closes this connection; what was read until then.
    pub fn wait_closed(&mut self) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + DEADLINE;
        let mut all = std::mem::take(&mut self.pending);
        let mut buf = [0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("still open after {} s", DEADLINE.as_secs()));
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(all),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(all),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading failed: {e}")),
            }
        }
    }
}

impl From<UnixStream> for Client {
    fn from(stream: UnixStream) -> Client {
        Client {
            stream,
            pending: Vec::new(),
        }
    }
}

/// Runs `prog args...` to its end, at most 10 s; past that the test fails with what its
/// processes wait for.
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
        "A program must never block for good: a client gives up on a server that sends \
         nothing (a receive timeout), a second server that finds a live one exits at once.",
    );
    let output = Output {
        status: done.status,
        stdout: done.stdout,
        stderr: done.stderr,
    };
    (output, done.elapsed)
}

/// A socket file nobody listens on, as a server killed with SIGKILL leaves it.
pub fn stale_socket(path: &Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind a stale socket");
    drop(listener);
    assert!(path.exists(), "the stale socket file vanished");
}

/// `dir/name`.
pub fn at(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
