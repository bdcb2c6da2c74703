//! The service directory and the student's programs in it: starting `fifo-server`, running
//! `fifo-client`, writing a request as a client would, and looking at what is left.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::Mode;

use super::state::{doing, stderr_of};
use super::{PROMPT, SERVER_FIFO};
use crate::check::{Ctx, Fail, Output};
use crate::fail;
use crate::sandbox::Proc;

/// A fresh service directory `name` in the scratch folder.
pub(super) fn service_dir(ctx: &Ctx, name: &str) -> Result<PathBuf, Fail> {
    let dir = ctx.scratch.join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

pub(super) fn shown(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Starts `fifo-server DIR` and waits for its `ready` line.
pub(super) fn start_server(ctx: &mut Ctx, dir: &Path) -> Result<Proc, Fail> {
    let spec = ctx.bin("fifo-server").args([dir]);
    let mut p = ctx.spawn(&spec)?;
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
        fail!(
            "`fifo-server {}` must print `ready` on stdout once it accepts requests, but it {why}",
            shown(dir)
        );
    }
    Ok(p)
}

/// Runs `fifo-client DIR COUNT` to its end.
pub(super) fn client(ctx: &mut Ctx, dir: &Path, count: &str) -> Result<Output, Fail> {
    let spec = ctx
        .bin("fifo-client")
        .args([dir.as_os_str(), count.as_ref()]);
    ctx.run(
        &format!("`fifo-client {} {count}`", shown(dir)),
        &spec,
        Duration::from_secs(10),
    )
}

/// Runs `fifo-client DIR COUNT` and returns the start it printed; `why` says what the
/// scenario was, for the message.
pub(super) fn client_start(ctx: &mut Ctx, dir: &Path, count: u64, why: &str) -> Result<u64, Fail> {
    let out = client(ctx, dir, &count.to_string())?;
    let text = out.stdout_str();
    match (out.status(), text.trim().parse::<u64>()) {
        (0, Ok(start)) if text.ends_with('\n') => Ok(start),
        (status, _) => fail!(
            "{why}: `fifo-client {} {count}` exited with status {status} and printed {text:?} \
             instead of one number; its stderr: {:?}",
            shown(dir),
            crate::run::clip(out.stderr_str().trim(), 600)
        ),
    }
}

/// Writes `bytes` into the server's FIFO of `dir` as a client would (one write when short).
pub(super) fn send(dir: &Path, bytes: &[u8]) -> Result<(), Fail> {
    let path = dir.join(SERVER_FIFO);
    let fd = match open(
        &path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENXIO | Errno::ENOENT) => fail!(
            "no process reads {}/{SERVER_FIFO} although fifo-server printed `ready`: the server \
             must keep its FIFO open for reading for as long as it runs",
            shown(dir)
        ),
        Err(e) => return Err(e.into()),
    };
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::empty()))?;
    std::fs::File::from(fd).write_all(bytes)?;
    Ok(())
}

/// Whether the path exists, as anything (a FIFO included).
pub(super) fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The names in `dir`, sorted.
pub(super) fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls `cond` every millisecond until it holds or `limit` passes.
pub(super) fn wait_for(limit: Duration, cond: impl FnMut() -> bool) -> bool {
    crate::check::poll_until(Instant::now() + limit, cond)
}
