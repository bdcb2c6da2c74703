//! Part B: the server. It creates `DIR/seqnum.fifo`, reads requests from it, hands out
//! blocks of numbers and replies on each client's FIFO, until SIGINT or SIGTERM.
//!
//! What this part is about:
//!
//! - **A FIFO outlives its processes.** After a crash (SIGKILL) the FIFO is still there.
//!   A new server must tell a stale FIFO (nobody reads it: reuse it) from a live one
//!   (another server reads it: refuse to start). Opening it `O_WRONLY | O_NONBLOCK` tells
//!   them apart: `ENXIO` means no reader.
//! - **Open blocks until the other end is there**, unless `O_NONBLOCK`. The server opens its
//!   own FIFO `O_RDONLY | O_NONBLOCK` (it must not wait for a first client), and each reply
//!   FIFO `O_WRONLY | O_NONBLOCK`, so a client that went away costs nothing (`ENXIO`).
//! - **EOF on a FIFO** comes each time the last writer closes it. A server that only reads
//!   would see EOF after every client and, looping on it, spin at 100% CPU. So the server
//!   keeps a write end of its own FIFO open: then there is always a writer and reads (and
//!   `poll`) just wait for the next request.
//! - **Signals and blocking calls**: SIGINT and SIGTERM are blocked and read from a
//!   `signalfd`, which `poll` watches together with the FIFO. No signal can slip in between
//!   a check of a flag and a blocking call.
//! - **Writing to a pipe with no reader** raises SIGPIPE (fatal by default) and fails with
//!   `EPIPE`. Rust ignores SIGPIPE; the server must keep it so and treat `EPIPE` as "the
//!   client has gone".

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::protocol::{Decoder, Rejected, Request};

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// Another server is alive and reads this FIFO; it was left alone.
    AlreadyRunning(PathBuf),
    /// Something that is not a FIFO is in the way.
    NotAFifo(PathBuf),
    /// A system call failed.
    Sys {
        /// What the server was doing, e.g. `creating /tmp/d/seqnum.fifo`.
        what: String,
        /// The error.
        errno: Errno,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::AlreadyRunning(p) => {
                write!(f, "a server is already running on {}", p.display())
            }
            ServerError::NotAFifo(p) => write!(f, "{} exists and is not a FIFO", p.display()),
            ServerError::Sys { what, errno } => write!(f, "{what}: {}", errno.desc()),
        }
    }
}

impl std::error::Error for ServerError {}

/// `Err(Errno)` to [`ServerError::Sys`] with what the server was doing.
#[allow(dead_code)] // until you use it
fn sys<T>(r: nix::Result<T>, what: impl FnOnce() -> String) -> Result<T, ServerError> {
    r.map_err(|errno| ServerError::Sys {
        what: what(),
        errno,
    })
}

/// Creates the FIFO at `path` with mode 0600, or reuses a stale one.
///
/// - nothing at `path`: `mkfifo(path, 0600)`;
/// - a FIFO that a live server reads: [`ServerError::AlreadyRunning`], and the FIFO is left
///   as it is;
/// - a FIFO that nobody reads (its server died): it is reused as it is;
/// - anything else: [`ServerError::NotAFifo`].
///
/// A FIFO has a reader exactly when `open(path, O_WRONLY | O_NONBLOCK)` succeeds; with no
/// reader it fails with `ENXIO`. Close the probe at once (it is an `OwnedFd`: drop it).
///
/// # Errors
///
/// As above, and [`ServerError::Sys`] when a system call fails for another reason
/// (`EACCES`, a missing directory).
///
/// # Example
///
/// ```no_run
/// use std::path::Path;
/// fifos::server::create_fifo(Path::new("/tmp/svc/seqnum.fifo"))?;
/// # Ok::<(), fifos::server::ServerError>(())
/// ```
pub fn create_fifo(path: &Path) -> Result<(), ServerError> {
    todo!("part B: create {} (or reuse it if stale)", path.display())
}

/// Removes the server's FIFO when dropped: on a normal stop, on an error, on a panic.
#[derive(Debug)]
#[allow(dead_code)] // until you use it
struct Removal(PathBuf);

impl Drop for Removal {
    fn drop(&mut self) {
        todo!("part B: remove {}", self.0.display())
    }
}

/// Writes `line` to the reply FIFO of client `pid` in `dir`, without ever blocking.
///
/// Opens `DIR/client.<pid>.fifo` with `O_WRONLY | O_NONBLOCK` (and `O_CLOEXEC`), checks
/// that it is a FIFO, writes the whole line with one `write` and closes it.
///
/// Returns `true` when the whole line was written, `false` when the client cannot be
/// reached: no such FIFO (`ENOENT`), nobody reads it (`ENXIO`: the client has gone), it
/// closed its end after the open (`EPIPE`; SIGPIPE stays ignored), its FIFO is full
/// (`EAGAIN`), or the path is not a FIFO. None of these stops the server.
///
/// # Example
///
/// ```no_run
/// use std::path::Path;
/// let delivered = fifos::server::reply(Path::new("/tmp/svc"), 412, "0\n");
/// ```
pub fn reply(dir: &Path, pid: u32, line: &str) -> bool {
    todo!("part B: send {line:?} to client {pid} in {}", dir.display())
}

/// A running server: its FIFO, both ends of it, the signals it waits for, and the next
/// number to hand out.
#[derive(Debug)]
#[allow(dead_code)] // until you write `start`
pub struct Server {
    dir: PathBuf,
    /// Read end of the server's FIFO, non-blocking; `poll` says when to read.
    reader: OwnedFd,
    /// A write end of its own FIFO, never written: while it is open there is always a
    /// writer, so the reader never sees EOF when the last client leaves.
    _keepalive: OwnedFd,
    /// SIGINT and SIGTERM, blocked and delivered here instead.
    signals: nix::sys::signalfd::SignalFd,
    /// The first number of the next block.
    next: u64,
    decoder: Decoder,
    /// Last field: the FIFO is removed after both ends are closed.
    _fifo: Removal,
}

impl Server {
    /// Starts a server on `dir`: blocks SIGINT and SIGTERM and opens a signalfd for them,
    /// creates (or reuses) `DIR/seqnum.fifo` with [`create_fifo`], opens its read end
    /// (`O_RDONLY | O_NONBLOCK`) and then a write end of its own (`O_WRONLY`).
    ///
    /// Once this returns the server accepts requests: clients may open the FIFO and write,
    /// and their requests wait in the FIFO until [`Server::serve`] reads them. Dropping the
    /// server removes the FIFO (if it created or reused it).
    ///
    /// # Errors
    ///
    /// Those of [`create_fifo`], and [`ServerError::Sys`] if the FIFO or the signalfd
    /// cannot be opened (the FIFO is then removed again).
    pub fn start(dir: &Path) -> Result<Server, ServerError> {
        todo!("part B: start a server on {}", dir.display())
    }

    /// Serves requests until SIGINT or SIGTERM arrives, then returns `Ok(())`.
    ///
    /// Waits with `poll` on the FIFO and the signalfd together (never a busy loop: idle, the
    /// server uses no CPU). Reads what the FIFO holds, feeds it to a [`Decoder`] and calls
    /// [`Server::handle`] for every request in order.
    ///
    /// # Errors
    ///
    /// [`ServerError::Sys`] if `poll` or `read` fails with anything but `EINTR`/`EAGAIN`.
    pub fn serve(&mut self) -> Result<(), ServerError> {
        todo!("part B: serve requests until SIGINT or SIGTERM")
    }

    /// Handles one decoded request line.
    ///
    /// A valid request is answered with `<start>\n`, where `start` is the next free number;
    /// the block `start .. start + count` is granted (the next free number moves on) only if
    /// [`reply`] delivered the line. A rejected one is answered with `error <reason>\n` when
    /// it names a pid (its reply FIFO may exist), and otherwise dropped.
    pub fn handle(&mut self, request: Result<Request, Rejected>) {
        todo!("part B: answer {request:?}")
    }

    /// The first number of the next block.
    pub fn next(&self) -> u64 {
        self.next
    }
}
