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
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{Mode, SFlag, lstat};
use nix::unistd::{mkfifo, read, unlink, write};

use crate::protocol::{Decoder, Rejected, Reply, Request, client_fifo, server_fifo};

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
    match mkfifo(path, Mode::from_bits_truncate(0o600)) {
        Ok(()) => return Ok(()),
        Err(Errno::EEXIST) => {}
        Err(errno) => {
            return Err(ServerError::Sys {
                what: format!("creating {}", path.display()),
                errno,
            });
        }
    }
    let st = sys(lstat(path), || format!("examining {}", path.display()))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFIFO {
        return Err(ServerError::NotAFifo(path.to_owned()));
    }
    match open(
        path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        // Someone reads it: a live server. The probe closes here; it sends no byte.
        Ok(_probe) => Err(ServerError::AlreadyRunning(path.to_owned())),
        // Nobody reads it: left behind by a server that died. Reuse it.
        Err(Errno::ENXIO) => Ok(()),
        Err(errno) => Err(ServerError::Sys {
            what: format!(
                "opening {} to see whether a server reads it",
                path.display()
            ),
            errno,
        }),
    }
}

/// Removes the server's FIFO when dropped: on a normal stop, on an error, on a panic.
#[derive(Debug)]
struct Removal(PathBuf);

impl Drop for Removal {
    fn drop(&mut self) {
        // The FIFO would otherwise outlive the server: the kernel never removes it.
        let _ = unlink(&self.0);
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
    let path = client_fifo(dir, pid);
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let Ok(fd) = open(&path, flags, Mode::empty()) else {
        return false;
    };
    // Only a pipe or a FIFO answers F_GETPIPE_SZ (anything else: EBADF): the check that
    // the path is a FIFO. `fstat` would do too, but once a stat has read its timestamps
    // the kernel (Linux 6.13+, ext4 among others) must store a fine-grained time at
    // the next write, so every reply would also rewrite the FIFO's inode.
    let is_fifo = fcntl(&fd, FcntlArg::F_GETPIPE_SZ).is_ok();
    // A line is far shorter than PIPE_BUF: the write is all or nothing.
    is_fifo && write(&fd, line.as_bytes()) == Ok(line.len())
}

/// A running server: its FIFO, both ends of it, the signals it waits for, and the next
/// number to hand out.
#[derive(Debug)]
pub struct Server {
    dir: PathBuf,
    /// Read end of the server's FIFO, non-blocking; `poll` says when to read.
    reader: OwnedFd,
    /// A write end of its own FIFO, never written: while it is open there is always a
    /// writer, so the reader never sees EOF when the last client leaves.
    _keepalive: OwnedFd,
    /// SIGINT and SIGTERM, blocked and delivered here instead.
    signals: SignalFd,
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
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGTERM);
        // Blocked, the signals stay pending until read from the signalfd. Do this before
        // any thread is spawned: threads inherit the mask.
        sys(
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None),
            || "blocking SIGINT and SIGTERM".into(),
        )?;
        let signals = sys(
            SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC),
            || "creating a signalfd".into(),
        )?;
        let path = server_fifo(dir);
        create_fifo(&path)?;
        let fifo = Removal(path.clone());
        // O_NONBLOCK: do not wait for a first writer.
        let reader = sys(
            open(
                &path,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            ),
            || format!("opening {} for reading", path.display()),
        )?;
        // Does not block: this process is already a reader.
        let keepalive = sys(
            open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()),
            || format!("opening {} for writing", path.display()),
        )?;
        Ok(Server {
            dir: dir.to_owned(),
            reader,
            _keepalive: keepalive,
            signals,
            next: 0,
            decoder: Decoder::new(),
            _fifo: fifo,
        })
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
        let mut buf = [0u8; 4096];
        loop {
            let (data, stop) = {
                let mut fds = [
                    PollFd::new(self.reader.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Err(Errno::EINTR) => continue,
                    r => sys(r, || "waiting for requests (poll)".into())?,
                };
                let ready = |fd: &PollFd| !fd.revents().unwrap_or(PollFlags::empty()).is_empty();
                (ready(&fds[0]), ready(&fds[1]))
            };
            if stop {
                return Ok(());
            }
            if !data {
                continue;
            }
            match read(&self.reader, &mut buf) {
                // Cannot happen while the keep-alive write end is open.
                Ok(0) => {}
                Ok(n) => {
                    for request in self.decoder.feed(&buf[..n]) {
                        self.handle(request);
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(errno) => {
                    return Err(ServerError::Sys {
                        what: "reading requests".into(),
                        errno,
                    });
                }
            }
        }
    }

    /// Handles one decoded request line.
    ///
    /// A valid request is answered with `<start>\n`, where `start` is the next free number;
    /// the block `start .. start + count` is granted (the next free number moves on) only if
    /// [`reply`] delivered the line. A rejected one is answered with `error <reason>\n` when
    /// it names a pid (its reply FIFO may exist), and otherwise dropped.
    pub fn handle(&mut self, request: Result<Request, Rejected>) {
        match request {
            Ok(req) => {
                if reply(&self.dir, req.pid, &Reply::Start(self.next).to_line()) {
                    self.next += req.count;
                }
            }
            Err(Rejected {
                pid: Some(pid),
                reason,
            }) => {
                reply(&self.dir, pid, &Reply::Error(reason.to_string()).to_line());
            }
            Err(Rejected { pid: None, .. }) => {}
        }
    }

    /// The first number of the next block.
    pub fn next(&self) -> u64 {
        self.next
    }
}
