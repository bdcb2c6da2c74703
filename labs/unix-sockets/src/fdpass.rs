//! Part C: passing an open file from one process to another with `SCM_RIGHTS`.
//!
//! What this part is about:
//!
//! - **A descriptor is not a number you can send.** Fd 5 in one process means nothing in
//!   another. Sent as an `SCM_RIGHTS` control message with `sendmsg`, the kernel installs a
//!   new descriptor in the receiver that refers to the same open file: the receiver reads
//!   what the sender opened, with the sender's access, although it could not `open` the
//!   file itself. Permissions are checked at `open`, never again.
//! - **The control buffer must be big enough.** `recvmsg` copies control messages into the
//!   buffer you give it; if it is too small the kernel sets `MSG_CTRUNC` and the descriptors
//!   that did not fit are closed, lost. Size it with `cmsg_space!` and check the flag.
//! - **At least one byte of data goes with it.** A stream socket does not carry a control
//!   message alone: the protocol here is one message of one byte, [`TAG`], with one
//!   descriptor attached.
//! - **One open file, many descriptors.** Every client gets a descriptor of the *same* open
//!   file description, so they share one file offset: a client reads with `pread` from
//!   offset 0 ([`copy_all`]) and never moves it under the others.

// Until your code uses them: the imports below are the calls this part needs.
#![allow(unused_imports, unused_variables, dead_code)]

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::sock::{Listener, StartError, stop_signals};

/// The one byte of data that carries the descriptor.
pub const TAG: u8 = b'F';

/// How long [`fetch`] waits for the descriptor.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends `fd` over `sock` as one message: the byte [`TAG`] with an `SCM_RIGHTS` control
/// message holding `fd`. `sock` keeps its own descriptor; the receiver gets a new one.
///
/// # Errors
///
/// What `sendmsg` returns (`EPIPE` when the peer has gone: SIGPIPE is not raised).
///
/// # Example
///
/// ```no_run
/// use std::os::unix::net::UnixStream;
/// let (a, b) = UnixStream::pair()?;
/// let file = std::fs::File::open("/etc/hostname")?;
/// unix_sockets::fdpass::send_fd(&a, std::os::fd::AsFd::as_fd(&file))?;
/// let received = unix_sockets::fdpass::recv_fd(&b).unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    todo!("part C: send {fd:?} over {sock:?} with SCM_RIGHTS")
}

/// Why no descriptor was received.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The peer closed the connection before sending anything.
    #[error("the server closed the connection without sending a descriptor")]
    Closed,
    /// A message arrived with no descriptor attached.
    #[error("the server sent {0} byte(s) but no descriptor")]
    NoDescriptor(usize),
    /// The control message did not fit the buffer (`MSG_CTRUNC`): descriptors were lost.
    #[error("the control message was truncated (MSG_CTRUNC): the descriptor was lost")]
    Truncated,
    /// A descriptor came with other data than the one byte [`TAG`], or with others.
    #[error("the server sent something else than one descriptor with the byte 'F': {0}")]
    Garbage(String),
    /// Nothing arrived within the receive timeout.
    #[error("no descriptor arrived within {} s", FETCH_TIMEOUT.as_secs())]
    TimedOut,
    /// `recvmsg` failed.
    #[error("recvmsg: {0}")]
    Sys(#[from] io::Error),
}

/// Receives one descriptor sent by [`send_fd`] (close-on-exec in this process).
///
/// Calls `recvmsg` once, with room for one byte of data and for a control message of one
/// descriptor (`cmsg_space!([RawFd; 1])`), and `MSG_CMSG_CLOEXEC`. Every descriptor that
/// arrived is owned at once, so that none leaks whatever goes wrong after; with
/// `MSG_CTRUNC` set (the peer sent more than fits), the descriptors that did fit were
/// installed all the same and must be closed (nix's `cmsgs()` will not walk a truncated
/// buffer: read the one `cmsghdr` yourself).
///
/// # Errors
///
/// [`RecvError::Closed`] (0 bytes: end of stream), [`RecvError::Truncated`] (`MSG_CTRUNC`
/// set), [`RecvError::NoDescriptor`] (data but no descriptor), [`RecvError::Garbage`]
/// (other data than [`TAG`], or more than one descriptor), [`RecvError::TimedOut`] (a
/// receive timeout set on `sock` expired: `EAGAIN`), [`RecvError::Sys`] otherwise.
pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd, RecvError> {
    todo!("part C: receive one descriptor from {sock:?}")
}

/// The descriptors of an `SCM_RIGHTS` message at the start of a control buffer that the
/// kernel truncated (`MSG_CTRUNC`): those it installed before it ran out of room. Given:
/// use it in `recv_fd`.
fn rights_in(buf: &[u8]) -> Vec<OwnedFd> {
    const HEADER: usize = std::mem::size_of::<libc::cmsghdr>();
    if buf.len() < HEADER {
        return Vec::new();
    }
    // SAFETY: `buf` holds at least one cmsghdr's bytes; read_unaligned has no alignment need.
    let header: libc::cmsghdr = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
    let len = (header.cmsg_len as usize).min(buf.len());
    if header.cmsg_level != libc::SOL_SOCKET
        || header.cmsg_type != libc::SCM_RIGHTS
        || len <= HEADER
    {
        return Vec::new();
    }
    buf[HEADER..len]
        .chunks_exact(std::mem::size_of::<RawFd>())
        .map(|c| RawFd::from_ne_bytes(c.try_into().expect("chunks of 4 bytes")))
        .filter(|&fd| fd >= 0)
        // SAFETY: the kernel installed these descriptors for this process and wrote their
        // numbers here; nothing else owns them.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect()
}

/// Why `fd-client` got no descriptor.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connecting failed (no such socket, nobody listening, permission denied).
    #[error("{}: cannot connect: {err}", .path.display())]
    Connect {
        /// The socket's path.
        path: PathBuf,
        /// The error of `connect`.
        err: io::Error,
    },
    /// Connected, but no good descriptor came.
    #[error("{}: {err}", .path.display())]
    Recv {
        /// The socket's path.
        path: PathBuf,
        /// What went wrong.
        err: RecvError,
    },
}

/// Connects to the fd server at `path` and receives its descriptor, waiting at most
/// [`FETCH_TIMEOUT`] (a receive timeout on the socket: a server that accepts and sends
/// nothing is an error, not a hang). The connection is closed before this returns.
///
/// # Errors
///
/// [`FetchError::Connect`] and [`FetchError::Recv`].
pub fn fetch(path: &Path) -> Result<OwnedFd, FetchError> {
    todo!("part C: fetch the descriptor from {}", path.display())
}

/// Copies the whole file behind `fd` to `out` with `pread` from offset 0 to its end,
/// leaving the shared file offset alone; returns the number of bytes copied.
///
/// # Errors
///
/// What `pread` or `out` return (`ESPIPE` if `fd` is not a regular file).
pub fn copy_all(fd: BorrowedFd<'_>, out: &mut impl Write) -> io::Result<u64> {
    todo!("part C: copy {fd:?} to out with pread")
}

/// A running `fd-server`: the file it hands out and the socket it listens on.
#[derive(Debug)]
pub struct FdServer {
    file: OwnedFd,
    signals: SignalFd,
    listener: Listener,
}

impl FdServer {
    /// Blocks SIGINT and SIGTERM, opens `file` read-only (so that a file it cannot open is an
    /// error at once, before any client comes), and binds `path` with [`Listener::bind`].
    ///
    /// # Errors
    ///
    /// [`StartError::Sys`] if the file cannot be opened; those of [`Listener::bind`].
    pub fn start(path: &Path, file: &Path) -> Result<FdServer, StartError> {
        todo!(
            "part C: open {} and listen on {}",
            file.display(),
            path.display()
        )
    }

    /// Sends the file's descriptor to every client that connects, then closes that
    /// connection, until SIGINT or SIGTERM; returns `Ok(())` then (dropping the server
    /// removes the socket file). A client that has gone costs nothing.
    ///
    /// # Errors
    ///
    /// `poll` or `accept` failing.
    pub fn serve(&mut self) -> io::Result<()> {
        todo!("part C: hand the descriptor to every client until SIGINT/SIGTERM")
    }
}
