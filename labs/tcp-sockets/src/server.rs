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

// The imports name the calls you will need. Delete this attribute once every `todo!` is gone:
#![allow(
    unused_imports,
    unused_variables,
    unused_mut,
    dead_code,
    clippy::ptr_arg
)]

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
        todo!(
            "part C: bind a TcpListener to 127.0.0.1 and the port; make it non-blocking if you use epoll"
        )
    }

    /// The address it listens on (with the port the kernel picked for port 0).
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        todo!("part C: the listener's address")
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
        todo!(
            "part C: block SIGTERM/SIGINT and take them from a signalfd; epoll on the listener, the signalfd and every connection; see the module's doc"
        )
    }
}
