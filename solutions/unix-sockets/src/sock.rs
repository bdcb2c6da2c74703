//! Part B: a listening socket file, owned and removed by the server, and the signals that
//! stop it. `uds-bus` and `fd-server` both start with [`Listener::bind`].
//!
//! What this part is about:
//!
//! - **A socket file outlives its server.** `bind` creates it; nothing removes it but
//!   `unlink`, so after a crash (SIGKILL) the next `bind` fails with `EADDRINUSE`. Whether a
//!   server still listens there is found by connecting to it: `ECONNREFUSED` means nobody
//!   accepts (stale: remove it and bind again); success means a live server (refuse to
//!   start, and leave its file alone).
//! - **A path, not a name.** The address is `struct sockaddr_un` with a `sun_path` of 108
//!   bytes, the final NUL included: a longer path cannot be bound at all.
//! - **Who may connect** is decided first by the file's mode (connecting needs write
//!   permission on it). Both servers of this lab want every user to reach them (the bus
//!   decides with the peer's credentials, the fd server hands its file to anyone who asks),
//!   so the file is made mode 0666 whatever the umask.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The size of `sun_path`: a socket's path must be shorter (its final NUL goes there too).
pub const SUN_PATH_LEN: usize = 108;

/// The mode of every socket file this lab creates.
pub const SOCKET_MODE: u32 = 0o666;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The path does not fit in `sun_path`.
    #[error(
        "{}: socket path too long ({len} bytes; a UNIX socket path must be under {SUN_PATH_LEN} bytes)",
        .path.display()
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A live server accepts connections on this path; its file was left alone.
    #[error("{}: a server is already listening", .0.display())]
    AlreadyListening(PathBuf),
    /// Something that is not a socket is in the way; it was left alone.
    #[error("{}: exists and is not a socket", .0.display())]
    NotASocket(PathBuf),
    /// A system call failed.
    #[error("{what}: {err}")]
    Sys {
        /// What the server was doing.
        what: String,
        /// The error.
        err: io::Error,
    },
}

/// `Err(io::Error)` to [`StartError::Sys`] with what the server was doing.
fn sys<T>(r: io::Result<T>, what: impl FnOnce() -> String) -> Result<T, StartError> {
    r.map_err(|err| StartError::Sys { what: what(), err })
}

/// A listening, non-blocking UNIX stream socket bound to a file that is removed when the
/// listener is dropped (a normal stop, an error, a panic).
#[derive(Debug)]
pub struct Listener {
    socket: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Binds and listens on `path`, replacing a stale socket file, and makes the file mode
    /// [`SOCKET_MODE`]. The socket is non-blocking and close-on-exec.
    ///
    /// - a path of [`SUN_PATH_LEN`] bytes or more: [`StartError::PathTooLong`], before any
    ///   system call;
    /// - nothing at `path`: bind there;
    /// - a socket file where a server accepts connections: [`StartError::AlreadyListening`];
    /// - a socket file where connecting fails with `ECONNREFUSED` (stale: its server died):
    ///   remove it and bind again;
    /// - anything else at `path`: [`StartError::NotASocket`].
    ///
    /// # Errors
    ///
    /// As above, and [`StartError::Sys`] when a system call fails for another reason
    /// (`EACCES`, a missing directory).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let listener = unix_sockets::sock::Listener::bind("/tmp/bus.sock".as_ref())?;
    /// # Ok::<(), unix_sockets::sock::StartError>(())
    /// ```
    pub fn bind(path: &Path) -> Result<Listener, StartError> {
        let len = path.as_os_str().len();
        if len >= SUN_PATH_LEN {
            return Err(StartError::PathTooLong {
                path: path.to_owned(),
                len,
            });
        }
        let socket = match UnixListener::bind(path) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                replace_stale(path)?;
                sys(UnixListener::bind(path), || {
                    format!(
                        "binding {} again after removing a stale socket",
                        path.display()
                    )
                })?
            }
            Err(err) => {
                return Err(StartError::Sys {
                    what: format!("binding {}", path.display()),
                    err,
                });
            }
        };
        // From here on the file is ours: dropping `listener` removes it, even on an error.
        let listener = Listener {
            socket,
            path: path.to_owned(),
        };
        // bind made the file with mode 0777 & ~umask; connecting needs write permission.
        sys(
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE)),
            || format!("making {} mode {SOCKET_MODE:o}", path.display()),
        )?;
        sys(listener.socket.set_nonblocking(true), || {
            "making the listening socket non-blocking".into()
        })?;
        Ok(listener)
    }

    /// Accepts one waiting connection, `None` when none is waiting (`EAGAIN`).
    ///
    /// # Errors
    ///
    /// What `accept` returns, but `EAGAIN`, `EINTR` and `ECONNABORTED`.
    pub fn accept(&self) -> io::Result<Option<UnixStream>> {
        loop {
            match self.socket.accept() {
                Ok((stream, _)) => return Ok(Some(stream)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The kernel never removes a socket file: a server that leaves it makes the next
        // one find a stale socket.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `path` is taken: removes it if it is a socket file nobody accepts on, otherwise says why
/// it cannot be had.
fn replace_stale(path: &Path) -> Result<(), StartError> {
    let meta = sys(std::fs::symlink_metadata(path), || {
        format!("examining {}", path.display())
    })?;
    if !meta.file_type().is_socket() {
        return Err(StartError::NotASocket(path.to_owned()));
    }
    match UnixStream::connect(path) {
        // A live server accepted (or queued) us. Our probe closes at once.
        Ok(_probe) => Err(StartError::AlreadyListening(path.to_owned())),
        // Nobody listens: a server died without removing it.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            sys(std::fs::remove_file(path), || {
                format!("removing the stale socket {}", path.display())
            })
        }
        Err(err) => Err(StartError::Sys {
            what: format!(
                "connecting to {} to see whether a server listens",
                path.display()
            ),
            err,
        }),
    }
}

/// Blocks SIGINT and SIGTERM in this thread (call it before starting any thread) and
/// returns a non-blocking signalfd that becomes readable when one arrives: `poll` it with
/// the sockets, and no signal is lost between a check and a wait.
///
/// # Errors
///
/// [`StartError::Sys`] if the mask cannot be set or the signalfd made.
pub fn stop_signals() -> Result<SignalFd, StartError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    sys(
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).map_err(io::Error::from),
        || "blocking SIGINT and SIGTERM".into(),
    )?;
    sys(
        SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io::Error::from),
        || "creating a signalfd".into(),
    )
}
