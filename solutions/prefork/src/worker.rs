//! Part C: a worker. It accepts connections on the listening socket it shares with its
//! siblings and serves each one, request after request, until the client closes it; it
//! marks what it does in its scoreboard slot; on SIGTERM it finishes the request it is
//! serving and exits.
//!
//! SIGTERM is blocked except while the worker waits (`ppoll` lets it in for the duration
//! of the wait, atomically): a signal never interrupts a half-written response, and a
//! signal that arrives just before a wait is not missed, because the wait sees it at once.

use std::fs::File;
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::time::TimeSpec;

use crate::http::{self, Method, Parsed, Request};
use crate::scoreboard::{Scoreboard, State};

/// How long a kept-alive connection may stay silent before the worker closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Once asked to stop, how long the worker still waits for a request on a kept-alive
/// connection: the client may have sent it already, and closing now would lose it.
pub const STOP_GRACE: Duration = Duration::from_millis(1000);
/// The path of the status page.
pub const STATUS_PATH: &str = "/server-status";
/// The most requests a worker answers in a row on one kept-alive connection while other
/// connections wait in the accept queue (Apache's `MaxKeepAliveRequests` is 100 too). The
/// last one goes out with `Connection: close` and the worker takes the next connection, so
/// N busy clients cannot starve everyone else of N workers.
pub const TURN: u32 = 100;

/// Set by the SIGTERM handler of a worker.
static STOP: AtomicBool = AtomicBool::new(false);
/// The shared listening socket of this worker (-1 outside [`run`]), to see whether other
/// connections wait for a worker.
static LISTENER: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigterm(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether this worker was asked to stop (SIGTERM).
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Waits until `fd` is readable, at most `limit` (`None`: no limit), with every signal
/// let in during the wait only. `Ok(false)` on timeout; `Err(Interrupted)` when a signal
/// arrived (look at [`stopping`] again).
pub fn wait_readable(fd: BorrowedFd<'_>, limit: Option<Duration>) -> io::Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match ppoll(&mut fds, limit.map(TimeSpec::from), Some(SigSet::empty())) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(Errno::EINTR) => Err(io::ErrorKind::Interrupted.into()),
        Err(e) => Err(e.into()),
    }
}

/// The body of a worker process, after `fork`: installs its signal handling, then accepts
/// and serves connections on `listener` (non-blocking, shared with its siblings) until
/// SIGTERM, and exits with `_exit(0)`. `root` is the canonical document root, `slot` the
/// worker's slot in `board`.
pub fn run(listener: &TcpListener, root: &Path, board: &Scoreboard, slot: usize) -> ! {
    let term = SigAction::new(
        SigHandler::Handler(on_sigterm),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only stores to an atomic; SIGINT and SIGHUP go to the master
    // (a terminal sends them to the whole group).
    unsafe {
        let _ = nix::sys::signal::sigaction(Signal::SIGTERM, &term);
        let _ = nix::sys::signal::sigaction(Signal::SIGINT, &ignore);
        let _ = nix::sys::signal::sigaction(Signal::SIGHUP, &ignore);
    }
    // Inherited from the master: everything it takes through its signalfd is blocked.
    // Keep only SIGTERM blocked; ppoll lets it in while waiting.
    let mut only_term = SigSet::empty();
    only_term.add(Signal::SIGTERM);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&only_term), None);

    LISTENER.store(listener.as_raw_fd(), Ordering::Relaxed);
    board.set_state(slot, State::Idle);
    while !stopping() {
        match wait_readable(listener.as_fd(), None) {
            Ok(true) => {}
            Ok(false) | Err(_) => continue,
        }
        // Every worker wakes up; one of them gets the connection, the others EAGAIN.
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(_) => continue,
        };
        // A client that vanishes costs its connection only.
        let _ = serve_connection(conn, root, board, slot);
        board.set_state(slot, State::Idle);
    }
    // SAFETY: _exit ends the process without running the master's atexit handlers or
    // flushing its stdio buffers a second time.
    unsafe { libc::_exit(0) }
}

/// Whether a connection waits in the accept queue of this worker's listening socket.
fn others_waiting() -> bool {
    let fd = LISTENER.load(Ordering::Relaxed);
    // SAFETY: `run` stored the listener's descriptor, which stays open for the life of
    // the worker process; outside `run` it is -1 and never borrowed.
    fd >= 0 && matches!(wait_readable(unsafe { BorrowedFd::borrow_raw(fd) }, Some(Duration::ZERO)), Ok(true))
}

/// Serves the requests of one connection until the client closes it, asks to close it
/// (`Connection: close`, HTTP/1.0), sends a malformed request, stays silent for
/// [`IDLE_TIMEOUT`], has had its [`TURN`] while others wait, or the worker is asked to
/// stop (then the request being read is still served, with `Connection: close`). Counts
/// each response in `board` once it is sent.
///
/// # Errors
///
/// A failed read or write (the client reset the connection): the connection is dropped.
pub fn serve_connection(
    mut conn: TcpStream,
    root: &Path,
    board: &Scoreboard,
    slot: usize,
) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut answered = 0u32;
    loop {
        board.set_state(slot, State::Reading);
        let mut grace_until: Option<Instant> = None;
        let parsed = loop {
            match http::parse_request(&buf) {
                Parsed::Partial => {}
                done => break done,
            }
            let limit = if stopping() && buf.is_empty() {
                let until = *grace_until.get_or_insert_with(|| Instant::now() + STOP_GRACE);
                until.saturating_duration_since(Instant::now())
            } else {
                IDLE_TIMEOUT
            };
            match wait_readable(conn.as_fd(), Some(limit)) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        board.set_state(slot, State::Writing);
        match parsed {
            Parsed::Complete(req, used) => {
                buf.drain(..used);
                answered += 1;
                let turn_over = answered >= TURN && others_waiting();
                let keep = req.keep_alive && !stopping() && !turn_over;
                let keep = respond(&mut conn, &req, root, board, keep)?;
                board.served(slot);
                if !keep {
                    if req.keep_alive {
                        // The client may have sent more requests already: closing with
                        // them unread would reset the connection and lose this response.
                        linger_close(conn);
                    }
                    return Ok(());
                }
            }
            Parsed::Error(status) => {
                simple(&mut conn, status, false, &[], true)?;
                board.served(slot);
                linger_close(conn);
                return Ok(());
            }
            Parsed::Partial => unreachable!("the loop above ends only on a whole head"),
        }
    }
}

/// After an error response: stop writing, then read (and drop) what the client still
/// sends, briefly, before closing. Closing a socket with unread bytes sends a reset, which
/// can make the client lose the response it has not read yet.
fn linger_close(mut conn: TcpStream) {
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < (1 << 20) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || !matches!(wait_readable(conn.as_fd(), Some(left)), Ok(true)) {
            break;
        }
        match conn.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Writes all of `bytes`; with `more`, tells TCP that more follows at once (`MSG_MORE`),
/// so the head and a file's first bytes leave in one segment.
fn send_all(conn: &TcpStream, mut bytes: &[u8], more: bool) -> io::Result<()> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    while !bytes.is_empty() {
        // SAFETY: a valid buffer of this length and an open socket.
        let n = unsafe { libc::send(conn.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), flags) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        } else {
            bytes = &bytes[n as usize..];
        }
    }
    Ok(())
}

/// A response with a short plain-text body (`404 Not Found`).
fn simple(
    conn: &mut TcpStream,
    status: u16,
    keep: bool,
    extra: &[&str],
    with_body: bool,
) -> io::Result<()> {
    let body = format!("{status} {}\n", http::reason(status));
    let mut out = http::response_head(
        status,
        Some("text/plain; charset=utf-8"),
        body.len() as u64,
        keep,
        extra,
    );
    if with_body {
        out.push_str(&body);
    }
    send_all(conn, out.as_bytes(), false)
}

/// Answers one well-formed request, keeping the connection open if `keep` allows; whether
/// it stays open (a 400, a bad escape in the target, closes it).
fn respond(
    conn: &mut TcpStream,
    req: &Request,
    root: &Path,
    board: &Scoreboard,
    keep: bool,
) -> io::Result<bool> {
    let with_body = match &req.method {
        Method::Get => true,
        Method::Head => false,
        Method::Other(_) => {
            return simple(conn, 405, keep, &["Allow: GET, HEAD"], true).map(|()| keep);
        }
    };
    let path = req.target.split(['?', '#']).next().unwrap_or("");
    if path == STATUS_PATH {
        let body = board.render();
        let mut out = http::response_head(
            200,
            Some("text/plain; charset=utf-8"),
            body.len() as u64,
            keep,
            &[],
        );
        if with_body {
            out.push_str(&body);
        }
        return send_all(conn, out.as_bytes(), false).map(|()| keep);
    }
    let file_path = match http::resolve(root, &req.target) {
        Ok(p) => p,
        Err(status) => {
            // A 400 ends the connection, as every malformed request does.
            let keep = keep && status != 400;
            return simple(conn, status, keep, &[], with_body).map(|()| keep);
        }
    };
    let file = match File::open(&file_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return simple(conn, 403, keep, &[], with_body).map(|()| keep);
        }
        Err(_) => return simple(conn, 404, keep, &[], with_body).map(|()| keep),
    };
    let len = file.metadata()?.len();
    let head = http::response_head(200, Some(http::content_type(&file_path)), len, keep, &[]);
    send_all(conn, head.as_bytes(), with_body && len > 0)?;
    if with_body {
        send_file(conn, &file, len)?;
    }
    Ok(keep)
}

/// Sends `len` bytes of `file` with `sendfile`: the kernel copies from the page cache to
/// the socket, and the file is never read into this process's memory.
fn send_file(conn: &TcpStream, file: &File, len: u64) -> io::Result<()> {
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let want = (len - offset as u64).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call; offset is ours.
        let n = unsafe { libc::sendfile(conn.as_raw_fd(), file.as_raw_fd(), &mut offset, want) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            // The file shrank since fstat: the length promised can no longer be kept.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was sent",
            ));
        }
    }
    Ok(())
}
