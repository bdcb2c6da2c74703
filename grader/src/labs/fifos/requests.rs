//! The checks of the protocol as clients see it: `many_clients` (one write per request,
//! then 32 clients at once) and `shell_client` (a client written in plain shell).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::Mode;
use nix::unistd::{read, write};

use super::PROMPT;
use super::ends::FakeServer;
use super::harness::{client_start, exists, service_dir, start_server, wait_for};
use super::state::{doing, own_pids, server_state, stderr_of};
use crate::check::{CheckResult, Ctx, Fail, Output};
use crate::{ensure, fail};
use testkit::procfs;

// ---------------------------------------------------------------------------------------
// many_clients: one write per request, then 32 clients at once

/// The client writes its whole request with one write, waits when the FIFO is full, and
/// speaks the protocol: the grader plays the server.
pub(super) fn one_write_probe(ctx: &mut Ctx) -> CheckResult {
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
        procfs::Process::read(p.pid).is_some_and(|s| {
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

pub(super) fn many_clients(ctx: &mut Ctx) -> CheckResult {
    one_write_probe(ctx)?;

    const CLIENTS: usize = 32;
    const REQUESTS: usize = 25;
    let dir = service_dir(ctx, "svc")?;
    let mut server = start_server(ctx, &dir)?;
    let fds_at_start = procfs::Process::read(server.pid).map(|s| s.fds.len());
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
    // Every client has exited: the server holds what it held when it started, whatever
    // it opened to answer them.
    if let (Some(before), Some(now)) = (fds_at_start, procfs::Process::read(server.pid)) {
        let extra = now.fds.len().saturating_sub(before);
        ensure!(
            extra <= 2,
            "close each client's reply FIFO once its reply is written (drop the fd): after \
             {} answered requests from clients that have all exited, fifo-server holds {extra} \
             more descriptors than when it started: {}. A server that keeps one per client \
             runs out of descriptors (EMFILE) and stops answering",
            CLIENTS * REQUESTS,
            grouped_fds(&now.fds)
        );
    }
    Ok(())
}

/// A process's descriptors, equal kinds grouped, the most frequent first: a client's FIFO
/// is `DIR/client.N.fifo` whatever its pid. At most 5 kinds.
fn grouped_fds(fds: &[procfs::Fd]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for fd in fds {
        let (target, how) = match &fd.kind {
            procfs::FdKind::Fifo { path, read, write } => (
                path.clone(),
                match (read, write) {
                    (true, true) => " [read and write]",
                    (false, true) => " [write end]",
                    _ => " [read end]",
                },
            ),
            other => (other.to_string(), ""),
        };
        let mut kind: String =
            target
                .rsplit('/')
                .next()
                .unwrap_or(&target)
                .chars()
                .fold(String::new(), |mut k, c| {
                    if !c.is_ascii_digit() {
                        k.push(c);
                    } else if !k.ends_with('N') {
                        k.push('N');
                    }
                    k
                });
        kind.push_str(how);
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    kinds.sort_by_key(|kind| std::cmp::Reverse(kind.1));
    kinds
        .iter()
        .take(5)
        .map(|(k, n)| format!("{n} x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
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

pub(super) fn shell_client(ctx: &mut Ctx) -> CheckResult {
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
