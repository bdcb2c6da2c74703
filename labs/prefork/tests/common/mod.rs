//! Helpers shared by the tests: a document root with known files, `prefork-httpd` started
//! in its own process group (killed with everything it forked when the test ends), a raw
//! HTTP client with deadlines, and the master's workers from /proc.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use testkit::deadline::{Capture, Group};

/// How long one request or one start may take. Every scenario here ends in well under a
/// second when the code is right.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// The 4 KiB file's bytes: every byte value, 16 times.
pub fn four_k() -> Vec<u8> {
    (0..4096u32).map(|i| (i % 256) as u8).collect()
}

/// A document root: `index.html`, `4k.bin`, `notes.txt`, `style.css`, `big.bin` (1 MiB),
/// `docs/index.html`, `docs/a b.txt`, `empty/` (no index), and `escape`, a symlink to a
/// file outside the root (`secret.txt`, beside the root).
pub struct Www {
    pub dir: tempfile::TempDir,
}

impl Www {
    pub fn new() -> Www {
        let dir = tempfile::tempdir().expect("cannot make a temporary folder");
        let root = dir.path().join("www");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("index.html"), "<h1>prefork</h1>\n").unwrap();
        std::fs::write(root.join("4k.bin"), four_k()).unwrap();
        std::fs::write(root.join("notes.txt"), "plain text\n").unwrap();
        std::fs::write(root.join("style.css"), "h1 { color: red }\n").unwrap();
        std::fs::write(root.join("big.bin"), big()).unwrap();
        std::fs::write(root.join("docs/index.html"), "<p>docs</p>\n").unwrap();
        std::fs::write(root.join("docs/a b.txt"), "spaced\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "SECRET\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("escape")).unwrap();
        Www { dir }
    }

    /// The document root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }
}

/// The bytes of `big.bin`: 1 MiB that is not a repeating pattern of a power of two.
pub fn big() -> Vec<u8> {
    (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// `prefork-httpd` started by a test: killed with its whole group when dropped.
pub struct Server {
    pub group: Group,
    pub port: u16,
    pub stderr: Capture,
    pub stdout: Capture,
}

/// A command for the program `name`.
pub fn bin(name: &str) -> Command {
    Command::cargo_bin(name).unwrap_or_else(|e| panic!("cannot find the program {name}: {e}"))
}

impl Server {
    /// Starts `prefork-httpd --port 0 --root ROOT --workers N` and waits for its
    /// `listening on 127.0.0.1:PORT` line.
    #[track_caller]
    pub fn start(root: &Path, workers: usize) -> Server {
        let mut cmd = bin("prefork-httpd");
        cmd.args(["--port", "0", "--root"])
            .arg(root)
            .args(["--workers", &workers.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // As a terminal starts it: a test runner started in the background (or with nohup)
        // ignores SIGINT or SIGHUP, and an ignored disposition survives exec.
        // SAFETY: signal(2) is async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGINT, libc::SIGHUP, libc::SIGTERM] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        let what = format!("prefork-httpd --port 0 --root DIR --workers {workers}");
        let mut group = Group::spawn(&mut cmd, what.clone());
        let stdout = Capture::start(group.child().stdout.take().unwrap(), 1 << 16);
        let stderr = Capture::start(group.child().stderr.take().unwrap(), 1 << 16);
        let end = Instant::now() + DEADLINE;
        let port = loop {
            let out = String::from_utf8_lossy(&stdout.bytes()).into_owned();
            if let Some(line) = out.lines().next().filter(|_| out.contains('\n')) {
                let port = line
                    .strip_prefix("listening on 127.0.0.1:")
                    .and_then(|p| p.trim().parse::<u16>().ok())
                    .filter(|&p| p != 0)
                    .unwrap_or_else(|| {
                        panic!(
                            "`{what}` printed {line:?} first; it must print \
                             `listening on 127.0.0.1:PORT` with the real port"
                        )
                    });
                break port;
            }
            if group.exited_within(Duration::ZERO) {
                panic!(
                    "`{what}` exited without printing `listening on 127.0.0.1:PORT`; its \
                     stderr: {}",
                    stderr.excerpt()
                );
            }
            if Instant::now() > end {
                panic!(
                    "`{what}` did not print `listening on 127.0.0.1:PORT` within {}; its \
                     stderr: {}\n{}",
                    testkit::deadline::secs(DEADLINE),
                    stderr.excerpt(),
                    group.hang_report()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let server = Server {
            group,
            port,
            stderr,
            stdout,
        };
        server.wait_workers(workers);
        server
    }

    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.group.pid()
    }

    /// The master's live children (its workers), sorted.
    pub fn workers(&self) -> Vec<i32> {
        let mut v: Vec<i32> = testkit::procfs::children(self.pid())
            .into_iter()
            .filter(|p| p.state != 'Z')
            .map(|p| p.pid)
            .collect();
        v.sort();
        v
    }

    /// Waits until the master has `n` live workers; fails the test otherwise.
    #[track_caller]
    pub fn wait_workers(&self, n: usize) -> Vec<i32> {
        let end = Instant::now() + DEADLINE;
        loop {
            let w = self.workers();
            if w.len() == n {
                return w;
            }
            if Instant::now() > end {
                panic!(
                    "prefork-httpd should have {n} worker processes (children of the master), \
                     but it has {} ({w:?}) after {}",
                    w.len(),
                    testkit::deadline::secs(DEADLINE)
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A new connection to the server.
    #[track_caller]
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{}: {e}", self.port));
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.set_write_timeout(Some(DEADLINE)).unwrap();
        s
    }

    /// Sends `request` on a new connection and reads one response.
    #[track_caller]
    pub fn request(&self, request: &str) -> Response {
        let mut s = self.connect();
        s.write_all(request.as_bytes()).unwrap();
        read_response(&mut s, request, !request.starts_with("HEAD"))
    }

    /// Whether /server-status shows a worker in `state` (`idle`, `reading`, `writing`).
    #[track_caller]
    pub fn any_worker_in(&self, state: &str) -> bool {
        let page = self.get("/server-status");
        String::from_utf8_lossy(&page.body)
            .lines()
            .any(|l| l.split(' ').nth(2) == Some(state))
    }

    /// Waits until the server has read every byte sent on `c` (its end of the connection
    /// has nothing left in its receive queue): the next bytes then arrive in a read of their
    /// own. Fails the test with `what` when it does not within [`DEADLINE`].
    #[track_caller]
    pub fn wait_read(&self, c: &TcpStream, what: &str) {
        let (server, client) = (c.peer_addr().unwrap(), c.local_addr().unwrap());
        let end = Instant::now() + DEADLINE;
        loop {
            let left = testkit::net::rx_queue(server, client);
            if left == Some(0) {
                return;
            }
            if Instant::now() > end {
                panic!(
                    "the server did not read {what} within {} ({} bytes of it still unread): \
                     a worker must accept the connection and read what the client sends\n{}",
                    testkit::deadline::secs(DEADLINE),
                    left.map_or("all".to_string(), |n| n.to_string()),
                    self.group.hang_report()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The worker that serves connection `c` (holds the server's end of it). Fails the
    /// test when no worker does.
    #[track_caller]
    pub fn holder(&self, c: &TcpStream) -> i32 {
        let inode = socket_inode(c.peer_addr().unwrap(), c.local_addr().unwrap());
        let found = inode.and_then(|ino| {
            self.workers().into_iter().find(|&w| {
                testkit::procfs::fds(w)
                    .iter()
                    .any(|f| f.kind == testkit::procfs::FdKind::Socket(ino))
            })
        });
        found.unwrap_or_else(|| {
            panic!(
                "no worker of {:?} holds the server's end of the connection (socket inode \
                 {inode:?}): a worker must accept it and serve it",
                self.workers()
            )
        })
    }

    /// `GET path` with `Connection: close`.
    #[track_caller]
    pub fn get(&self, path: &str) -> Response {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
    }
}

/// One response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `e` says the peer closed the connection abruptly.
fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

/// Reads one response from `s`: the head, then `Content-Length` bytes of body when
/// `with_body`. Fails the test with what was read when it cannot.
#[track_caller]
pub fn read_response(s: &mut TcpStream, request: &str, with_body: bool) -> Response {
    try_read_response(s, request, with_body).unwrap_or_else(|why| panic!("{why}"))
}

/// [`read_response`], with what went wrong as an `Err` for the caller to explain (a
/// malformed head still fails the test).
#[track_caller]
pub fn try_read_response(
    s: &mut TcpStream,
    request: &str,
    with_body: bool,
) -> Result<Response, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte up to the blank line, so nothing of a next response is consumed.
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            Ok(_) => {
                return Err(format!(
                    "the server closed the connection before a whole response head to \
                     {request:?}; it had sent {:?}",
                    String::from_utf8_lossy(&buf)
                ));
            }
            // A reset is a close too: a peer killed with our bytes unread answers with RST.
            Err(e) if is_reset(&e) => {
                return Err(format!(
                    "the server closed the connection ({e}) before a whole response head to \
                     {request:?}; it had sent {:?}",
                    String::from_utf8_lossy(&buf)
                ));
            }
            Err(e) => {
                return Err(format!(
                    "no whole response head to {request:?} within {} ({e}); the server had \
                     sent {:?}",
                    testkit::deadline::secs(DEADLINE),
                    String::from_utf8_lossy(&buf)
                ));
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("the status line {status_line:?} is not `HTTP/1.1 CODE REASON`"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("the header line {l:?} has no colon"));
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = r
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the response to {request:?} has no Content-Length: {text:?}"));
    if with_body {
        r.body = vec![0; len];
        s.read_exact(&mut r.body).map_err(|e| {
            format!("the response to {request:?} promised {len} bytes of body but: {e}")
        })?;
    }
    Ok(r)
}

/// Whether the peer closed `s` (a read returns 0, or a reset) within `limit`; bytes or a
/// timeout mean it did not.
pub fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 1];
    let closed = match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    closed
}

/// The inode of the socket whose local address is `local` and peer `remote`, from
/// /proc/net/tcp (`None` when there is no such connection).
pub fn socket_inode(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    testkit::net::connection(local, remote).map(|s| s.inode)
}

/// Whether signal `sig` waits to be delivered to process `pid`: a stopped process keeps the
/// signals sent to it pending.
pub fn pending(pid: i32, sig: nix::sys::signal::Signal) -> bool {
    testkit::procfs::signal_pending(pid, sig as i32)
}

/// The state letter of `pid` in /proc (`S`, `T` stopped, `Z` zombie), `'-'` once gone.
pub fn state(pid: i32) -> char {
    testkit::procfs::stat(pid).map_or('-', |p| p.state)
}

/// Stops `pid` (SIGSTOP) and waits until it is stopped: the signals sent to it meanwhile
/// stay pending, and the bytes sent to it wait in its sockets, until [`resume`].
#[track_caller]
pub fn stop(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    );
    let end = Instant::now() + DEADLINE;
    while state(pid) != 'T' {
        assert!(
            Instant::now() < end,
            "process {pid} did not stop on SIGSTOP (state {})",
            state(pid)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Lets a process stopped by [`stop`] go on.
pub fn resume(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGCONT,
    );
}
