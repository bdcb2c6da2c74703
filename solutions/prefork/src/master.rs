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

use std::collections::HashMap;
use std::net::{SocketAddrV4, TcpListener};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::scoreboard::Scoreboard;
use crate::worker;

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
/// ```
/// use prefork::master::parse_args;
/// let args: Vec<String> = ["--port", "0", "--root", "www", "--workers", "2"].map(String::from).to_vec();
/// let c = parse_args(&args).unwrap();
/// assert_eq!((c.port, c.workers), (0, 2));
/// assert!(parse_args(&args[..4]).is_err());
/// ```
pub fn parse_args(args: &[String]) -> Result<Config, String> {
    let (mut port, mut root, mut workers) = (None, None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let seen = match flag.as_str() {
            "--port" => port
                .replace(
                    value
                        .parse::<u16>()
                        .map_err(|_| format!("bad port {value:?}"))?,
                )
                .is_some(),
            "--root" => root.replace(PathBuf::from(value)).is_some(),
            "--workers" => workers
                .replace(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_WORKERS).contains(n))
                        .ok_or_else(|| {
                            format!("bad worker count {value:?} (1 to {MAX_WORKERS})")
                        })?,
                )
                .is_some(),
            _ => return Err(format!("unknown option {flag:?}")),
        };
        if seen {
            return Err(format!("{flag} given twice"));
        }
    }
    Ok(Config {
        port: port.ok_or("missing --port")?,
        root: root.ok_or("missing --root")?,
        workers: workers.ok_or("missing --workers")?,
    })
}

/// Binds 127.0.0.1:`port` (0: any free port), non-blocking, so that workers woken together
/// for one connection do not block in `accept` when a sibling took it.
///
/// # Errors
///
/// The bind error (`EADDRINUSE`, ...).
pub fn bind(port: u16) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(SocketAddrV4::new([127, 0, 0, 1].into(), port))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// One worker, as the master knows it.
struct Worker {
    slot: usize,
    /// Sent SIGTERM (SIGHUP or shutdown): not replaced when it exits.
    retired: bool,
}

/// The master's state.
struct Master<'a> {
    listener: Option<TcpListener>,
    root: &'a Path,
    board: Scoreboard,
    want: usize,
    workers: HashMap<i32, Worker>,
    /// Workers to start once a slot is free (every slot taken by workers still finishing).
    pending: usize,
    signals: SignalFd,
    /// When shutting down: the moment the workers get SIGKILL.
    deadline: Option<Instant>,
}

/// Runs the master on `listener` until SIGTERM or SIGINT: forks `config.workers` workers
/// serving `config.root` and keeps that many running (see the module's table).
///
/// # Errors
///
/// The root is not a directory, or a system call the master cannot do without failed
/// (`mmap`, `signalfd`, the first `fork`).
pub fn run(config: &Config, listener: TcpListener) -> Result<(), String> {
    let root = config
        .root
        .canonicalize()
        .ok()
        .filter(|r| r.is_dir())
        .ok_or_else(|| format!("{} is not a directory", config.root.display()))?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| format!("sigprocmask: {e}"))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;
    // Twice the workers: after SIGHUP the old set finishes while the new one serves.
    let board = Scoreboard::new(config.workers * 2 + 2).map_err(|e| format!("scoreboard: {e}"))?;
    let mut m = Master {
        listener: Some(listener),
        root: &root,
        board,
        want: config.workers,
        workers: HashMap::new(),
        pending: 0,
        signals,
        deadline: None,
    };
    for _ in 0..config.workers {
        if let Err(e) = m.spawn() {
            let forked = m.workers.len();
            // A server that cannot start leaves nothing behind: the workers already forked
            // would otherwise go on serving, orphans nobody stops.
            m.abandon();
            return Err(format!("cannot fork worker {} of {}: {e}", forked + 1, config.workers));
        }
    }
    m.serve();
    Ok(())
}

impl Master<'_> {
    /// Forks one worker into a free slot (or remembers to, once one is free).
    fn spawn(&mut self) -> nix::Result<()> {
        let Some(slot) = self.board.free_slot() else {
            self.pending += 1;
            return Ok(());
        };
        let Some(listener) = &self.listener else {
            return Ok(());
        };
        // Reset before the fork: the worker may serve (and count) before the master
        // runs again.
        self.board.start(slot, 0);
        // SAFETY: the master is single-threaded, so the child may run ordinary code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => worker::run(listener, self.root, &self.board, slot),
            Ok(ForkResult::Parent { child }) => {
                self.board.set_pid(slot, child.as_raw());
                self.workers.insert(
                    child.as_raw(),
                    Worker {
                        slot,
                        retired: false,
                    },
                );
                Ok(())
            }
            Err(e) => {
                self.board.release(slot);
                Err(e)
            }
        }
    }

    /// Waits for signals and acts on them, until shutdown is over.
    fn serve(&mut self) {
        loop {
            if self.deadline.is_some() && self.workers.is_empty() {
                return;
            }
            let timeout = match self.deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    PollTimeout::try_from(left.as_millis() as u64 + 1).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            if let Ok(0) = poll(&mut fds, timeout) {
                // The grace is over: whatever still runs is killed.
                self.kill_all(Signal::SIGKILL);
            }
            while let Ok(Some(info)) = self.signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => self.reap(),
                    Ok(Signal::SIGHUP) => self.reload(),
                    Ok(Signal::SIGTERM | Signal::SIGINT) => self.shut_down(),
                    _ => {}
                }
            }
        }
    }

    /// Reaps every ended worker; replaces those that were not asked to stop.
    fn reap(&mut self) {
        loop {
            let (pid, how) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, format!("exited with status {code}")),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, format!("was killed by {sig}")),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            let Some(w) = self.workers.remove(&pid.as_raw()) else {
                continue;
            };
            self.board.release(w.slot);
            if !w.retired && self.deadline.is_none() {
                eprintln!("prefork-httpd: worker {pid} {how}; starting another");
                self.pending += 1;
            }
        }
        // Start what is owed, now that slots may be free.
        let owed = std::mem::take(&mut self.pending);
        for _ in 0..owed {
            if let Err(e) = self.spawn() {
                eprintln!("prefork-httpd: cannot start a worker: {e}");
            }
        }
    }

    /// SIGHUP: a new set of workers; the old ones finish what they serve and exit.
    fn reload(&mut self) {
        if self.deadline.is_some() {
            return;
        }
        for (&pid, w) in self.workers.iter_mut() {
            if !w.retired {
                w.retired = true;
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        self.pending = 0;
        for _ in 0..self.want {
            if let Err(e) = self.spawn() {
                eprintln!("prefork-httpd: cannot start a worker: {e}");
            }
        }
    }

    /// SIGTERM or SIGINT: stop accepting, ask every worker to finish, start the clock.
    fn shut_down(&mut self) {
        if self.deadline.is_some() {
            return;
        }
        self.deadline = Some(Instant::now() + SHUTDOWN_GRACE);
        self.listener = None;
        self.pending = 0;
        for w in self.workers.values_mut() {
            w.retired = true;
        }
        self.kill_all(Signal::SIGTERM);
    }

    /// Start-up failed: kills every worker forked so far and waits for each.
    fn abandon(&mut self) {
        self.kill_all(Signal::SIGKILL);
        for (pid, _) in self.workers.drain() {
            let _ = waitpid(Pid::from_raw(pid), None);
        }
    }

    fn kill_all(&self, sig: Signal) {
        for &pid in self.workers.keys() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}
