//! The student's servers and the grader's own clients: starting `uds-bus` and `fd-server`
//! and waiting for `ready`, counting the bus's log lines, a client that reads whole lines
//! with a deadline, a connection made as another uid, and a folder another user can reach.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::PROMPT;
use crate::check::{Ctx, Fail, poll_until};
use crate::fail;
use crate::sandbox::{Ending, Proc, Spec};

/// The name of a path in messages: its file name.
pub(super) fn shown(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) use crate::check::{doing, stderr_of};

/// Why a server stopped answering: it died, or where it is stuck.
pub(super) fn server_state(server: &mut Proc) -> String {
    match server.try_ending() {
        Some(e) => format!("uds-bus {}; {}", e.describe(), stderr_of(server)),
        None => format!("uds-bus is still running, and {}", doing(server.pid)),
    }
}

/// Starts `spec` (a server) and waits for its `ready` line; `what` names it.
pub(super) fn start_ready(ctx: &mut Ctx, spec: &Spec, what: &str) -> Result<Proc, Fail> {
    let mut p = ctx.spawn(spec)?;
    let ready = p.wait_stdout(Instant::now() + PROMPT, |out| {
        out.split(|&b| b == b'\n').any(|l| l == b"ready")
    });
    if !ready {
        let why = match p.try_ending() {
            Some(e) => format!("{} without printing it; {}", e.describe(), stderr_of(&p)),
            None => format!(
                "did not print it within {} s; {}",
                PROMPT.as_secs(),
                doing(p.pid)
            ),
        };
        fail!("`{what}` must print `ready` on stdout once clients can connect, but it {why}");
    }
    Ok(p)
}

/// Starts `uds-bus PATH extra...` and waits for `ready`.
pub(super) fn start_bus(ctx: &mut Ctx, path: &Path, extra: &[&str]) -> Result<Proc, Fail> {
    let spec = ctx
        .bin("uds-bus")
        .args([path.as_os_str()])
        .args(extra.iter().copied());
    let what = format!("uds-bus {} {}", shown(path), extra.join(" "));
    start_ready(ctx, &spec, what.trim_end())
}

/// The pid the student's servers see for the grader's own clients (SO_PEERCRED): the check
/// process's, in the PID namespace they share.
pub(super) fn me() -> i32 {
    std::process::id() as i32
}

/// How many lines of the bus's stderr log `event` for a client of process `pid`
/// (`client PID (uid UID) event`, with `event` one of `joined`, `denied`, `left`, `dropped`).
/// Only that pid's lines count: a second server's probe connection is not one of ours.
pub(super) fn logged(bus: &Proc, pid: i32, event: &str) -> usize {
    count_lines(&bus.stderr().0, pid, event)
}

fn count_lines(err: &[u8], pid: i32, event: &str) -> usize {
    let who = format!("client {pid} (");
    let what = format!(") {event}");
    err.split(|&b| b == b'\n')
        .map(String::from_utf8_lossy)
        .filter(|l| l.contains(&who) && l.contains(&what))
        .count()
}

/// Waits until `n` lines of the bus's stderr log `event` for process `pid`; fails saying
/// what the scenario was (`after`) otherwise.
pub(super) fn wait_logged(
    bus: &mut Proc,
    pid: i32,
    event: &str,
    n: usize,
    after: &str,
) -> Result<(), Fail> {
    let seen = bus.wait_stderr(Instant::now() + PROMPT, |err| {
        count_lines(err, pid, event) >= n
    });
    if seen && logged(bus, pid, event) >= n {
        return Ok(());
    }
    let when = if event == "joined" {
        ""
    } else {
        " It must also do so at once, in the turn of its poll loop that sees the client go \
         (a loop that closes and logs gone clients only when a new one connects keeps them)."
    };
    fail!(
        "{after}, uds-bus logged {} line(s) `uds-bus: client {pid} (uid UID) {event}` on \
         stderr within {} s instead of {n}: it must log one such line per client, with the pid \
         and uid from SO_PEERCRED.{when} {}",
        logged(bus, pid, event),
        PROMPT.as_secs(),
        server_state(bus)
    )
}

/// A bus client played by the grader: whole lines with a deadline.
pub(super) struct Peer {
    pub stream: UnixStream,
    pending: Vec<u8>,
}

/// What [`Peer::line`] got instead of a line.
#[derive(Debug)]
pub(super) enum NoLine {
    /// The bus closed the connection.
    Closed,
    /// Nothing whole in time.
    Late,
    /// Reading failed.
    Error(std::io::Error),
}

impl Peer {
    /// Connects to `path` as the student's own uid (the grader itself is root, whom the
    /// bus rightly denies), so that the bus admits this client as one of its own.
    pub fn connect(ctx: &Ctx, path: &Path) -> Result<Peer, Fail> {
        let connected = match ctx.student {
            Some(student) => connect_as(path, student),
            None => UnixStream::connect(path),
        };
        match connected {
            Ok(stream) => Ok(Peer::from(stream)),
            Err(e) => fail!(
                "the grader could not connect to {} although the bus printed `ready`: {e}",
                shown(path)
            ),
        }
    }

    /// Sends all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        self.stream.write_all(bytes).map_err(|e| {
            Fail(format!(
                "a client of the grader could not write to the bus: {e} (did the bus close the \
                 connection?)"
            ))
        })
    }

    /// The next whole line with its `\n`, waiting until `deadline`.
    pub fn line(&mut self, deadline: Instant) -> Result<Vec<u8>, NoLine> {
        let mut buf = [0u8; 16384];
        loop {
            if let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
                return Ok(self.pending.drain(..=nl).collect());
            }
            match self.read_some(&mut buf, deadline) {
                Ok(0) => return Err(NoLine::Closed),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::TimedOut => return Err(NoLine::Late),
                Err(e) => return Err(NoLine::Error(e)),
            }
        }
    }

    /// The bytes of a line not yet complete.
    pub fn partial(&self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }

    /// One read until `deadline`: 0 at the end of the stream, `TimedOut` past the deadline.
    fn read_some(&mut self, buf: &mut [u8], deadline: Instant) -> std::io::Result<usize> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(0),
                r => return r,
            }
        }
    }

    /// Reads until the bus closes the connection (or `deadline`): the bytes read, and
    /// whether it closed.
    pub fn until_closed(&mut self, deadline: Instant) -> (Vec<u8>, bool) {
        let mut all = std::mem::take(&mut self.pending);
        let mut buf = [0u8; 65536];
        loop {
            match self.read_some(&mut buf, deadline) {
                Ok(0) => return (all, true),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(_) => return (all, false),
            }
        }
    }

    /// Bytes this client wrote that the bus has not read yet (SIOCOUTQ).
    pub fn unread(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (= SIOCOUTQ) writes one int.
        let r = unsafe { libc::ioctl(self.stream.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
        if r == 0 { n as usize } else { 0 }
    }
}

impl From<UnixStream> for Peer {
    fn from(stream: UnixStream) -> Peer {
        Peer {
            stream,
            pending: Vec::new(),
        }
    }
}

/// Waits until the bus has read everything each of `peers` wrote.
pub(super) fn wait_read_by_bus(peers: &[&Peer], limit: Duration) -> bool {
    poll_until(Instant::now() + limit, || {
        peers.iter().all(|p| p.unread() == 0)
    })
}

/// The uid and gid of the other user of the checks.
pub(super) const NOBODY: (u32, u32) = (65534, 65534);

/// Connects to `path` as `(uid, gid)`: a thread of the grader drops to that identity (the
/// kernel keeps credentials per thread; the raw system calls change only the calling one)
/// and connects, so the socket's peer credentials are that user's. The thread then ends;
/// the connection is used from here like any other. Needs root.
pub(super) fn connect_as(path: &Path, (uid, gid): (u32, u32)) -> std::io::Result<UnixStream> {
    as_user((uid, gid), path.to_owned(), |p| UnixStream::connect(p))
}

/// Runs `f(arg)` on a thread that has become `(uid, gid)` for good; its result.
pub(super) fn as_user<T: Send + 'static>(
    (uid, gid): (u32, u32),
    arg: PathBuf,
    f: impl FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    std::thread::spawn(move || {
        // SAFETY: plain system calls on integers. glibc's setuid would change every thread
        // of the process; the raw system calls change only this one, which ends below.
        unsafe {
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        f(&arg)
    })
    .join()
    .map_err(|_| std::io::Error::other("the thread of the other user panicked"))?
}

/// A folder inside the scratch folder that every user may traverse (mode 0711, and the
/// scratch folder opened to 0711 as well), removed on drop.
pub(super) struct Shared {
    pub dir: PathBuf,
}

impl Shared {
    pub fn new(ctx: &Ctx, name: &str) -> Result<Shared, Fail> {
        std::fs::set_permissions(&ctx.scratch, std::fs::Permissions::from_mode(0o711))?;
        let dir = ctx.scratch.join(name);
        std::fs::create_dir_all(&dir)?;
        let shared = Shared { dir };
        std::fs::set_permissions(&shared.dir, std::fs::Permissions::from_mode(0o711))?;
        Ok(shared)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `sig` to `p` and waits up to [`PROMPT`] for it to exit; how it ended.
pub(super) fn stop(p: &mut Proc, sig: nix::sys::signal::Signal) -> Option<Ending> {
    p.signal(sig);
    p.wait_until(Instant::now() + PROMPT)
}
