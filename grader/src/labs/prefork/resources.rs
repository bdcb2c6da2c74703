//! What the server holds: per connection, measured with real clients that come and go in
//! every way a client can (a whole response read, a response cut off, half a request, no
//! request at all), the workers' descriptors and memory and the master's children; and a
//! server that cannot start (a fork refused) leaves no process behind.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::harness::{PROMPT, children, serves, start, stderr, www};
use super::procs::{HALF, dead, resume, stop};
use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::fail;

/// Rounds of the six kinds of client.
const ROUNDS: usize = 50;

/// The big file a client leaves in the middle of: larger than any socket buffer, so that
/// the worker is still sending when the client goes.
const HUGE: u64 = 16 << 20;

/// One client of each kind, one after another, each on its own connection.
fn clients(port: u16) -> Result<(), Fail> {
    let connect = || -> Result<TcpStream, Fail> {
        let c = TcpStream::connect(("127.0.0.1", port))?;
        c.set_read_timeout(Some(PROMPT))?;
        Ok(c)
    };
    let ask = |request: &[u8], want: &[u8]| -> Result<(), Fail> {
        let mut c = connect()?;
        c.write_all(request)?;
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        // Until the end of the head at least, and the body's last bytes when one is wanted.
        while !got.windows(want.len()).any(|w| w == want) {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => fail!(
                    "{:?} got {:?} (wanted {:?}): every client must be answered",
                    String::from_utf8_lossy(request.split(|&b| b == b'\r').next().unwrap_or(b"")),
                    crate::run::clip(&String::from_utf8_lossy(&got), 200),
                    String::from_utf8_lossy(want)
                ),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    };
    // A whole response, the server closes.
    ask(
        b"GET /4k.bin HTTP/1.1\r\nHost: grader\r\nConnection: close\r\n\r\n",
        b"Connection: close\r\n\r\n",
    )?;
    // A 404 and a HEAD on kept-alive connections that the client then closes.
    ask(
        b"GET /missing.html HTTP/1.1\r\nHost: grader\r\n\r\n",
        b"404 Not Found\n",
    )?;
    ask(
        b"HEAD /4k.bin HTTP/1.1\r\nHost: grader\r\n\r\n",
        b"\r\n\r\n",
    )?;
    // A client that reads the head of a big file and leaves: the worker's send fails.
    ask(
        b"GET /huge.bin HTTP/1.1\r\nHost: grader\r\n\r\n",
        b"\r\n\r\n",
    )?;
    // Half a request, then gone.
    let mut c = connect()?;
    c.write_all(HALF)?;
    drop(c);
    // Nothing at all.
    drop(connect()?);
    Ok(())
}

/// The children of `master` that keep a CPU busy (over 100 ms of CPU time in 300 ms):
/// looping, not waiting for a client.
fn spinning(master: i32) -> Vec<i32> {
    let cpu = |pid: i32| testkit::procfs::stat(pid).map_or(0, |s| s.utime + s.stime);
    let workers = children(master);
    let before: Vec<u64> = workers.iter().map(|&w| cpu(w)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sysconf reads a constant of the system.
    let tick = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    workers
        .iter()
        .zip(before)
        .filter(|&(&w, b)| cpu(w).saturating_sub(b) * 1000 > 100 * tick)
        .map(|(&w, _)| w)
        .collect()
}

/// A client left unanswered: when workers are seen spinning, says so and why it happens.
fn unanswered(e: Fail, master: i32) -> Fail {
    let busy = spinning(master);
    if busy.is_empty() {
        return e;
    }
    Fail(format!(
        "{}. Meanwhile worker(s) {busy:?} kept a CPU busy without answering: most likely a \
         worker whose client left in the middle of a response (the 16 MiB file) keeps retrying \
         its failed send. A send or sendfile that fails with EPIPE or ECONNRESET ends that \
         connection: return the error; try again only on EINTR (and wait for POLLOUT on EAGAIN)",
        e.0
    ))
}

/// What a worker holds, to compare.
struct Held {
    fds: BTreeMap<String, usize>,
    rss_kib: u64,
}

/// The descriptors of `pid`, grouped by kind (a file by its path, sockets together), and
/// its resident memory.
fn held(pid: i32) -> Held {
    let mut fds = BTreeMap::new();
    for f in testkit::procfs::fds(pid) {
        *fds.entry(f.kind.class().to_string()).or_default() += 1;
    }
    let rss_kib = testkit::procfs::status_kb(pid, "VmRSS").unwrap_or(0);
    Held { fds, rss_kib }
}

/// Whether no worker of `workers` holds a connection (a socket besides the listening one,
/// which the master holds too).
fn idle(master: i32, workers: &[i32]) -> bool {
    let sockets = |pid: i32| {
        testkit::procfs::fds(pid)
            .iter()
            .filter(|f| matches!(f.kind, testkit::procfs::FdKind::Socket(_)))
            .count()
    };
    let base = sockets(master);
    workers.iter().all(|&w| sockets(w) <= base)
}

/// 300 clients come and go (50 rounds of: a whole response, a 404 and a HEAD on kept-alive
/// connections the client closes, a 16 MiB response the client leaves after its head, half
/// a request, no request): afterwards each worker holds no more descriptors (fewer than one
/// per 30 clients) and no more than 8 MiB more memory than before, and the master has the
/// same workers.
pub(super) fn connections_come_and_go(ctx: &mut Ctx) -> CheckResult {
    let root = www(ctx)?;
    let huge = ctx.peer_file("www/huge.bin", b"")?;
    crate::check::with_fs_identity(crate::check::peer_identity(), || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&huge)
            .and_then(|f| f.set_len(HUGE))
    })?;
    let s = start(ctx, &root, 2)?;
    serves(&s, "the clients that come and go")?;
    let master = s.pid();
    let workers = children(master);
    // Whatever a worker makes once (buffers, a cache, memory its allocator keeps) exists
    // before the first count: each worker serves two rounds of every kind of client alone,
    // the others stopped so that it accepts them all.
    for &w in &workers {
        let others: Vec<i32> = workers.iter().copied().filter(|&o| o != w).collect();
        for &o in &others {
            stop(o)?;
        }
        let warmed = clients(s.port)
            .and_then(|()| clients(s.port))
            .map_err(|e| unanswered(e, master));
        for &o in &others {
            resume(o);
        }
        warmed?;
    }
    let settle = |what: &str| -> Result<(), Fail> {
        if !poll_until(Instant::now() + PROMPT, || idle(master, &workers)) {
            fail!(
                "{what}, every client had closed its connection, but {} s later a worker \
                 still held one: a worker closes a connection once its client has left \
                 (a read of 0 bytes, or an error)",
                PROMPT.as_secs()
            );
        }
        Ok(())
    };
    settle("after the first clients")?;
    let before: Vec<Held> = workers.iter().map(|&w| held(w)).collect();
    for _ in 0..ROUNDS {
        clients(s.port).map_err(|e| unanswered(e, master))?;
    }
    let n = ROUNDS * 6;
    let now = children(master);
    if now != workers {
        let died: Vec<i32> = workers.iter().copied().filter(|&w| dead(w)).collect();
        fail!(
            "while {n} clients came and went, the workers {died:?} died (the master's workers \
             were {workers:?}, now {now:?}; its stderr: {}): a client that leaves, even in the \
             middle of a response, costs its connection only (a failed send is an error to \
             handle, and SIGPIPE must not kill the worker: MSG_NOSIGNAL or SIGPIPE ignored)",
            stderr(&s.proc)
        );
    }
    settle(&format!("after {n} clients came and went"))?;
    let threshold = n / 30;
    let (mut most_fds, mut most_kib) = (0usize, 0u64);
    for (k, &w) in workers.iter().enumerate() {
        let after = held(w);
        let grown: Vec<(usize, &String)> = after
            .fds
            .iter()
            .filter_map(|(kind, &c)| {
                let was = before[k].fds.get(kind).copied().unwrap_or(0);
                (c > was).then(|| (c - was, kind))
            })
            .collect();
        let total: usize = grown.iter().map(|(c, _)| c).sum();
        if total >= threshold {
            let mut kinds: Vec<String> = grown.iter().map(|(c, k)| format!("{c} x {k}")).collect();
            kinds.sort();
            fail!(
                "Close every file and socket a connection opens on every path, the error \
                 paths too: a client that leaves in the middle of a response makes the send \
                 fail, and what was opened for it must still be closed. After {n} clients \
                 came and went (whole responses, 404s, HEADs, a big file left after its head, \
                 half requests, no request), worker {w} holds {total} more descriptors than \
                 before: {}",
                kinds.join(", ")
            );
        }
        let grew = after.rss_kib.saturating_sub(before[k].rss_kib);
        (most_fds, most_kib) = (most_fds.max(total), most_kib.max(grew));
        if grew > 8 << 10 {
            fail!(
                "Free what a connection allocates when it ends. After {n} clients came and \
                 went, worker {w} uses {} MiB more memory (VmRSS) than before",
                grew >> 10
            );
        }
    }
    ctx.note(format!(
        "{n} clients came and went: every worker's descriptors and memory as before (the \
         most any worker grew: {most_fds} descriptors, {most_kib} KiB)"
    ));
    Ok(())
}

/// The processes of the grading's student allowed in [`cannot_start`]: the master and 3
/// workers, so that the 4th fork fails.
const NPROC: u64 = 4;

/// `--workers 8` where at most 4 processes may run (RLIMIT_NPROC): the 4th fork fails, and
/// prefork-httpd must exit 1 with one line `prefork-httpd: <why>` on stderr, leaving no
/// worker behind.
pub(super) fn cannot_start(ctx: &mut Ctx) -> CheckResult {
    // The limit counts every process of the user: only the grading's own identity for the
    // student's programs (root's grader) has none but these.
    ctx.require_root()?;
    if ctx.student.is_none() {
        // `cargo grade` runs the programs as whoever runs it: root's processes are never
        // limited, and anyone else's count every process of their session.
        return Err(ctx.not_gradable_here(
            "RLIMIT_NPROC counts every process of the user a program runs as, and binds no \
             root process: only the course's grader, which runs your programs as an identity of \
             their own, can make the 4th fork fail (graded after you submit)",
        ));
    }
    let root = www(ctx)?;
    let mut spec = ctx.bin("prefork-httpd").args([
        "--port".as_ref(),
        "0".as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
        "--workers".as_ref(),
        "8".as_ref(),
    ]);
    spec.rlimits.nproc = Some(NPROC);
    let mut p = ctx.spawn(&spec)?;
    let how = format!(
        "`prefork-httpd --workers 8` where at most {NPROC} processes may run (RLIMIT_NPROC), so \
         that its 4th fork fails"
    );
    let Some(ending) = p.wait_until(Instant::now() + PROMPT) else {
        let workers = children(p.pid);
        fail!(
            "{how}: it must exit 1 (it cannot start), but {} s later it still ran with the \
             workers {workers:?}: when a fork fails at start, stop the workers already forked, \
             wait for them, and exit 1",
            PROMPT.as_secs()
        );
    };
    // Whatever the master leaves behind is now a child of this check (a subreaper).
    let me = std::process::id() as i32;
    let orphans = || -> Vec<i32> {
        testkit::procfs::children(me)
            .into_iter()
            .filter(|c| c.state != 'Z' && c.comm.starts_with("prefork"))
            .map(|c| c.pid)
            .collect()
    };
    // Workers killed by the master may take a moment to be gone.
    poll_until(Instant::now() + Duration::from_millis(500), || {
        orphans().is_empty()
    });
    let left = orphans();
    // What the master wrote may still be in the pipe (workers left behind keep it open).
    p.wait_stderr(Instant::now() + Duration::from_secs(1), |_| false);
    let err = String::from_utf8_lossy(&p.stderr().0).trim_end().to_owned();
    if ending.bash_status() != 1 {
        fail!(
            "{how}: it must exit 1 (it cannot start), but it {}; its stderr: {err:?}",
            ending.describe()
        );
    }
    let lines: Vec<&str> = err.lines().collect();
    if lines.len() != 1 || !lines[0].starts_with("prefork-httpd: ") {
        fail!(
            "{how}: it exited 1, but a runtime error is one line `prefork-httpd: <why>` on \
             stderr, and it wrote {err:?}"
        );
    }
    if !left.is_empty() {
        fail!(
            "{how}: it exited 1 ({err:?}) but left the workers {left:?} running, orphans that \
             go on serving: a server that cannot start leaves nothing behind: kill the workers \
             already forked and wait for them before exiting 1"
        );
    }
    Ok(())
}
