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
    /// ```
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
        let mut path = None;
        let mut allow = Vec::new();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            if arg == "--allow" {
                let uid = args.next().ok_or("--allow needs a UID")?;
                let uid = uid
                    .to_str()
                    .and_then(|u| u.parse::<u32>().ok())
                    .ok_or_else(|| format!("--allow {}: not a uid", uid.to_string_lossy()))?;
                allow.push(uid);
            } else if arg.to_string_lossy().starts_with('-') {
                return Err(format!("unknown option {}", arg.to_string_lossy()));
            } else if path.replace(PathBuf::from(arg)).is_some() {
                return Err("only one PATH".into());
            }
        }
        let path = path.ok_or("no PATH")?;
        Ok(Config { path, allow })
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
    let cred = getsockopt(stream, PeerCredentials)?;
    Ok(Peer {
        pid: cred.pid(),
        uid: cred.uid(),
    })
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
        let signals = stop_signals()?;
        let listener = Listener::bind(&config.path)?;
        let mut admitted = config.allow.clone();
        admitted.push(nix::unistd::getuid().as_raw());
        Ok(Bus {
            listener,
            signals,
            admitted,
            clients: Vec::new(),
            buf: vec![0; 64 * 1024],
            batch: Vec::new(),
        })
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
        let mut ready: Vec<PollFlags> = Vec::new();
        loop {
            let (stop, incoming) = {
                let mut fds = Vec::with_capacity(self.clients.len() + 2);
                fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
                for c in &self.clients {
                    let mut events = PollFlags::POLLIN;
                    if !c.outbox.is_empty() {
                        events |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(c.stream.as_fd(), events));
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(Errno::EINTR) => continue,
                    r => r?,
                };
                let revents = |fd: &PollFd| fd.revents().unwrap_or(PollFlags::empty());
                ready.clear();
                ready.extend(fds[2..].iter().map(revents));
                (!revents(&fds[0]).is_empty(), !revents(&fds[1]).is_empty())
            };
            if stop {
                return Ok(());
            }
            for (i, events) in ready.iter().enumerate() {
                if events.intersects(PollFlags::POLLOUT | PollFlags::POLLERR) {
                    self.flush(i);
                }
                if events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.receive(i);
                }
            }
            self.remove_gone();
            if incoming {
                self.accept()?;
            }
        }
    }

    /// Reads once from client `i` and sends the whole lines it completed to the others.
    fn receive(&mut self, i: usize) {
        let client = &mut self.clients[i];
        if client.gone.is_some() {
            return;
        }
        let n = match client.stream.read(&mut self.buf) {
            Ok(0) => {
                client.gone = Some(Gone::Left);
                return;
            }
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return;
            }
            Err(_) => {
                client.gone = Some(Gone::Left);
                return;
            }
        };
        self.batch.clear();
        let framed = client.lines.feed(&self.buf[..n], &mut self.batch);
        // The lines before an over-long one are whole: they still go out.
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.broadcast(i, &batch);
            self.batch = batch;
        }
        if let Err(e) = framed {
            self.clients[i].gone = Some(Gone::Dropped(e.to_string()));
        }
    }

    /// Queues `lines` (whole lines) for every client but `from`, and writes at once what
    /// their sockets take. A client whose outbox overflows is dropped.
    fn broadcast(&mut self, from: usize, lines: &[u8]) {
        for (j, c) in self.clients.iter_mut().enumerate() {
            if j == from || c.gone.is_some() {
                continue;
            }
            // Straight to the socket when nothing older waits; never block: a full socket
            // buffer leaves the rest in the outbox.
            let mut rest = lines;
            if c.outbox.is_empty() {
                match write_some(&mut c.stream, lines) {
                    Ok(n) => rest = &lines[n..],
                    Err(_) => {
                        c.gone = Some(Gone::Left);
                        continue;
                    }
                }
            }
            if rest.is_empty() {
                continue;
            }
            if let Err(e) = c.outbox.push(rest) {
                c.gone = Some(Gone::Dropped(e.to_string()));
            }
        }
    }

    /// Writes what client `i`'s outbox holds, as far as its socket takes it.
    fn flush(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if c.gone.is_none() && c.outbox.flush(&mut c.stream).is_err() {
            c.gone = Some(Gone::Left);
        }
    }

    /// Logs and closes every client that left or was dropped.
    fn remove_gone(&mut self) {
        self.clients.retain(|c| match &c.gone {
            None => true,
            Some(Gone::Left) => {
                eprintln!("uds-bus: {} left", c.peer);
                false
            }
            Some(Gone::Dropped(why)) => {
                eprintln!("uds-bus: {} dropped: {why}", c.peer);
                false
            }
        });
    }

    /// Accepts every waiting connection: a peer whose uid is admitted joins; any other gets
    /// `denied\n` and is closed.
    fn accept(&mut self) -> io::Result<()> {
        while let Some(mut stream) = self.listener.accept()? {
            let Ok(peer) = peer_of(&stream) else {
                continue;
            };
            if !self.admitted.contains(&peer.uid) {
                // A fresh socket has room for 7 bytes; if the peer is gone, so be it.
                let _ = stream.write(b"denied\n");
                eprintln!("uds-bus: {peer} denied");
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            eprintln!("uds-bus: {peer} joined");
            self.clients.push(Client {
                stream,
                peer,
                lines: Lines::new(),
                outbox: Outbox::new(OUTBOX_LIMIT),
                gone: None,
            });
        }
        Ok(())
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}

/// One non-blocking write of as much of `bytes` as the socket takes: 0 when it is full.
fn write_some(stream: &mut UnixStream, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match stream.write(bytes) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
