//! Part B: the bus. One thread, one `poll` loop: every line a client sends goes, whole and
//! in order, to every other connected client.
//!
//! What this part is about:
//!
//! - **One thread serves everyone.** Every socket is non-blocking and `poll` says which one
//!   can make progress: the listening socket (a client is waiting in `accept`), a client
//!   (it sent bytes, or its socket has room again for what it was owed), the signalfd.
//! - **The kernel tells you who connected.** `getsockopt(SO_PEERCRED)` on an accepted UNIX
//!   socket gives the pid, uid and gid of the process that called `connect`, as the kernel
//!   recorded them: a client cannot lie about them, unlike anything it could write.
//! - **Framing and back-pressure** ([`crate::frame`]): whole lines only; a client that
//!   does not read gets an [`Outbox`] of at most [`OUTBOX_LIMIT`] bytes, then it is dropped.
//!
//! Log lines (stderr, one per event, `PID`/`UID` from SO_PEERCRED):
//!
//! ```text
//! uds-bus: client PID (uid UID) joined
//! uds-bus: client PID (uid UID) denied
//! uds-bus: client PID (uid UID) left
//! uds-bus: client PID (uid UID) dropped: <why>
//! ```

// Until your code uses them: the imports below are the calls this part needs.
#![allow(unused_imports, unused_variables, dead_code)]

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use crate::frame::{Lines, OUTBOX_LIMIT, Outbox};
use crate::sock::{Listener, StartError, stop_signals};

/// What `uds-bus` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The socket file.
    pub path: PathBuf,
    /// Uids admitted besides the server's own.
    pub allow: Vec<u32>,
}

impl Config {
    /// Parses `PATH [--allow UID]...` (the arguments after the program's name).
    ///
    /// # Errors
    ///
    /// A one-line reason: no PATH, two PATHs, `--allow` without a UID, a UID that is not a
    /// number, an unknown option.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use unix_sockets::bus::Config;
    /// let c = Config::parse(["bus.sock", "--allow", "65534"]).unwrap();
    /// assert_eq!(c.allow, [65534]);
    /// assert!(Config::parse(["bus.sock", "--allow", "nobody"]).is_err());
    /// ```
    pub fn parse<I, S>(args: I) -> Result<Config, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString>,
    {
        todo!("part B: parse PATH [--allow UID]...")
    }
}

/// Who a client is, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The pid of the process that connected.
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client {} (uid {})", self.pid, self.uid)
    }
}

/// Reads the credentials the kernel recorded when `stream`'s peer connected.
///
/// # Errors
///
/// What `getsockopt(SO_PEERCRED)` returns (not a UNIX socket, say).
pub fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    todo!("part B: SO_PEERCRED of {stream:?}")
}

/// One admitted client.
#[derive(Debug)]
struct Client {
    stream: UnixStream,
    peer: Peer,
    lines: Lines,
    outbox: Outbox,
    /// Why it must go, once it must (logged, then it is closed).
    gone: Option<Gone>,
}

/// Why a client leaves.
#[derive(Debug)]
enum Gone {
    /// It closed its end (or its socket failed): logged as `left`.
    Left,
    /// The server drops it: logged as `dropped: <why>`.
    Dropped(String),
}

/// A running bus.
#[derive(Debug)]
pub struct Bus {
    listener: Listener,
    signals: SignalFd,
    /// The uids admitted: the server's own and those of `--allow`.
    admitted: Vec<u32>,
    clients: Vec<Client>,
    /// One read's worth of bytes.
    buf: Vec<u8>,
    /// The whole lines of one read, to be sent to the others.
    batch: Vec<u8>,
}

impl Bus {
    /// Blocks SIGINT and SIGTERM (see [`stop_signals`]) and binds `config.path` with
    /// [`Listener::bind`]. Once this returns, clients may connect; they are admitted when
    /// [`Bus::serve`] runs.
    ///
    /// # Errors
    ///
    /// Those of [`stop_signals`] and [`Listener::bind`].
    pub fn start(config: &Config) -> Result<Bus, StartError> {
        todo!("part B: start a bus on {}", config.path.display())
    }

    /// Serves until SIGINT or SIGTERM, then returns `Ok(())`; every client is closed and the
    /// socket file removed when the bus is dropped.
    ///
    /// Each turn of the loop `poll`s the signalfd, the listener and every client (for
    /// reading, and for writing when its outbox holds bytes), then: reads what each ready
    /// client sent and passes its whole lines to every other client ([`Bus::broadcast`]);
    /// flushes outboxes that have room again; removes the clients that left or were
    /// dropped, logging each; admits or denies new connections ([`Bus::accept`]).
    ///
    /// # Errors
    ///
    /// `poll` or `accept` failing with anything but `EINTR` (or `EAGAIN`).
    pub fn serve(&mut self) -> io::Result<()> {
        todo!("part B: the poll loop")
    }

    /// Reads once from client `i` and sends the whole lines it completed to the others.
    fn receive(&mut self, i: usize) {
        todo!("part B: read from client {i} and broadcast its whole lines")
    }

    /// Queues `lines` (whole lines) for every client but `from`, and writes at once what
    /// their sockets take. A client whose outbox overflows is dropped.
    fn broadcast(&mut self, from: usize, lines: &[u8]) {
        todo!(
            "part B: send {} bytes from client {from} to the others",
            lines.len()
        )
    }

    /// Writes what client `i`'s outbox holds, as far as its socket takes it.
    fn flush(&mut self, i: usize) {
        todo!("part B: flush client {i}'s outbox")
    }

    /// Logs and closes every client that left or was dropped.
    fn remove_gone(&mut self) {
        todo!("part B: log and close the clients that left or were dropped")
    }

    /// Accepts every waiting connection: a peer whose uid is admitted joins; any other gets
    /// `denied\n` and is closed.
    fn accept(&mut self) -> io::Result<()> {
        todo!("part B: admit or deny every waiting connection")
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}

/// One non-blocking write of as much of `bytes` as the socket takes: 0 when it is full.
fn write_some(stream: &mut UnixStream, bytes: &[u8]) -> io::Result<usize> {
    todo!(
        "part B: one non-blocking write of {} bytes to {stream:?}",
        bytes.len()
    )
}
