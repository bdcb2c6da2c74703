//! Part C: the client. It creates its reply FIFO, opens it for reading, sends one request
//! into the server's FIFO with one `write`, waits (at most a timeout) for the reply, and
//! removes its FIFO whatever happens.
//!
//! The order matters:
//!
//! 1. `mkfifo DIR/client.<pid>.fifo` and open it `O_RDONLY | O_NONBLOCK` *before* sending
//!    the request: the server opens it `O_WRONLY | O_NONBLOCK` and, finding no reader,
//!    would drop the reply (`ENXIO`).
//! 2. Open `DIR/seqnum.fifo` `O_WRONLY | O_NONBLOCK`: `ENXIO` (no reader) or `ENOENT` means
//!    no server, and the client stops at once instead of waiting forever in `open`. Then
//!    clear `O_NONBLOCK`, so that a full FIFO makes the write wait rather than fail.
//! 3. Write the whole request with ONE `write`: at most `PIPE_BUF` bytes are written
//!    atomically, so requests of concurrent clients never interleave. Two writes (or
//!    `write!` on a `File`, which writes each formatted piece separately) can be split by
//!    another client's request.
//! 4. `poll` the reply FIFO with the time left, read the line.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use crate::protocol::{Reply, Request};

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// No server reads `DIR/seqnum.fifo` (it is missing, or stale: `ENXIO`).
    NoServer(PathBuf),
    /// No reply within the timeout.
    Timeout(Duration),
    /// A signal (SIGINT, SIGTERM) interrupted the wait.
    Interrupted,
    /// The server rejected the request: the reason it gave.
    Refused(String),
    /// The server's reply could not be understood.
    BadReply(String),
    /// A system call failed.
    Sys {
        /// What the client was doing.
        what: String,
        /// The error.
        errno: Errno,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NoServer(p) => write!(f, "no server is reading {}", p.display()),
            ClientError::Timeout(t) => write!(f, "no reply within {} s", t.as_secs_f64()),
            ClientError::Interrupted => f.write_str("interrupted"),
            ClientError::Refused(reason) => write!(f, "the server refused: {reason}"),
            ClientError::BadReply(line) => write!(f, "unexpected reply {line:?}"),
            ClientError::Sys { what, errno } => write!(f, "{what}: {}", errno.desc()),
        }
    }
}

impl std::error::Error for ClientError {}

#[allow(dead_code)] // until you use it
fn sys<T>(r: nix::Result<T>, what: impl FnOnce() -> String) -> Result<T, ClientError> {
    r.map_err(|errno| ClientError::Sys {
        what: what(),
        errno,
    })
}

/// Writes `request` into `fifo` with exactly one `write` call.
///
/// The line is formatted in full first (see [`Request::to_line`]), then written at once.
/// A request is far shorter than `PIPE_BUF`, so the kernel writes it whole or not at all:
/// a short write cannot happen on a pipe in blocking mode, and is reported as an error if
/// it does.
///
/// # Errors
///
/// The `write` error (`EPIPE` if the server has gone, `EAGAIN` if `fifo` is non-blocking
/// and full), or `WriteZero` for a short write.
///
/// # Example
///
/// ```no_run
/// use std::fs::OpenOptions;
/// use fifos::{client::send_request, protocol::Request};
///
/// let fifo = OpenOptions::new().write(true).open("/tmp/svc/seqnum.fifo")?;
/// send_request(&fifo, &Request { pid: std::process::id(), count: 10 })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn send_request(fifo: impl AsFd, request: &Request) -> std::io::Result<()> {
    todo!(
        "part C: write {request:?} into fd {:?} with one write",
        fifo.as_fd()
    )
}

/// The client's reply FIFO, open for reading; removed when dropped.
#[derive(Debug)]
#[allow(dead_code)] // until you write `create`
pub struct ReplyFifo {
    path: PathBuf,
    /// Read end, opened non-blocking.
    fd: OwnedFd,
}

impl ReplyFifo {
    /// Creates `DIR/client.<pid>.fifo` (mode 0600) and opens it `O_RDONLY | O_NONBLOCK`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Sys`] if `mkfifo` fails (`EEXIST`: a FIFO of that name is left over)
    /// or the open fails (the FIFO is then removed again).
    pub fn create(dir: &Path, pid: u32) -> Result<ReplyFifo, ClientError> {
        todo!(
            "part C: create and open the reply FIFO of client {pid} in {}",
            dir.display()
        )
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits at most `timeout` for one reply line and parses it.
    ///
    /// `poll`s the FIFO with the time left (a signal interrupts the wait: `EINTR` is
    /// [`ClientError::Interrupted`]), reads what arrived, and stops at the first newline.
    ///
    /// # Errors
    ///
    /// [`ClientError::Timeout`], [`ClientError::Interrupted`], [`ClientError::BadReply`]
    /// (the server closed the FIFO without a whole line, or sent something else), or
    /// [`ClientError::Sys`].
    pub fn wait_reply(&self, timeout: Duration) -> Result<Reply, ClientError> {
        todo!(
            "part C: wait at most {timeout:?} for a reply on {}",
            self.path.display()
        )
    }
}

impl Drop for ReplyFifo {
    fn drop(&mut self) {
        todo!("part C: remove {}", self.path.display())
    }
}

/// Asks the server on `dir` for `count` numbers and returns the first one: the caller owns
/// `start .. start + count`.
///
/// Creates its [`ReplyFifo`] (named after this process's pid), opens the server's FIFO
/// `O_WRONLY | O_NONBLOCK` and then clears `O_NONBLOCK`, sends the request with
/// [`send_request`], and waits at most `timeout` for the reply. The reply FIFO is removed
/// before this returns, whatever happens.
///
/// # Errors
///
/// [`ClientError::NoServer`] at once when no server reads the FIFO (`ENOENT`, `ENXIO`);
/// [`ClientError::Refused`] when the server answers `error <reason>`; and the errors of
/// [`ReplyFifo::create`] and [`ReplyFifo::wait_reply`].
///
/// # Example
///
/// ```no_run
/// use std::{path::Path, time::Duration};
/// let start = fifos::client::request(Path::new("/tmp/svc"), 10, Duration::from_secs(5))?;
/// println!("I own {start}..{}", start + 10);
/// # Ok::<(), fifos::client::ClientError>(())
/// ```
pub fn request(dir: &Path, count: u64, timeout: Duration) -> Result<u64, ClientError> {
    todo!(
        "part C: ask the server in {} for {count} numbers within {timeout:?}",
        dir.display()
    )
}
