//! Part C: the server. One thread, one `epoll` instance, every socket non-blocking.
//!
//! ```text
//!            epoll_wait ──► listener readable ──► accept until EAGAIN, register each
//!                │
//!                ├──────► connection readable ──► read once into its input buffer
//!                │                                 parse every whole request, run it,
//!                │                                 append its reply to the output buffer
//!                │                                 write; what the socket did not take waits
//!                │                                 for EPOLLOUT (and input waits meanwhile)
//!                ├──────► connection writable ──► write the rest, then parse what was left
//!                └──────► signalfd readable   ──► SIGTERM: close the listener, answer what
//!                                                  was received, flush, close, return
//! ```
//!
//! Nothing ever blocks: a client that sends half a request and goes silent costs one buffer,
//! never the other clients' turn. Replies leave in the order the requests came, because
//! each connection's requests are run one after the other into one output buffer.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::resp::{self, ProtocolError};
use crate::store::Store;

/// The default cap on the size of one request: 64 MiB.
pub const DEFAULT_MAX_REQUEST: usize = 64 << 20;

/// How long, after SIGTERM, the server waits for clients to take their last replies before
/// it closes their connections anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes of replies a connection may have waiting before the server stops reading its
/// requests (back-pressure: a client that sends without reading does not eat the memory).
const HIGH_WATER: usize = 1 << 20;

/// The size of a connection's input buffer to begin with; it doubles for bigger requests.
const READ_CHUNK: usize = 64 << 10;

/// The least room a `read` is given at the end of the input buffer.
const READ_ROOM: usize = 4 << 10;

/// Bytes read and thrown away after an error reply before the connection is closed anyway.
const DISCARD_MAX: usize = 1 << 20;

/// Events taken from one `epoll_wait`.
const EVENTS: usize = 256;

/// epoll data of the listener and of the signalfd; a connection's is its slot + 2.
const LISTENER: u64 = 0;
const SIGNALS: u64 = 1;

/// What `kv-server` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The port on 127.0.0.1; 0 lets the kernel pick a free one.
    pub port: u16,
    /// The largest request accepted, in bytes ([`DEFAULT_MAX_REQUEST`] by default).
    pub max_request: usize,
}

impl Config {
    /// Parses `--port P [--max-request BYTES]` (in any order); `Err` is the usage problem.
    ///
    /// # Errors
    ///
    /// A missing `--port`, a value that is not a number (a port over 65535, a cap of 0),
    /// or an argument it does not know.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut port = None;
        let mut max_request = DEFAULT_MAX_REQUEST;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| format!("{name} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--port" => {
                    let v = value("--port")?;
                    port = Some(v.parse::<u16>().map_err(|_| format!("bad port {v:?}"))?);
                }
                "--max-request" => {
                    let v = value("--max-request")?;
                    max_request = v
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("bad --max-request {v:?}"))?;
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let port = port.ok_or("--port is required")?;
        Ok(Config { port, max_request })
    }
}

/// A bound, listening server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: Config,
}

impl Server {
    /// Listens on 127.0.0.1 and `config.port` (never on another address).
    ///
    /// # Errors
    ///
    /// The port is taken (`AddrInUse`), or the system refuses a socket.
    pub fn bind(config: &Config) -> io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))?;
        // accept must never block the loop: a client may vanish between the event and it.
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            config: config.clone(),
        })
    }

    /// The address it listens on (with the port the kernel picked for port 0).
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves clients until SIGTERM or SIGINT, then stops accepting, answers every whole
    /// request already received, flushes the replies (waiting at most [`DRAIN_TIMEOUT`] for
    /// slow readers), closes every connection and returns `Ok`.
    ///
    /// Blocks SIGTERM and SIGINT in the calling thread (they arrive through a signalfd):
    /// call it from the main thread before any other thread exists.
    ///
    /// # Errors
    ///
    /// Only a failure of epoll or of the signalfd itself; a client's error closes that
    /// client.
    pub fn run(self) -> io::Result<()> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        mask.thread_block()?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(
            &self.listener,
            EpollEvent::new(EpollFlags::EPOLLIN, LISTENER),
        )?;
        epoll.add(&signals, EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS))?;
        let mut lp = Loop {
            epoll,
            listener: Some(self.listener),
            max: self.config.max_request,
            store: Store::new(),
            conns: Vec::new(),
            free: Vec::new(),
            args: Vec::new(),
        };
        let mut events = vec![EpollEvent::empty(); EVENTS];
        let mut deadline: Option<Instant> = None;
        loop {
            let timeout = match deadline {
                None => EpollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() || lp.live() == 0 {
                        return Ok(());
                    }
                    EpollTimeout::try_from(left).unwrap_or(EpollTimeout::MAX)
                }
            };
            let n = match lp.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for ev in &events[..n] {
                match ev.data() {
                    LISTENER => lp.accept_all(),
                    SIGNALS => {
                        while let Ok(Some(_)) = signals.read_signal() {}
                        if deadline.is_none() {
                            deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                            lp.stop();
                        }
                    }
                    token => lp.ready(token as usize - 2, ev.events(), deadline.is_some()),
                }
            }
        }
    }
}

/// One client.
struct Conn {
    stream: TcpStream,
    /// Bytes received and not yet parsed are `input[start..end]`. The buffer is zeroed once
    /// when it is made or grows, never per read.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Replies not yet sent are `output[sent..]`.
    output: Vec<u8>,
    sent: usize,
    /// The events it is registered for now.
    interest: EpollFlags,
    /// A protocol error was answered: send the reply, then close.
    closing: bool,
    /// Bytes thrown away since the error reply.
    discarded: usize,
    /// The client closed its end (read returned 0).
    eof: bool,
}

/// The state of the event loop.
struct Loop {
    epoll: Epoll,
    listener: Option<TcpListener>,
    max: usize,
    store: Store,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// The argument ranges of the request being run, reused so that parsing allocates
    /// nothing.
    args: Vec<Range<usize>>,
}

/// What to do with a connection after some work on it.
enum Next {
    Keep,
    Close,
}

impl Loop {
    fn live(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    fn accept_all(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        loop {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A client that reset before we accepted it: next one.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of descriptors (EMFILE): leave the rest in the backlog for now.
                    eprintln!("kv-server: accept: {e}");
                    return;
                }
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            // Replies are whole already: send them now, not after Nagle's delay.
            let _ = stream.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let interest = EpollFlags::EPOLLIN;
            if self
                .epoll
                .add(&stream, EpollEvent::new(interest, slot as u64 + 2))
                .is_err()
            {
                self.free.push(slot);
                continue;
            }
            self.conns[slot] = Some(Conn {
                stream,
                input: vec![0; READ_CHUNK],
                start: 0,
                end: 0,
                output: Vec::new(),
                sent: 0,
                interest,
                closing: false,
                discarded: 0,
                eof: false,
            });
        }
    }

    /// SIGTERM: no new connections; every connection answers what it has received so far.
    fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            let _ = self.epoll.delete(&listener);
        }
        for slot in 0..self.conns.len() {
            let Some(mut conn) = self.conns[slot].take() else {
                continue;
            };
            // What the client sent before the signal may still be in the socket.
            let next = match read_available(&mut conn) {
                Ok(_) => self.work(&mut conn, true),
                Err(_) => Next::Close,
            };
            self.settle(slot, conn, next, true);
        }
    }

    /// An event on the connection in `slot`.
    fn ready(&mut self, slot: usize, events: EpollFlags, stopping: bool) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let mut next = Next::Keep;
        if events.contains(EpollFlags::EPOLLIN) && !conn.closing && !conn.eof && !stopping {
            next = match read_once(&mut conn) {
                Ok(0) => {
                    // The client closed its end. Its last requests still get replies,
                    // sent into a socket that may still be open for reading.
                    conn.eof = true;
                    self.work(&mut conn, false)
                }
                Ok(_) => self.work(&mut conn, false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Next::Keep,
                Err(_) => Next::Close,
            };
        } else if conn.closing && conn.sent == conn.output.len() {
            // After an error reply, sent: discard what the client still sends, so that
            // closing does not turn into a reset that could destroy the error reply in
            // flight. Its EOF comes as EPOLLHUP (both directions are shut then): read 0,
            // close.
            let mut sink = [0u8; 4096];
            next = match conn.stream.read(&mut sink) {
                Ok(n @ 1..) if conn.discarded + n <= DISCARD_MAX => {
                    conn.discarded += n;
                    Next::Keep
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Next::Keep,
                _ => Next::Close,
            };
        } else if events
            .intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
        {
            next = self.work(&mut conn, stopping);
        }
        self.settle(slot, conn, next, stopping);
    }

    /// Parses and runs the whole requests buffered, and writes replies, until the socket
    /// takes no more, or no whole request is left. Past the high-water mark of output
    /// (unless `all`), parsing pauses until the replies are out.
    fn work(&mut self, conn: &mut Conn, all: bool) -> Next {
        loop {
            let paused = self.run_requests(conn, all);
            match flush(conn) {
                Ok(true) => {}
                Ok(false) => return Next::Keep,
                Err(_) => return Next::Close,
            }
            // Everything sent. Whole requests may still wait in the buffer (the high-water
            // mark paused the parsing): go on with them before asking for more input.
            if !paused {
                // After the client's EOF, a request left incomplete can never complete.
                return if conn.eof { Next::Close } else { Next::Keep };
            }
        }
    }

    /// Runs the whole requests at the front of the input; an error reply and `closing` on
    /// a protocol error. `true` when it paused at the high-water mark with input left.
    fn run_requests(&mut self, conn: &mut Conn, all: bool) -> bool {
        let mut paused = false;
        while !conn.closing {
            if !all && conn.output.len() - conn.sent >= HIGH_WATER {
                paused = true;
                break;
            }
            let buf = &conn.input[conn.start..conn.end];
            match resp::parse_request(buf, self.max, &mut self.args) {
                Ok(Some(n)) => {
                    let args = resp::Args {
                        buf,
                        ranges: &self.args,
                    };
                    self.store.execute(args, &mut conn.output);
                    conn.start += n;
                }
                Ok(None) => break,
                Err(e) => protocol_error(conn, &e),
            }
        }
        if conn.start == conn.end {
            conn.start = 0;
            conn.end = 0;
            // A buffer that grew for one huge request is given back.
            if conn.input.len() > 64 * READ_CHUNK {
                conn.input = vec![0; READ_CHUNK];
            }
        }
        paused
    }

    /// Puts the connection back with the events it now waits for, or closes it.
    fn settle(&mut self, slot: usize, mut conn: Conn, next: Next, stopping: bool) {
        let pending = conn.sent < conn.output.len();
        let close = match next {
            Next::Close => true,
            // Stopping: a connection with nothing left to send is done.
            Next::Keep => stopping && !pending,
        };
        if close {
            let _ = self.epoll.delete(&conn.stream);
            self.free.push(slot);
            return;
        }
        let want = if pending {
            // Input waits until the replies are out: back-pressure.
            EpollFlags::EPOLLOUT
        } else if conn.closing {
            // The error reply is out: end our direction (the client reads EOF after it),
            // and wait for theirs.
            let _ = conn.stream.shutdown(Shutdown::Write);
            EpollFlags::EPOLLIN
        } else {
            EpollFlags::EPOLLIN
        };
        if want != conn.interest {
            let mut ev = EpollEvent::new(want, slot as u64 + 2);
            if self.epoll.modify(conn.stream.as_fd(), &mut ev).is_err() {
                self.free.push(slot);
                return;
            }
            conn.interest = want;
        }
        self.conns[slot] = Some(conn);
    }
}

/// Answers a protocol error: `-ERR <why>`, then the connection closes once it is sent.
fn protocol_error(conn: &mut Conn, e: &ProtocolError) {
    let msg = format!("ERR {e}");
    resp::write_error(&mut conn.output, msg.as_bytes());
    conn.closing = true;
    conn.start = 0;
    conn.end = 0;
}

/// One `read` into the room after the input; the unparsed bytes move to the front, or the
/// buffer doubles, when that room is short.
fn read_once(conn: &mut Conn) -> io::Result<usize> {
    if conn.input.len() - conn.end < READ_ROOM {
        if conn.start > 0 {
            conn.input.copy_within(conn.start..conn.end, 0);
            conn.end -= conn.start;
            conn.start = 0;
        }
        if conn.input.len() - conn.end < READ_ROOM {
            let bigger = conn.input.len() * 2;
            conn.input.resize(bigger, 0);
        }
    }
    loop {
        match conn.stream.read(&mut conn.input[conn.end..]) {
            Ok(n) => {
                conn.end += n;
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads until the socket has nothing more right now (on SIGTERM).
fn read_available(conn: &mut Conn) -> io::Result<()> {
    loop {
        match read_once(conn) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Writes the pending output; `true` once all of it is sent.
fn flush(conn: &mut Conn) -> io::Result<bool> {
    while conn.sent < conn.output.len() {
        match conn.stream.write(&conn.output[conn.sent..]) {
            Ok(n) => conn.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    conn.output.clear();
    conn.sent = 0;
    // A buffer that grew for one huge reply is given back.
    if conn.output.capacity() > 4 * HIGH_WATER {
        conn.output.shrink_to(HIGH_WATER);
    }
    Ok(true)
}
