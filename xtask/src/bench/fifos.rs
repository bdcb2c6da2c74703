//! The fifos figure of `cargo xtask bench`: requests per second of the reference
//! `fifo-server` (release build) against a minimal C server of the same protocol
//! (`xtask/bench/fifo_server.c`), under the same load, in alternating rounds.
//!
//! The load: [`Load::clients`] threads, each with its own reply FIFO
//! `DIR/client.<id>.fifo` created and opened before it sends anything (as `fifo-client`
//! does), each sending [`Load::requests`] requests one after the other: one `write` of
//! `<id> <count>\n`, then a wait of at most 5 s for the reply. The blocks handed out are
//! checked (disjoint, contiguous from 0), and the server must stop on SIGTERM with exit 0
//! and its FIFO removed: a figure from a server that breaks the contract is refused.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, mkfifo, read, write};

use grader::labfile::Tree;

/// How long a client waits for one reply, and the server for its `ready`.
const DEADLINE: Duration = Duration::from_secs(5);

/// The load one round puts on a server.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Client threads, all sending at once.
    pub clients: u32,
    /// Requests each client sends, one after the other.
    pub requests: u32,
}

/// Builds the reference `fifo-server` in release mode, into `target/bench/fifos`.
///
/// The solution is staged as the grader stages it (the lab's template with the solution's
/// `src/` laid over it), so the binary is the one students are shown, with the release
/// profile of the lab's standalone manifest.
pub fn build_reference(tree: &Tree, work: &Path) -> Result<PathBuf> {
    super::release_bin(tree, "fifos", "fifo-server", work)
}

/// The C servers, built from `xtask/bench/fifo_server.c`.
pub struct CServers {
    /// The same system calls as the reference: the FIFO check is `F_GETPIPE_SZ`.
    pub same: PathBuf,
    /// The FIFO check done with `fstat` (`-DCHECK_FSTAT`).
    pub fstat: PathBuf,
    /// No FIFO check at all (`-DNO_CHECK`): breaks the contract, shows what the check costs.
    pub unchecked: PathBuf,
    /// The command line that built `same`.
    pub command: String,
}

/// Compiles `xtask/bench/fifo_server.c` with the machine's `cc -O2` into `target/bench/`,
/// once per variant. `Ok(None)` when there is no `cc`.
pub fn build_c(tree: &Tree) -> Result<Option<CServers>> {
    let source = tree.root.join("xtask").join("bench").join("fifo_server.c");
    let dir = tree.root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let cc = |name: &str, define: Option<&str>| -> Result<Option<(PathBuf, String)>> {
        let exe = dir.join(name);
        let mut cmd = Command::new("cc");
        cmd.arg("-O2").args(define).arg("-o").arg(&exe).arg(&source);
        let shown = format!(
            "cc -O2 {}-o {} {}",
            define.map(|d| format!("{d} ")).unwrap_or_default(),
            exe.display(),
            source.display()
        );
        match cmd.status() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("cannot run cc"),
            Ok(status) if status.success() => Ok(Some((exe, shown))),
            Ok(status) => bail!("`{shown}` failed: {status}"),
        }
    };
    let Some((same, command)) = cc("fifo_server", None)? else {
        return Ok(None);
    };
    let built =
        |name, define| -> Result<PathBuf> { Ok(cc(name, Some(define))?.context("cc vanished")?.0) };
    Ok(Some(CServers {
        fstat: built("fifo_server_fstat", "-DCHECK_FSTAT")?,
        unchecked: built("fifo_server_unchecked", "-DNO_CHECK")?,
        same,
        command,
    }))
}

/// What one round measured.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Requests answered per second, wall clock, while all clients ran.
    pub rate: f64,
    /// CPU time (user + system) the server process used per request, in microseconds,
    /// start-up and shutdown included. Less sensitive than `rate` to other load on the
    /// machine.
    pub cpu_us: f64,
}

/// One round: starts `server DIR` in a fresh directory, runs `load` against it and stops
/// it.
pub fn round(server: &Path, load: Load) -> Result<Round> {
    let cpu0 = super::children_cpu()?;
    let running = Running::start(server)?;
    let dir = running.dir.path();
    let barrier = Barrier::new(load.clients as usize + 1);
    let (elapsed, blocks) = std::thread::scope(|s| {
        let threads: Vec<_> = (0..load.clients)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || client(dir, 1000 + i, load.requests, barrier))
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        let mut blocks = Vec::new();
        for t in threads {
            blocks.extend(t.join().expect("a client thread panicked")?);
        }
        anyhow::Ok((t0.elapsed(), blocks))
    })
    .with_context(|| format!("{} under load", server.display()))?;
    check_blocks(blocks).with_context(|| format!("{} handed out", server.display()))?;
    running.stop()?;
    // The server is this process's only child in the round, and has been reaped.
    let cpu = super::children_cpu()? - cpu0;
    let total = f64::from(load.clients) * f64::from(load.requests);
    Ok(Round {
        rate: total / elapsed.as_secs_f64(),
        cpu_us: cpu.as_secs_f64() * 1e6 / total,
    })
}

/// A server process in its own process group and scratch directory; killed and reaped
/// when dropped, so that no process or FIFO outlives a failed round.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl Running {
    /// Starts `exe DIR` and waits for its `ready` line.
    fn start(exe: &Path) -> Result<Running> {
        let dir = tempfile::tempdir()?;
        let child = Command::new(exe)
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let mut running = Running {
            child,
            dir,
            exe: exe.to_owned(),
        };
        let stdout = running.child.stdout.take().context("no stdout")?;
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(DEADLINE).unwrap_or(PollTimeout::MAX);
        ensure!(
            poll(&mut fds, ms)? > 0,
            "{} printed nothing within {DEADLINE:?}: expected `ready`",
            exe.display()
        );
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        ensure!(
            line == "ready\n",
            "{} printed {line:?}, expected \"ready\\n\"",
            exe.display()
        );
        Ok(running)
    }

    /// SIGTERM; the server must exit 0 within the deadline and leave no FIFO.
    fn stop(mut self) -> Result<()> {
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM)?;
        let t0 = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            ensure!(
                t0.elapsed() < DEADLINE,
                "{} did not exit within {DEADLINE:?} of SIGTERM",
                self.exe.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        ensure!(
            status.success(),
            "{} ended with {status} after SIGTERM, expected exit 0",
            self.exe.display()
        );
        let fifo = self.dir.path().join("seqnum.fifo");
        ensure!(
            !fifo.exists(),
            "{} left {} behind",
            self.exe.display(),
            fifo.display()
        );
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// One client thread: sets up its reply FIFO and its end of the server's FIFO, waits at
/// `start` with the others, then sends `requests` requests one after the other. Returns
/// the blocks it was given, as `(start, count)`.
fn client(dir: &Path, id: u32, requests: u32, start: &Barrier) -> Result<Vec<(u64, u64)>> {
    let fds = connect(dir, id);
    // Every thread reaches the barrier, even after a failure, so that none waits forever.
    start.wait();
    let (reply, server) = fds?;
    let mut blocks = Vec::with_capacity(requests as usize);
    let mut buf = [0u8; 64];
    for i in 0..requests {
        let count = u64::from(1 + i % 7);
        let line = format!("{id} {count}\n");
        // One write: a FIFO keeps it whole among the other clients' requests.
        ensure!(
            write(&server, line.as_bytes())? == line.len(),
            "short write"
        );
        let mut fds = [PollFd::new(reply.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(DEADLINE).unwrap_or(PollTimeout::MAX);
        ensure!(
            poll(&mut fds, ms)? > 0,
            "client {id}: no reply to request {i} within {DEADLINE:?}"
        );
        // The reply is one write of a few bytes: one read gets it whole.
        let n = read(&reply, &mut buf)?;
        let got = &buf[..n];
        let start = std::str::from_utf8(got)
            .ok()
            .and_then(|s| s.strip_suffix('\n'))
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("client {id}: reply {:?}", String::from_utf8_lossy(got)))?;
        blocks.push((start, count));
    }
    Ok(blocks)
}

/// Creates and opens the reply FIFO of client `id`, then opens the server's FIFO.
fn connect(dir: &Path, id: u32) -> Result<(OwnedFd, OwnedFd)> {
    let path = dir.join(format!("client.{id}.fifo"));
    mkfifo(&path, Mode::from_bits_truncate(0o600))
        .with_context(|| format!("mkfifo {}", path.display()))?;
    // O_RDWR, as the shell client's `exec 3<>`: the open does not wait for the server, and
    // the FIFO keeps a writer between replies, so `poll` sleeps instead of reporting the
    // hang-up that follows each reply's close.
    let reply = open(&path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("opening {}", path.display()))?;
    let server_path = dir.join("seqnum.fifo");
    let server = open(
        &server_path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("no server reads {}", server_path.display()))?;
    // Wait, rather than fail, when the server's FIFO is full.
    fcntl(&server, FcntlArg::F_SETFL(OFlag::empty()))?;
    Ok((reply, server))
}

/// The blocks must not overlap and must leave no gap from 0.
fn check_blocks(mut blocks: Vec<(u64, u64)>) -> Result<()> {
    blocks.sort_unstable();
    let mut next = 0;
    for (start, count) in blocks {
        ensure!(
            start == next,
            "a block starting at {start} where {next} was expected"
        );
        next += count;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short load against the C baseline: every request answered, the blocks contiguous,
    /// the server stopped by SIGTERM with its FIFO removed (a machine without `cc` skips it).
    #[test]
    fn round_against_the_c_baseline() -> Result<()> {
        let tree = Tree::locate(Some(&crate::root()))?;
        let Some(c) = build_c(&tree)? else {
            eprintln!("no cc: skipped");
            return Ok(());
        };
        let r = round(
            &c.same,
            Load {
                clients: 4,
                requests: 50,
            },
        )?;
        assert!(r.rate > 0.0 && r.cpu_us > 0.0, "{r:?}");
        Ok(())
    }

    /// A server that says `ready` but never creates its FIFO: the round fails at once and
    /// the server is killed with its process group (the `sleep` does not linger).
    #[test]
    fn a_broken_server_fails_the_round_and_is_killed() -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir()?;
        let exe = scratch.path().join("fake-server");
        let marker = format!("fake-server-{}", std::process::id());
        std::fs::write(
            &exe,
            format!("#!/bin/bash\necho ready\nexec -a {marker} sleep 30\n"),
        )?;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
        let t0 = Instant::now();
        let err = round(
            &exe,
            Load {
                clients: 2,
                requests: 1,
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("no server reads"), "{err:#}");
        assert!(t0.elapsed() < DEADLINE, "took {:?}", t0.elapsed());
        let lingering = std::fs::read_dir("/proc")?
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .any(|cmdline| cmdline.starts_with(marker.as_bytes()));
        assert!(!lingering, "{marker} still runs");
        Ok(())
    }

    /// Overlapping or gapped blocks are refused, in any order.
    #[test]
    fn blocks_must_be_contiguous_from_zero() {
        assert!(check_blocks(vec![(3, 2), (0, 3), (5, 1)]).is_ok());
        assert!(check_blocks(vec![(0, 3), (2, 2)]).is_err());
        assert!(check_blocks(vec![(1, 3)]).is_err());
    }
}
