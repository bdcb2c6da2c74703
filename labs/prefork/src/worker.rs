//! Part C: a worker. It accepts connections on the listening socket it shares with its
//! siblings and serves each one, request after request, until the client closes it; it
//! marks what it does in its scoreboard slot; on SIGTERM it finishes the request it is
//! serving and exits.
//!
//! SIGTERM is blocked except while the worker waits (`ppoll` lets it in for the duration
//! of the wait, atomically): a signal never interrupts a half-written response, and a
//! signal that arrives just before a wait is not missed, because the wait sees it at once.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::scoreboard::Scoreboard;

/// How long a kept-alive connection may stay silent before the worker closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Once asked to stop, how long the worker still waits for a request on a kept-alive
/// connection: the client may have sent it already, and closing now would lose it.
pub const STOP_GRACE: Duration = Duration::from_millis(1000);
/// The path of the status page.
pub const STATUS_PATH: &str = "/server-status";

/// Set by the SIGTERM handler of a worker.
static STOP: AtomicBool = AtomicBool::new(false);

/// The SIGTERM handler to install in a worker (it only stores to an atomic).
pub extern "C" fn on_sigterm(_: libc::c_int) {
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
    todo!("part C: ppoll on fd with an empty signal mask for the wait")
}

/// The body of a worker process, after `fork`: installs its signal handling, then accepts
/// and serves connections on `listener` (non-blocking, shared with its siblings) until
/// SIGTERM, and exits with `_exit(0)`. `root` is the canonical document root, `slot` the
/// worker's slot in `board`.
pub fn run(listener: &TcpListener, root: &Path, board: &Scoreboard, slot: usize) -> ! {
    todo!("part C: SIGTERM handler, signal mask, then accept and serve until stopping()")
}

/// Serves the requests of one connection until the client closes it, asks to close it
/// (`Connection: close`, HTTP/1.0), sends a malformed request, stays silent for
/// [`IDLE_TIMEOUT`], or the worker is asked to stop (then the request being read is still
/// served, with `Connection: close`). Counts each response in `board` once it is sent.
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
    todo!("part C: read, parse, respond (sendfile), count, until the connection ends")
}
