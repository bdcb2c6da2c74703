//! The server's processes and connections as the kernel sees them, to force the moments a
//! check judges instead of hoping load makes them: a worker stopped (SIGSTOP) while a signal
//! waits pending and a request arrives, which worker holds a connection (/proc/net/tcp and
//! the workers' descriptors), whether the server has read what a client sent (its receive
//! queue), clients that hold a worker with half a request.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::harness::PROMPT;
use crate::check::{Fail, poll_until};
use crate::fail;

/// The first half of a request: a worker that accepts it waits for the rest.
pub(super) const HALF: &[u8] = b"GET /notes.txt HTTP/1.1\r\nHost: held\r\n";

/// The state letter of `pid` in /proc (`S`, `T` stopped, `Z` zombie), `'-'` once gone.
pub(super) fn state(pid: i32) -> char {
    testkit::procfs::stat(pid).map_or('-', |p| p.state)
}

/// Whether `pid` is gone or a zombie.
pub(super) fn dead(pid: i32) -> bool {
    matches!(state(pid), 'Z' | '-')
}

/// Whether `sig` waits to be delivered to `pid` (`ShdPnd` or `SigPnd` of its status): a
/// stopped process keeps what is sent to it pending.
pub(super) fn pending(pid: i32, sig: Signal) -> bool {
    testkit::procfs::signal_pending(pid, sig as i32)
}

/// Stops `pid` with SIGSTOP and waits until it is stopped: what is sent to it meanwhile
/// (signals, bytes on its sockets) waits until [`resume`].
pub(super) fn stop(pid: i32) -> Result<(), Fail> {
    kill(Pid::from_raw(pid), Signal::SIGSTOP)?;
    if !poll_until(Instant::now() + PROMPT, || {
        matches!(state(pid), 'T' | 'Z' | '-')
    }) {
        fail!(
            "process {pid} did not stop on SIGSTOP within {} s (state {})",
            PROMPT.as_secs(),
            state(pid)
        );
    }
    Ok(())
}

/// Lets a process stopped by [`stop`] go on.
pub(super) fn resume(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
}

/// Which of `pids` holds the server's end of connection `c`.
pub(super) fn holder(pids: &[i32], c: &TcpStream) -> Option<i32> {
    let ino = testkit::net::connection(c.peer_addr().ok()?, c.local_addr().ok()?)?.inode;
    pids.iter().copied().find(|&p| {
        testkit::procfs::fds(p)
            .iter()
            .any(|f| f.kind == testkit::procfs::FdKind::Socket(ino))
    })
}

/// Waits until the server has read every byte sent on `c` (nothing left in its receive
/// queue); `what` names those bytes in the failure.
pub(super) fn wait_read(c: &TcpStream, what: &str) -> Result<(), Fail> {
    let (server, client) = (c.peer_addr()?, c.local_addr()?);
    let read = poll_until(Instant::now() + PROMPT, || {
        testkit::net::rx_queue(server, client) == Some(0)
    });
    if !read {
        fail!(
            "the server did not read {what} within {} s ({} bytes of it unread): a worker \
             must accept a connection and read what its client sends",
            PROMPT.as_secs(),
            testkit::net::rx_queue(server, client).map_or("all".into(), |n| n.to_string())
        );
    }
    Ok(())
}

/// A client that holds a worker: it connects and sends half a request, and once the server
/// has read it, some worker waits for the rest. `others` clients already hold a worker each.
pub(super) fn hold(port: u16, others: usize) -> Result<TcpStream, Fail> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(PROMPT))?;
    c.write_all(HALF)?;
    if others == 0 {
        wait_read(&c, "the first half of a request")?;
    } else {
        wait_read(
            &c,
            &format!(
                "the first half of a request while {others} other client(s) each held a worker \
                 with half a request (every worker accepts, one connection at a time, and the \
                 master never accepts)"
            ),
        )?;
    }
    Ok(c)
}

/// One response read from `c`: its status and head (lower case); its body was read too.
#[derive(Debug)]
pub(super) struct Response {
    pub status: u16,
    pub head: String,
}

impl Response {
    /// Whether it says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.head
            .lines()
            .any(|l| l.starts_with("connection:") && l.contains("close"))
    }
}

/// Why no response came.
#[derive(Debug)]
pub(super) struct NoResponse {
    /// The server closed the connection (or reset it); else it stayed silent until the
    /// read timeout.
    pub closed: bool,
    /// What happened, in words, with the bytes that came.
    pub what: String,
}

impl std::fmt::Display for NoResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// Reads one response to a GET from `c` (within the stream's read timeout).
pub(super) fn read_response(c: &mut TcpStream) -> Result<Response, NoResponse> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = |what: String| NoResponse { closed: true, what };
    loop {
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..p]).to_ascii_lowercase();
            let status = head
                .strip_prefix("http/1.1 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| {
                    closed(format!(
                        "a response that does not start `HTTP/1.1 CODE`: {head:?}"
                    ))
                })?;
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| closed(format!("a response without Content-Length: {head:?}")))?;
            if got.len() >= p + 4 + len {
                return Ok(Response { status, head });
            }
        }
        match c.read(&mut buf) {
            Ok(0) => {
                return Err(closed(format!(
                    "the server closed the connection after sending {}",
                    shown(&got)
                )));
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(NoResponse {
                    closed: false,
                    what: format!(
                        "no whole response within {} s; the server had sent {}",
                        c.read_timeout()
                            .ok()
                            .flatten()
                            .unwrap_or_default()
                            .as_secs(),
                        shown(&got)
                    ),
                });
            }
            Err(e) => {
                return Err(closed(format!(
                    "the connection failed ({e}) after the server had sent {}",
                    shown(&got)
                )));
            }
        }
    }
}

/// Whether the server has read every byte the client sent on `c`.
pub(super) fn all_read(c: &TcpStream) -> bool {
    match (c.peer_addr(), c.local_addr()) {
        (Ok(server), Ok(client)) => testkit::net::rx_queue(server, client) == Some(0),
        _ => false,
    }
}

/// Whether the server closes `c` (end of stream, or a reset) within `limit`.
pub(super) fn closed_within(c: &mut TcpStream, limit: Duration) -> bool {
    let _ = c.set_read_timeout(Some(limit));
    let mut b = [0u8; 64];
    let end = Instant::now() + limit;
    loop {
        match c.read(&mut b) {
            Ok(0) => return true,
            Ok(_) if Instant::now() < end => continue,
            Ok(_) => return false,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

/// Bytes a server sent, for messages: nothing, or their start.
fn shown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "nothing".into()
    } else {
        format!(
            "{:?}",
            crate::run::clip(&String::from_utf8_lossy(bytes), 200)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// The process holding a connection's server end is found through /proc/net/tcp, and the
    /// bytes a client sent show as unread until the server reads them.
    #[test]
    fn finds_the_holder_and_what_it_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let me = std::process::id() as i32;
        assert_eq!(holder(&[me], &c), Some(me));
        assert_eq!(holder(&[], &c), None);
        c.write_all(b"12345").unwrap();
        assert!(poll_until(Instant::now() + PROMPT, || !all_read(&c)));
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        assert!(all_read(&c));
        assert!(wait_read(&c, "five bytes").is_ok());
    }

    /// A response is read whole (head and body); a server that closes or stays silent is
    /// told apart.
    #[test]
    fn reads_a_response_or_says_why_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serve = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
                .unwrap();
            let (s2, _) = listener.accept().unwrap();
            drop(s2);
            let (s3, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(s3);
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let r = read_response(&mut c).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.closes());
        let mut c = TcpStream::connect(addr).unwrap();
        assert!(read_response(&mut c).unwrap_err().closed);
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert!(!read_response(&mut c).unwrap_err().closed);
        serve.join().unwrap();
    }

    /// A signal sent to a stopped process waits, pending, until it goes on.
    #[test]
    fn a_stopped_process_keeps_its_signals_pending() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        stop(pid).unwrap();
        assert_eq!(state(pid), 'T');
        assert!(!pending(pid, Signal::SIGTERM));
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        assert!(poll_until(Instant::now() + PROMPT, || pending(
            pid,
            Signal::SIGTERM
        )));
        resume(pid);
        let status = child.wait().unwrap();
        assert!(dead(pid));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
    }
}
