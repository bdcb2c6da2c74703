//! The FIFO ends the grader holds itself when it plays the other side of the protocol: a
//! client's reply FIFO, or a server's FIFO that nobody answers.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, read};

use super::SERVER_FIFO;
use crate::check::Fail;

/// The reading end of a reply FIFO that the grader, as a client, created; removed on drop.
pub(super) struct ReplyEnd {
    pub(super) path: PathBuf,
    pub(super) fd: Option<OwnedFd>,
}

impl ReplyEnd {
    /// `mkfifo DIR/client.<pid>.fifo`, opened for reading when `open_it`.
    pub(super) fn new(dir: &Path, pid: u32, open_it: bool) -> Result<ReplyEnd, Fail> {
        let path = dir.join(format!("client.{pid}.fifo"));
        mkfifo(&path, Mode::from_bits_truncate(0o600))?;
        let mut end = ReplyEnd { path, fd: None };
        if open_it {
            end.fd = Some(open(
                &end.path,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?);
        }
        Ok(end)
    }

    /// Waits up to `limit` for one line; returns what arrived (maybe nothing, maybe more).
    pub(super) fn line(&self, limit: Duration) -> Vec<u8> {
        let Some(fd) = &self.fd else {
            return Vec::new();
        };
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.contains(&b'\n') {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(left.as_millis()).unwrap_or(PollTimeout::MAX);
            if left.is_zero() || matches!(poll(&mut fds, ms), Ok(0) | Err(_)) {
                break;
            }
            match read(fd, &mut buf) {
                Ok(0) => break, // the server closed it: all there is has been read
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        got
    }
}

impl Drop for ReplyEnd {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Both ends of a server FIFO that the grader holds itself, as a server would (and never
/// answers unless told to).
pub(super) struct FakeServer {
    pub(super) reader: OwnedFd,
    pub(super) writer: OwnedFd,
}

impl FakeServer {
    pub(super) fn new(dir: &Path) -> Result<FakeServer, Fail> {
        let path = dir.join(SERVER_FIFO);
        mkfifo(&path, Mode::from_bits_truncate(0o600))?;
        let reader = open(
            &path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let writer = open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
        Ok(FakeServer { reader, writer })
    }
}
