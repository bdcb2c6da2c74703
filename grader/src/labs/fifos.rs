//! Checks of the fifos lab: the student's `fifo-server` and `fifo-client` as real
//! processes, in a service directory under the check's scratch folder.
//!
//! Where a scenario needs the other side of the protocol, the grader plays it itself (a
//! reply FIFO it reads, a server FIFO it holds), so that each check judges one program.
//! Two kernel facts make the hard cases deterministic rather than likely:
//!
//! - a request split over two writes is caught by shrinking the server's FIFO to one page
//!   and filling it up to 8 bytes: a first piece of at most 8 bytes still goes in, the
//!   rest waits for room, and the grader finds the piece alone in the FIFO while the client
//!   is blocked. A single write of the whole line (at least 10 bytes) waits with nothing
//!   written (see [`one_write_probe`]);
//! - a client that closes its reply FIFO between the server's open and its write (the only
//!   way to get EPIPE) is produced by stopping the server with ptrace right after the open
//!   (see [`trace`]).
//!
//! The one timed wait is the idle-CPU measurement: idleness has no event to wait for.

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, read, write};

use crate::check::{Check, CheckResult, Ctx, Fail, Output};
use crate::procinfo;
use crate::sandbox::{Ending, Proc};
use crate::{ensure, fail};

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "many_clients",
        run: many_clients,
    },
    Check {
        name: "shell_client",
        run: shell_client,
    },
    Check {
        name: "idle_cpu",
        run: idle_cpu,
    },
    Check {
        name: "vanished_client",
        run: vanished_client,
    },
    Check {
        name: "bad_requests",
        run: bad_requests,
    },
    Check {
        name: "sigterm_removes_fifo",
        run: sigterm_removes_fifo,
    },
    Check {
        name: "kill_and_restart",
        run: kill_and_restart,
    },
    Check {
        name: "second_server",
        run: second_server,
    },
    Check {
        name: "no_leftovers",
        run: no_leftovers,
    },
];

/// The server's FIFO in a service directory.
const SERVER_FIFO: &str = "seqnum.fifo";
/// How long a server may take to print `ready`, and a client to finish when it should.
const PROMPT: Duration = Duration::from_secs(5);
/// Pids the grader uses for the clients it plays itself: valid, and above any real pid.
const FAKE_PID: u32 = 2_000_000_000;

// ---------------------------------------------------------------------------------------
// Helpers: the service directory, the student's programs, the grader's own FIFO ends

/// A fresh service directory `name` in the scratch folder.
fn service_dir(ctx: &Ctx, name: &str) -> Result<PathBuf, Fail> {
    let dir = ctx.scratch.join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn shown(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a process says on stderr, for messages (once it has ended, all of it).
fn stderr_of(p: &Proc) -> String {
    p.wait_stderr(Instant::now() + Duration::from_millis(500), |_| false);
    let err = String::from_utf8_lossy(&p.stderr().0).trim().to_owned();
    if err.is_empty() {
        "(nothing on stderr)".into()
    } else {
        format!("its stderr: {}", crate::run::clip(&err, 600))
    }
}

/// What the process is doing, from /proc, for messages about a stall.
fn doing(pid: i32) -> String {
    match procinfo::Snapshot::take(pid) {
        Some(s) if s.stat.state == 'Z' => "it has exited".into(),
        Some(s) if s.wchan.is_empty() => format!("its state is {}", s.stat.state),
        Some(s) => format!("it {}", procinfo::describe_wait(&s.wchan)),
        None => "it is gone".into(),
    }
}

/// Starts `fifo-server DIR` and waits for its `ready` line.
fn start_server(ctx: &mut Ctx, dir: &Path) -> Result<Proc, Fail> {
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
fn client(ctx: &mut Ctx, dir: &Path, count: &str) -> Result<Output, Fail> {
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
fn client_start(ctx: &mut Ctx, dir: &Path, count: u64, why: &str) -> Result<u64, Fail> {
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
fn send(dir: &Path, bytes: &[u8]) -> Result<(), Fail> {
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

/// The reading end of a reply FIFO that the grader, as a client, created; removed on drop.
struct ReplyEnd {
    path: PathBuf,
    fd: Option<OwnedFd>,
}

impl ReplyEnd {
    /// `mkfifo DIR/client.<pid>.fifo`, opened for reading when `open_it`.
    fn new(dir: &Path, pid: u32, open_it: bool) -> Result<ReplyEnd, Fail> {
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
    fn line(&self, limit: Duration) -> Vec<u8> {
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
struct FakeServer {
    reader: OwnedFd,
    writer: OwnedFd,
}

impl FakeServer {
    fn new(dir: &Path) -> Result<FakeServer, Fail> {
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

/// Whether the path exists, as anything (a FIFO included).
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
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
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The ids of process `pid` in every PID namespace it is in (NSpid), outermost first; a
/// process inside the sandbox's own namespace knows itself by the last one.
fn own_pids(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mut ids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        ids.push(pid as u32);
    }
    ids
}

/// How long the threads of `pid` have been runnable, in seconds: on a CPU or waiting for
/// one (/proc/PID/task/TID/schedstat). A process that spins is runnable the whole time
/// even when other processes leave it little CPU; an idle one is not runnable at all.
fn runnable_seconds(pid: i32) -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue; // a thread that has just ended
        };
        let mut fields = text
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        total += fields.next()? + fields.next()?;
    }
    Some(total as f64 / 1e9)
}

/// utime + stime of `pid` in seconds, from /proc/PID/stat.
fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3 of the line, utime 14 and stime 15.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    Some(ticks as f64 / hz as f64)
}

/// Why a server did not answer: it died, or where it is stuck.
fn server_state(server: &mut Proc) -> String {
    match server.try_ending() {
        Some(Ending::Signaled(s)) if s == libc::SIGPIPE => {
            "the server was killed by SIGPIPE".to_string()
        }
        Some(e) => format!("the server {}; {}", e.describe(), stderr_of(server)),
        None => format!("the server is still running, and {}", doing(server.pid)),
    }
}

// ---------------------------------------------------------------------------------------
// many_clients: one write per request, then 32 clients at once

/// The client writes its whole request with one write, waits when the FIFO is full, and
/// speaks the protocol: the grader plays the server.
fn one_write_probe(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "probe")?;
    let fake = FakeServer::new(&dir)?;
    // One page of capacity, filled up to 8 bytes: a request (at least 10 bytes here) cannot
    // go in until the grader reads, and a first piece of at most 8 bytes can.
    let size = fcntl(&fake.writer, FcntlArg::F_SETPIPE_SZ(4096))?;
    ensure!(
        size == 4096,
        "the grader could not shrink a FIFO to one page (got {size})"
    );
    const ROOM: usize = 8;
    let filler = vec![b'#'; 4096 - ROOM];
    ensure!(
        write(&fake.writer, &filler)? == filler.len(),
        "the grader could not fill its FIFO"
    );
    let spec = ctx
        .bin("fifo-client")
        .args([dir.as_os_str(), "1000000".as_ref()]);
    let mut p = ctx.spawn(&spec)?;
    let pids = own_pids(p.pid);
    let blocked = wait_for(PROMPT, || {
        procinfo::Snapshot::take(p.pid).is_some_and(|s| {
            s.stat.state == 'S'
                && ["pipe_write", "poll", "select", "nanosleep"]
                    .iter()
                    .any(|w| s.wchan.contains(w))
        })
    });
    if !blocked {
        let why = match p.try_ending() {
            Some(e) => format!("{}; {}", e.describe(), stderr_of(&p)),
            None => doing(p.pid),
        };
        fail!(
            "`fifo-client probe 1000000`, facing a server FIFO with room for only {ROOM} more \
             bytes, should wait (in write or poll) for the server to read; instead {why}. When \
             the FIFO is full the request must wait for room: clear O_NONBLOCK after opening \
             the server's FIFO"
        );
    }
    // One read takes everything the one-page FIFO holds at this instant.
    let mut buf = vec![0u8; 65536];
    let n = read(&fake.reader, &mut buf)?;
    let early = buf[filler.len().min(n)..n].to_vec();
    ensure!(
        early.is_empty(),
        "fifo-client wrote its request in more than one write: when the server's FIFO had \
         room for {ROOM} more bytes, {:?} went in alone and the client then waited to write \
         the rest. On a FIFO that many clients share, another client's request can land \
         between the pieces, and the server reads two garbled lines. Format the whole line \
         first and send it with ONE write(2) (`write!` on a File issues one write per piece)",
        String::from_utf8_lossy(&early)
    );
    let mut request = Vec::new();
    let deadline = Instant::now() + PROMPT;
    while !request.contains(&b'\n') && Instant::now() < deadline {
        match read(&fake.reader, &mut buf) {
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(e.into()),
        }
    }
    let own = *pids.last().unwrap_or(&0);
    let want = format!("{own} 1000000\n");
    ensure!(
        pids.iter()
            .any(|id| request == format!("{id} 1000000\n").as_bytes()),
        "`fifo-client probe 1000000` (pid {own}) sent {:?}; the request is `<pid> <count>\\n` \
         with its own pid: {want:?}",
        String::from_utf8_lossy(&request)
    );
    let text = String::from_utf8_lossy(&request).into_owned();
    let client_pid = text.split(' ').next().unwrap_or_default();
    let reply = dir.join(format!("client.{client_pid}.fifo"));
    match open(
        &reply,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => {
            write(&fd, b"4242\n")?;
        }
        Err(e) => fail!(
            "after sending its request, fifo-client must already read its reply FIFO \
             probe/client.{client_pid}.fifo (the server opens it O_WRONLY|O_NONBLOCK and drops \
             the reply if nobody reads it), but opening it for writing failed: {}. Create it and \
             open it for reading BEFORE sending the request",
            e.desc()
        ),
    }
    let out = ctx.finish("`fifo-client probe 1000000`", &mut p, PROMPT)?;
    ensure!(
        out.status() == 0 && out.stdout == b"4242\n",
        "the grader, playing the server, replied `4242`; fifo-client should print 4242 and \
         exit 0, but it exited with status {} and printed {:?}",
        out.status(),
        out.stdout_str()
    );
    ensure!(
        !exists(&reply),
        "fifo-client left its reply FIFO probe/client.{client_pid}.fifo behind: remove it \
         before exiting"
    );
    drop(fake);
    Ok(())
}

fn many_clients(ctx: &mut Ctx) -> CheckResult {
    one_write_probe(ctx)?;

    const CLIENTS: usize = 32;
    const REQUESTS: usize = 25;
    let dir = service_dir(ctx, "svc")?;
    let mut server = start_server(ctx, &dir)?;
    let client_bin = ctx.bins.get("fifo-client").cloned().unwrap_or_default();
    let mut loops = Vec::new();
    for _ in 0..CLIENTS {
        let counts: Vec<String> = (0..REQUESTS)
            .map(|_| (1 + ctx.next_u64() % 1000).to_string())
            .collect();
        let script = format!(
            "for n in {}; do s=$(\"$0\" \"$1\" $n) || {{ echo \"fifo-client svc $n exited with \
             status $?\" >&2; exit 1; }}; echo \"$n $s\"; done",
            counts.join(" ")
        );
        let spec = ctx
            .bash(&script)
            .args([client_bin.as_os_str(), dir.as_os_str()]);
        loops.push(ctx.spawn(&spec)?);
    }
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    for mut l in loops {
        let out = ctx.finish(
            &format!("{CLIENTS} loops of {REQUESTS} `fifo-client svc N` at once"),
            &mut l,
            Duration::from_secs(90),
        )?;
        if out.status() != 0 {
            fail!(
                "with {CLIENTS} clients at once, a client failed after {} successful requests of \
                 its {REQUESTS}: {}; {}",
                out.stdout_str().lines().count(),
                crate::run::clip(out.stderr_str().trim(), 800),
                server_state(&mut server)
            );
        }
        for line in out.stdout_str().lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(n, s)| Some((s.trim().parse().ok()?, n.parse().ok()?)));
            let Some(block) = parsed else {
                fail!("fifo-client printed {line:?} instead of one number");
            };
            blocks.push(block);
        }
    }
    blocks.sort();
    let mut next = 0;
    for &(start, count) in &blocks {
        ensure!(
            start >= next,
            "with {CLIENTS} clients at once, two blocks overlap: one ends at {next} and another \
             starts at {start} (count {count}). Every block must be handed out once"
        );
        ensure!(
            start == next,
            "with {CLIENTS} clients at once, the blocks leave a gap: numbers {next}..{start} \
             went to nobody. A block is granted only to a request that was answered"
        );
        next = start + count;
    }
    ensure!(
        blocks.len() == CLIENTS * REQUESTS,
        "{} of {} requests were answered",
        blocks.len(),
        CLIENTS * REQUESTS
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// shell_client

/// A client in plain shell: mkfifo, echo and read; `$0` is the directory, `$1` the count.
const SHELL_CLIENT: &str = r#"dir=$0 count=$1
reply="$dir/client.$$.fifo"
mkfifo -m 600 "$reply" || exit 1
trap 'rm -f "$reply"' EXIT
exec 3<>"$reply"                        # read end first (O_RDWR: the open cannot block)
echo "$$ $count" > "$dir/seqnum.fifo"   # one line, one write
IFS= read -r -t 5 line <&3 || { echo "no reply within 5 s" >&2; exit 1; }
echo "$line""#;

fn shell_client(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut server = start_server(ctx, &dir)?;
    let run_shell = |ctx: &mut Ctx, count: &str| -> Result<Output, Fail> {
        let spec = ctx
            .bash(SHELL_CLIENT)
            .args([dir.as_os_str(), count.as_ref()]);
        ctx.run("the shell client", &spec, Duration::from_secs(10))
    };
    let out = run_shell(ctx, "7")?;
    ensure!(
        out.status() == 0 && out.stdout == b"0\n",
        "a client written in shell (mkfifo, then `echo \"$$ 7\" > svc/seqnum.fifo`, then a \
         read of its FIFO) got {:?} (status {}; {}) instead of \"0\\n\". Script:\n{SHELL_CLIENT}\n{}",
        out.stdout_str(),
        out.status(),
        out.stderr_str().trim(),
        server_state(&mut server)
    );
    let start = client_start(ctx, &dir, 3, "after a shell client took 0..7")?;
    ensure!(
        start == 7,
        "after a shell client took 0..7, fifo-client got {start} instead of 7"
    );
    let out = run_shell(ctx, "0")?;
    ensure!(
        out.stdout_str().starts_with("error "),
        "a shell client asking for 0 numbers should read `error <reason>` on its FIFO; it read \
         {:?}",
        out.stdout_str()
    );
    let out = run_shell(ctx, "5")?;
    ensure!(
        out.stdout == b"10\n",
        "after 0..7, 7..10 and a refused request, a shell client asking for 5 got {:?} instead \
         of \"10\\n\"",
        out.stdout_str()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// idle_cpu

fn idle_cpu(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let server = start_server(ctx, &dir)?;
    // A writer must have come and gone: that is when a FIFO starts returning EOF.
    client_start(ctx, &dir, 1, "a first client")?;
    let idle = Duration::from_secs(1);
    let unreadable = "cannot read the server's CPU time from /proc";
    let cpu_before = cpu_seconds(server.pid).ok_or(unreadable)?;
    let run_before = runnable_seconds(server.pid);
    let t0 = Instant::now();
    // The one timed wait: idleness is the absence of events, so it takes a stretch of time.
    std::thread::sleep(idle);
    let cpu_after = cpu_seconds(server.pid).ok_or(unreadable)?;
    let run_after = runnable_seconds(server.pid);
    let stretch = t0.elapsed().as_secs_f64();
    let used = cpu_after - cpu_before;
    // Runnable time does not depend on how busy the machine is (two gradings at once on
    // two cores leave a spinning server far less than a whole CPU); CPU time is the
    // fallback where the kernel keeps no schedstat.
    let busy = match (run_before, run_after) {
        (Some(b), Some(a)) => (a - b).max(used),
        _ => used,
    };
    if busy > 0.2 * stretch {
        fail!(
            "fifo-server was runnable for {:.0} ms of {:.0} ms while no client was connected \
             ({:.0} ms of CPU time): it spins. Once the last writer has closed a FIFO, read() \
             returns 0 (EOF) at once and poll() reports POLLHUP at once, again and again. Keep a \
             write end of your own FIFO open (open it O_WRONLY after the read end): then there \
             is always a writer, and poll()/read() wait for the next request",
            busy * 1000.0,
            stretch * 1000.0,
            used * 1000.0
        );
    }
    let start = client_start(ctx, &dir, 1, "after an idle second")?;
    ensure!(
        start == 1,
        "after 0..1, the next client got {start} instead of 1"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// vanished_client

/// Stopping a process right after it opens a given file, with ptrace.
///
/// The grader attaches to every thread (and follows new threads and forks), runs them from
/// system call to system call, and at each stop looks whether the stopped task now has the
/// file open. That stop is right after the `open` returned and before anything else ran.
mod trace {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::time::{Duration, Instant};

    const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK;

    fn ptrace(req: libc::c_uint, tid: i32, data: usize) -> libc::c_long {
        // SAFETY: requests that take no pointer, or (GETEVENTMSG) a pointer to a c_ulong.
        unsafe { libc::ptrace(req, tid, std::ptr::null_mut::<libc::c_void>(), data) }
    }

    /// A traced process: the tasks attached.
    pub struct Tracer {
        tids: Vec<i32>,
    }

    impl Tracer {
        /// Attaches to every thread of `pid` and lets them run to their next system call.
        pub fn seize(pid: i32) -> Result<Tracer, String> {
            let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map_err(|e| e.to_string())?
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            let mut tracer = Tracer { tids: Vec::new() };
            for &tid in &tids {
                if ptrace(libc::PTRACE_SEIZE, tid, OPTIONS as usize) != 0 {
                    return Err(format!("ptrace: {}", std::io::Error::last_os_error()));
                }
                tracer.tids.push(tid);
            }
            for &tid in &tids {
                ptrace(libc::PTRACE_INTERRUPT, tid, 0);
                let mut status = 0;
                // SAFETY: waiting for a traced task.
                unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
                ptrace(libc::PTRACE_SYSCALL, tid, 0);
            }
            Ok(tracer)
        }

        /// Runs the tracee until one of its tasks stops with `target` open. Returns whether
        /// that happened within `limit`; that task is then left stopped.
        pub fn until_open(&mut self, target: &Path, limit: Duration) -> bool {
            let Ok(want) = std::fs::metadata(target).map(|m| (m.dev(), m.ino())) else {
                return false;
            };
            let has_open = |tid: i32| {
                std::fs::read_dir(format!("/proc/{tid}/fd")).is_ok_and(|rd| {
                    rd.flatten().any(|e| {
                        std::fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == want)
                    })
                })
            };
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                let mut any = false;
                for i in 0..self.tids.len() {
                    let tid = self.tids[i];
                    let mut st = 0;
                    // SAFETY: polling a traced task's state.
                    let r = unsafe { libc::waitpid(tid, &mut st, libc::__WALL | libc::WNOHANG) };
                    if r != tid {
                        continue;
                    }
                    any = true;
                    if !libc::WIFSTOPPED(st) {
                        continue; // it ended
                    }
                    let sig = libc::WSTOPSIG(st);
                    let event = st >> 16;
                    let mut inject = 0;
                    if sig == libc::SIGTRAP | 0x80 {
                        if has_open(tid) {
                            return true;
                        }
                    } else if matches!(
                        event,
                        libc::PTRACE_EVENT_CLONE
                            | libc::PTRACE_EVENT_FORK
                            | libc::PTRACE_EVENT_VFORK
                    ) {
                        let mut new: libc::c_ulong = 0;
                        ptrace(
                            libc::PTRACE_GETEVENTMSG,
                            tid,
                            &mut new as *mut libc::c_ulong as usize,
                        );
                        self.tids.push(new as i32);
                    } else if event == 0 {
                        inject = sig as usize; // a signal for the tracee: deliver it
                    }
                    ptrace(libc::PTRACE_SYSCALL, tid, inject);
                }
                if !any {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            false
        }

        /// Lets every task go on, untraced.
        pub fn detach(self) {
            for &tid in &self.tids {
                if ptrace(libc::PTRACE_DETACH, tid, 0) == 0 {
                    continue;
                }
                // Running: stop it first, then detach.
                if ptrace(libc::PTRACE_INTERRUPT, tid, 0) == 0 {
                    let mut st = 0;
                    // SAFETY: waiting for a traced task.
                    unsafe { libc::waitpid(tid, &mut st, libc::__WALL) };
                    let sig = if libc::WIFSTOPPED(st) && st >> 16 == 0 {
                        libc::WSTOPSIG(st) as usize
                    } else {
                        0
                    };
                    ptrace(libc::PTRACE_DETACH, tid, sig);
                }
            }
        }
    }
}

fn vanished_client(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut server = start_server(ctx, &dir)?;
    // Three clients that cannot be answered, one after the other, then a real one.
    send(&dir, format!("{} 5\n", FAKE_PID + 1).as_bytes())?;
    let never_opened = ReplyEnd::new(&dir, FAKE_PID + 2, false)?;
    send(&dir, format!("{} 5\n", FAKE_PID + 2).as_bytes())?;
    let full = ReplyEnd::new(&dir, FAKE_PID + 3, true)?;
    let stuffer = open(
        &full.path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    while write(&stuffer, &[b'#'; 4096]).is_ok() {}
    send(&dir, format!("{} 5\n", FAKE_PID + 3).as_bytes())?;
    let out = client(ctx, &dir, "4")?;
    if out.status() != 0 {
        fail!(
            "three clients went away without reading their reply (one had no reply FIFO, one had \
             never opened it, one had filled it up), and then a live client got no answer \
             (`fifo-client svc 4` exited with status {}: {}); {}. The server must never wait for \
             a client: open the reply FIFO with O_WRONLY|O_NONBLOCK (ENXIO: the client has \
             gone) and keep it non-blocking for the write (EAGAIN: drop the reply)",
            out.status(),
            out.stderr_str().trim(),
            server_state(&mut server)
        );
    }
    ensure!(
        out.stdout == b"0\n",
        "after three requests whose clients had gone, the first live client got {:?} instead \
         of \"0\\n\": numbers were granted to clients that never received them. Grant a block \
         only once its reply has been written",
        out.stdout_str()
    );
    drop((never_opened, full, stuffer));

    // A client that closes its FIFO after the server opened it and before it wrote.
    let mut gone = ReplyEnd::new(&dir, FAKE_PID + 4, true)?;
    let mut tracer = trace::Tracer::seize(server.pid)
        .map_err(|e| Fail(format!("the grader could not run this check: {e}")))?;
    let sent = send(&dir, format!("{} 5\n", FAKE_PID + 4).as_bytes());
    let seen = sent.is_ok() && tracer.until_open(&gone.path, PROMPT);
    gone.fd = None; // the last reader goes: the server's write now gets EPIPE
    tracer.detach();
    sent?;
    ensure!(
        seen,
        "the server never opened svc/client.{}.fifo to answer a request; {}",
        FAKE_PID + 4,
        server_state(&mut server)
    );
    let out = client(ctx, &dir, "1")?;
    // A server dying of SIGPIPE may close its FIFO (the client fails) a moment before it
    // can be waited for: when the client failed, give it that moment.
    let ending = if out.stdout == b"4\n" {
        server.try_ending()
    } else {
        server.wait_until(Instant::now() + Duration::from_secs(1))
    };
    if let Some(ending) = ending {
        fail!(
            "the server {} when it wrote a reply to a client that had just closed its FIFO. \
             Writing to a pipe that nobody reads raises SIGPIPE, which kills by default, and \
             fails with EPIPE: keep SIGPIPE ignored (Rust ignores it unless you reset it) and \
             treat EPIPE as \"this client has gone\"",
            ending.describe()
        );
    }
    ensure!(
        out.stdout == b"4\n",
        "after a client that vanished between the server's open and its write, the next client \
         got {:?} (status {}, {}) instead of \"4\\n\"",
        out.stdout_str(),
        out.status(),
        out.stderr_str().trim()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// bad_requests

fn bad_requests(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut server = start_server(ctx, &dir)?;
    let mut pid = FAKE_PID + 100;
    let mut long = format!("{} ", FAKE_PID + 199).into_bytes();
    long.extend(std::iter::repeat_n(b'9', 5000));
    long.push(b'\n');
    let answered: Vec<(&str, Vec<u8>)> = vec![
        ("a count of 0", b"{pid} 0\n".to_vec()),
        ("a count of 1000001", b"{pid} 1000001\n".to_vec()),
        ("a negative count", b"{pid} -5\n".to_vec()),
        ("a count that is not a number", b"{pid} ten\n".to_vec()),
        ("no count", b"{pid}\n".to_vec()),
        ("three fields", b"{pid} 5 6\n".to_vec()),
        ("two spaces", b"{pid}  5\n".to_vec()),
        (
            "a count of 20 digits",
            b"{pid} 99999999999999999999\n".to_vec(),
        ),
        ("a 5000-byte line", long),
    ];
    for (what, template) in answered {
        pid += 1;
        let text = String::from_utf8_lossy(&template).replace("{pid}", &pid.to_string());
        let reply_pid = text
            .split(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(pid);
        let end = ReplyEnd::new(&dir, reply_pid, true)?;
        send(&dir, text.as_bytes())?;
        let got = end.line(PROMPT);
        let shown_req = crate::run::clip(&format!("{text:?}"), 60);
        ensure!(
            got.starts_with(b"error ") && got.ends_with(b"\n"),
            "a request with {what} ({shown_req}) must get one line `error <reason>` on its reply \
             FIFO; the client read {:?}; {}",
            String::from_utf8_lossy(&got),
            server_state(&mut server)
        );
    }
    // Lines with no pid to answer: dropped, and the server goes on.
    for garbage in [
        b"hello world\n".to_vec(),
        b"\n".to_vec(),
        b"\x00\xff\xfe 3\n".to_vec(),
        b"-7 3\n".to_vec(),
        b"0 3\n".to_vec(),
        [vec![b'x'; 10_000], b"\n".to_vec()].concat(),
    ] {
        send(&dir, &garbage)?;
    }
    let end = ReplyEnd::new(&dir, FAKE_PID + 300, true)?;
    send(&dir, format!("{} 5\n", FAKE_PID + 300).as_bytes())?;
    let got = end.line(PROMPT);
    ensure!(
        got == b"0\n",
        "after rejected requests and garbage (empty lines, binary bytes, a 10000-byte line, pids \
         0 and -7), a valid request `{} 5` got {:?} instead of \"0\\n\": bad requests must be \
         dropped or answered with `error`, never granted numbers, and the server must find the \
         start of the next line again; {}",
        FAKE_PID + 300,
        String::from_utf8_lossy(&got),
        server_state(&mut server)
    );
    let start = client_start(ctx, &dir, 2, "after garbage and a request for 0..5")?;
    ensure!(
        start == 5,
        "after 0..5 the next client got {start} instead of 5"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// sigterm_removes_fifo, kill_and_restart, second_server

fn sigterm_removes_fifo(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let fifo = dir.join(SERVER_FIFO);
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = start_server(ctx, &dir)?;
        let meta = std::fs::symlink_metadata(&fifo);
        ensure!(
            meta.as_ref().is_ok_and(|m| m.file_type().is_fifo()),
            "after `ready`, svc/{SERVER_FIFO} should be a FIFO, but it is {}",
            match &meta {
                Ok(m) => format!("a file of type {:?}", m.file_type()),
                Err(_) => "missing".into(),
            }
        );
        let mode = meta.map(|m| m.mode() & 0o777).unwrap_or(0);
        ensure!(
            mode == 0o600,
            "svc/{SERVER_FIFO} has mode {mode:o} instead of 600: only its owner may read or \
             write it"
        );
        client_start(ctx, &dir, 2, "before the signal")?;
        server.signal(sig);
        let Some(ending) = server.wait_until(Instant::now() + PROMPT) else {
            fail!(
                "fifo-server did not exit within {} s of {sig}, and {}. Block SIGINT and SIGTERM \
                 and poll a signalfd together with the FIFO (or use a handler without SA_RESTART \
                 so that the blocking call fails with EINTR)",
                PROMPT.as_secs(),
                doing(server.pid)
            );
        };
        ensure!(
            ending == Ending::Exited(0),
            "after {sig}, fifo-server {}; it should remove its FIFO and exit with status 0 \
             (catch the signal rather than die of it); {}",
            ending.describe(),
            stderr_of(&server)
        );
        ensure!(
            !exists(&fifo),
            "fifo-server exited after {sig} but left svc/{SERVER_FIFO} behind. A FIFO is a \
             file: it outlives the process that made it until someone unlinks it. Remove it \
             before exiting"
        );
    }
    Ok(())
}

fn kill_and_restart(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut first = start_server(ctx, &dir)?;
    client_start(ctx, &dir, 10, "a first client")?;
    first.kill();
    ensure!(
        exists(&dir.join(SERVER_FIFO)),
        "svc/{SERVER_FIFO} vanished when its server was killed with SIGKILL: the grader cannot \
         test a stale FIFO"
    );
    let out = client(ctx, &dir, "1")?;
    ensure!(
        out.status() == 1 && out.elapsed < Duration::from_secs(2),
        "with a stale svc/{SERVER_FIFO} (its server was killed), `fifo-client svc 1` should fail \
         at once with status 1; it exited with status {} after {:.1} s. Open the server's FIFO \
         with O_WRONLY|O_NONBLOCK: ENXIO means nobody reads it",
        out.status(),
        out.elapsed.as_secs_f64()
    );
    let spec = ctx.bin("fifo-server").args([&dir]);
    let mut second = ctx.spawn(&spec)?;
    let ready = second.wait_stdout(Instant::now() + PROMPT, |o| o.starts_with(b"ready"));
    if !ready {
        let why = match second.try_ending() {
            Some(e) => format!("{}; {}", e.describe(), stderr_of(&second)),
            None => format!("did not print `ready` within 5 s; {}", doing(second.pid)),
        };
        fail!(
            "after a server was killed with SIGKILL, its FIFO svc/{SERVER_FIFO} stays behind, \
             stale: nobody reads it. A new `fifo-server svc` must reuse it, but it {why}. Tell \
             a stale FIFO from a live one: open it O_WRONLY|O_NONBLOCK; ENXIO means no reader"
        );
    }
    let start = client_start(ctx, &dir, 3, "after the restart")?;
    ensure!(
        start == 0,
        "a restarted server should start again from 0; the first client got {start}"
    );
    Ok(())
}

fn second_server(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut first = start_server(ctx, &dir)?;
    client_start(ctx, &dir, 3, "a first client")?;
    let spec = ctx.bin("fifo-server").args([&dir]);
    let mut second = ctx.spawn(&spec)?;
    let Some(ending) = second.wait_until(Instant::now() + PROMPT) else {
        fail!(
            "a second `fifo-server svc`, started while the first one serves svc, should exit \
             with status 1 at once; it was still running after {} s (it printed {:?}), and {}",
            PROMPT.as_secs(),
            String::from_utf8_lossy(&second.stdout().0),
            doing(second.pid)
        );
    };
    // The exit can be seen before the last bytes of stderr: read it to its end.
    second.wait_stderr(Instant::now() + PROMPT, |_| false);
    let err = String::from_utf8_lossy(&second.stderr().0)
        .trim()
        .to_owned();
    ensure!(
        ending == Ending::Exited(1) && err.starts_with("fifo-server: "),
        "a second `fifo-server svc`, started while the first one serves svc, should exit with \
         status 1 and say why on stderr (`fifo-server: ...`); it {} and printed {err:?}",
        ending.describe()
    );
    ensure!(
        exists(&dir.join(SERVER_FIFO)),
        "a second fifo-server that was refused removed svc/{SERVER_FIFO}, the FIFO of the live \
         server: a refused server must leave it alone"
    );
    let start = client_start(ctx, &dir, 1, "after a second server was refused")?;
    ensure!(
        start == 3,
        "after a second server was refused, the next client got {start} instead of 3 (the first \
         server's next number); {}",
        server_state(&mut first)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// no_leftovers

fn no_leftovers(ctx: &mut Ctx) -> CheckResult {
    // No server at all, and a stale FIFO: the client fails at once and cleans up.
    let empty = service_dir(ctx, "empty")?;
    let stale = service_dir(ctx, "stale")?;
    mkfifo(&stale.join(SERVER_FIFO), Mode::from_bits_truncate(0o600))?;
    for (dir, want) in [(&empty, vec![]), (&stale, vec![SERVER_FIFO.to_string()])] {
        let out = client(ctx, dir, "3")?;
        ensure!(
            out.status() == 1 && out.elapsed < Duration::from_secs(2) && !out.stderr.is_empty(),
            "`fifo-client {} 3` with no server should exit with status 1 at once, with a message \
             on stderr; it exited with status {} after {:.1} s and said {:?}",
            shown(dir),
            out.status(),
            out.elapsed.as_secs_f64(),
            out.stderr_str().trim()
        );
        ensure!(
            listing(dir) == want,
            "after `fifo-client {} 3` failed for want of a server, {}/ holds {:?}: the client \
             must remove its reply FIFO on every path, errors included",
            shown(dir),
            shown(dir),
            listing(dir)
        );
    }
    // A server that never answers: the client gives up after 5 s, or on SIGINT.
    let mute = service_dir(ctx, "mute")?;
    let _fake = FakeServer::new(&mute)?;
    let out = client(ctx, &mute, "3")?;
    let secs = out.elapsed.as_secs_f64();
    ensure!(
        out.status() == 1 && (4.0..8.0).contains(&secs),
        "with a server that never answers, `fifo-client mute 3` should give up after 5 s with \
         status 1; it exited with status {} after {secs:.1} s",
        out.status()
    );
    ensure!(
        listing(&mute) == [SERVER_FIFO],
        "after `fifo-client mute 3` timed out, mute/ holds {:?}: the client must remove its reply \
         FIFO",
        listing(&mute)
    );
    let spec = ctx
        .bin("fifo-client")
        .args([mute.as_os_str(), "3".as_ref()]);
    let mut waiting = ctx.spawn(&spec)?;
    let pid = *own_pids(waiting.pid).last().unwrap_or(&0);
    let reply = mute.join(format!("client.{pid}.fifo"));
    let outer = waiting.pid;
    ensure!(
        wait_for(PROMPT, || exists(&reply)
            && procinfo::Snapshot::take(outer)
                .is_some_and(|s| s.stat.state == 'S')),
        "`fifo-client mute 3` never created mute/client.{pid}.fifo and waited"
    );
    waiting.signal(Signal::SIGINT);
    let out = ctx.finish(
        "`fifo-client mute 3` after SIGINT",
        &mut waiting,
        Duration::from_secs(7),
    )?;
    ensure!(
        !exists(&reply),
        "`fifo-client mute 3`, interrupted by SIGINT while it waited for its reply, {} and left \
         mute/client.{pid}.fifo behind: on SIGINT and SIGTERM the client must remove its FIFO \
         too (a handler without SA_RESTART makes poll fail with EINTR)",
        out.ending.describe()
    );

    // A real server and its clients; at the end only what was there before is left.
    let dir = service_dir(ctx, "svc")?;
    std::fs::write(dir.join("notes.txt"), "kept\n")?;
    let mut server = start_server(ctx, &dir)?;
    for count in [4, 1, 9] {
        client_start(ctx, &dir, count, "a client of a fresh server")?;
    }
    let out = client(ctx, &dir, "0")?;
    ensure!(
        out.status() != 0,
        "`fifo-client svc 0` should fail (a count must be 1..=1000000); it exited with status 0"
    );
    let clients_left: Vec<String> = listing(&dir)
        .into_iter()
        .filter(|n| n.starts_with("client."))
        .collect();
    ensure!(
        clients_left.is_empty(),
        "after its clients exited, svc/ still holds {clients_left:?}: each fifo-client must \
         remove its reply FIFO before it exits"
    );
    server.signal(Signal::SIGTERM);
    let ending = server.wait_until(Instant::now() + PROMPT);
    ensure!(
        ending == Some(Ending::Exited(0)),
        "fifo-server should exit with status 0 on SIGTERM; it {}",
        ending.map_or("did not exit within 5 s".into(), |e| e.describe())
    );
    ensure!(
        listing(&dir) == ["notes.txt"] && std::fs::read(dir.join("notes.txt"))? == b"kept\n",
        "after the server stopped and every client exited, svc/ holds {:?}; only notes.txt, \
         which was there before, should be left (untouched)",
        listing(&dir)
    );
    Ok(())
}
