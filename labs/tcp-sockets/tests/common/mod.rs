//! Helpers shared by the tests: `kv-server` started on a free port under a real deadline,
//! raw connections that send bytes and expect exact bytes back, and a look at the kernel's
//! socket table to know when the server has read what was sent.
//!
//! The helpers read replies as raw bytes and compare them with the exact RESP expected, so
//! the server's tests do not depend on your reply parser (part A) or your client (part D).

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use nix::sys::signal::Signal;

/// How long something that takes milliseconds when it is right may take.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A running `kv-server --port 0 ...`, killed (its whole process group) when dropped.
pub struct KvServer {
    pub group: testkit::Group,
    pub addr: SocketAddr,
    stdout: testkit::deadline::Capture,
    stderr: testkit::deadline::Capture,
}

impl KvServer {
    /// Starts `kv-server --port 0 EXTRA...` and waits for its `listening on` line.
    #[track_caller]
    pub fn start(extra: &[&str]) -> KvServer {
        let mut cmd = Command::cargo_bin("kv-server").expect("no kv-server binary");
        cmd.args(["--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Whoever started the tests may have left SIGINT ignored (a shell does so for its
        // background jobs), and an ignored signal stays ignored across exec: give the server
        // SIGINT's default action, as a terminal's Ctrl-C would find it.
        // SAFETY: only sigaction, which is async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut group =
            testkit::Group::spawn(&mut cmd, format!("kv-server --port 0 {}", extra.join(" ")));
        let stdout =
            testkit::deadline::Capture::start(group.child().stdout.take().unwrap(), 1 << 16);
        let stderr =
            testkit::deadline::Capture::start(group.child().stderr.take().unwrap(), 1 << 16);
        let end = Instant::now() + DEADLINE;
        let line = loop {
            let out = stdout.bytes();
            if let Some(nl) = out.iter().position(|&b| b == b'\n') {
                break String::from_utf8_lossy(&out[..nl]).into_owned();
            }
            if Instant::now() > end || group.exited_within(Duration::ZERO) {
                panic!(
                    "kv-server --port 0 did not print `listening on 127.0.0.1:PORT` within {DEADLINE:?}; \
                     stdout {}, stderr {}",
                    stdout.excerpt(),
                    stderr.excerpt()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let addr = match line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse::<SocketAddr>().ok())
        {
            Some(a) if a.ip().is_loopback() && a.port() != 0 => a,
            Some(a) if a.ip().is_unspecified() => panic!(
                "kv-server printed {line:?}: it listens on {}, every address of the machine, \
                 so anyone on the network can reach it. Listen on 127.0.0.1 only",
                a.ip()
            ),
            Some(a) if a.port() == 0 => panic!(
                "kv-server --port 0 printed {line:?}: the kernel picks the port, and the line \
                 must say which (ask the socket: `local_addr`, getsockname)"
            ),
            _ => panic!(
                "kv-server's first line must be `listening on 127.0.0.1:PORT` with the real \
                 port, got {line:?}"
            ),
        };
        KvServer {
            group,
            addr,
            stdout,
            stderr,
        }
    }

    /// A new raw connection, with read and write timeouts of [`DEADLINE`].
    #[track_caller]
    pub fn connect(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// Sends SIGTERM and waits for the exit.
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        self.group.signal(Signal::SIGTERM);
        self.group.wait_or_explain(
            DEADLINE,
            "on SIGTERM the server stops accepting, answers what it received, closes its \
             connections and exits 0",
        )
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.bytes()).into_owned()
    }
}

/// A raw TCP connection to the server.
pub struct Raw {
    pub stream: TcpStream,
    pub server: SocketAddr,
}

impl Raw {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("cannot connect to kv-server at {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        Raw {
            stream,
            server: addr,
        }
    }

    /// Sends `bytes` (all of them).
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("sending {} bytes to kv-server failed: {e}", bytes.len()));
    }

    /// Sends `bytes` and waits until the server has read them all from its socket (the
    /// kernel's receive queue of its end is empty), so that what comes next arrives in a
    /// later read of the server.
    #[track_caller]
    pub fn send_and_wait_read(&mut self, bytes: &[u8]) {
        self.send(bytes);
        let me = self.stream.local_addr().unwrap();
        let end = Instant::now() + DEADLINE;
        while rx_queue(self.server, me).unwrap_or(0) != 0 {
            assert!(
                Instant::now() < end,
                "kv-server did not read {} bytes sent on a connection within {DEADLINE:?}: \
                 does it read from every client that has data (not only from one)?",
                bytes.len()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Reads exactly `expected.len()` bytes and compares them with `expected`.
    #[track_caller]
    pub fn expect(&mut self, what: &str, expected: &[u8]) {
        let mut got = vec![0u8; expected.len()];
        let mut have = 0;
        // Why the reading stopped short, if it did.
        let mut short = String::new();
        while have < got.len() {
            match self.stream.read(&mut got[have..]) {
                Ok(0) => {
                    short = ", and then the server closed the connection".into();
                    break;
                }
                Ok(k) => have += k,
                Err(_) => {
                    short = format!("; nothing more came within {DEADLINE:?}");
                    break;
                }
            }
        }
        got.truncate(have);
        if got != expected {
            panic!(
                "{what}: expected the reply {}, got {}{short}",
                testkit::compare::show(expected),
                testkit::compare::show(&got)
            );
        }
    }

    /// Reads up to `n` bytes (fewer at EOF or after the timeout).
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        let mut have = 0;
        while have < n {
            match self.stream.read(&mut got[have..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => have += k,
            }
        }
        got.truncate(have);
        got
    }

    /// Reads one line ending in `\r\n` (at most 4 KiB).
    pub fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") && line.len() < 4096 {
            match self.stream.read(&mut b) {
                Ok(1) => line.push(b[0]),
                _ => break,
            }
        }
        line
    }

    /// Whether the server closed the connection (EOF or reset) within [`DEADLINE`].
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 1024];
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// The receive queue of the server's end of the connection `server` <- `client`: how many
/// bytes the client sent that the server has not read yet.
pub use testkit::net::rx_queue;

/// The send and receive queues of `local`'s end of the connection to `remote`, from
/// /proc/net/tcp: bytes written and not yet acknowledged by `remote` (not yet in its receive
/// queue), and bytes received and not yet read.
#[allow(unused_imports)]
pub use testkit::net::queues;

/// The RESP array of bulk strings for `args`, written out here (not with your encoder).
pub fn req(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The RESP bulk string reply of `v`.
pub fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// Pseudo-random bytes from `seed` (printed by the tests that use them).
pub fn pattern(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
