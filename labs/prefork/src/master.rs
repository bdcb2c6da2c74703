//! Part D: the master. It binds the listening socket, makes the scoreboard, forks the
//! workers, and then only waits for signals, through a `signalfd`:
//!
//! | signal  | the master                                                                 |
//! |---------|----------------------------------------------------------------------------|
//! | SIGCHLD | reaps every worker that ended (`waitpid` with `WNOHANG` until none) and forks a replacement at once for each one that was not asked to stop |
//! | SIGHUP  | forks a new set of workers and sends SIGTERM to the old ones: they finish the request they are serving and exit; nothing is dropped |
//! | SIGTERM, SIGINT | closes its listening socket, sends SIGTERM to every worker, waits at most [`SHUTDOWN_GRACE`] for them (then SIGKILL), and returns |
//!
//! The master never accepts a connection itself and never sleeps in a loop: it blocks in
//! `poll` on the signalfd, so a worker that dies is replaced within microseconds.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::net::{SocketAddrV4, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

/// How long SIGTERM lets in-flight requests finish before the master kills the workers.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Most workers `--workers` accepts.
pub const MAX_WORKERS: usize = 64;

/// The command line of `prefork-httpd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The port on 127.0.0.1 (0: any free one).
    pub port: u16,
    /// The document root.
    pub root: PathBuf,
    /// How many workers serve at once.
    pub workers: usize,
}

/// The usage line.
pub const USAGE: &str = "usage: prefork-httpd --port PORT --root DIR --workers N";

/// Parses `--port P --root DIR --workers N` (in any order, each once, all required; N from
/// 1 to [`MAX_WORKERS`]).
///
/// # Errors
///
/// What is wrong, in words (a usage error: exit status 2).
///
/// # Example
///
/// ```no_run
/// use prefork::master::parse_args;
/// let args: Vec<String> = ["--port", "0", "--root", "www", "--workers", "2"].map(String::from).to_vec();
/// let c = parse_args(&args).unwrap();
/// assert_eq!((c.port, c.workers), (0, 2));
/// assert!(parse_args(&args[..4]).is_err());
/// ```
pub fn parse_args(args: &[String]) -> Result<Config, String> {
    todo!("part D: --port, --root, --workers, each once")
}

/// Binds 127.0.0.1:`port` (0: any free port), non-blocking, so that workers woken together
/// for one connection do not block in `accept` when a sibling took it.
///
/// # Errors
///
/// The bind error (`EADDRINUSE`, ...).
pub fn bind(port: u16) -> std::io::Result<TcpListener> {
    todo!("part D: bind 127.0.0.1:port, non-blocking")
}

/// Runs the master on `listener` until SIGTERM or SIGINT: forks `config.workers` workers
/// serving `config.root` and keeps that many running (see the module's table).
///
/// # Errors
///
/// The root is not a directory, or a system call the master cannot do without failed
/// (`mmap`, `signalfd`, the first `fork`).
pub fn run(config: &Config, listener: TcpListener) -> Result<(), String> {
    todo!(
        "part D: block the signals, signalfd, the scoreboard, fork the workers, then wait for signals"
    )
}
