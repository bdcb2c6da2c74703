//! The server under load: workers SIGKILLed every second, SIGHUP, the scoreboard's total
//! against requests the grader counted itself, SIGTERM.
//!
//! Four checks that share one harness of load and kills (wrk, the stopped master, the
//! replacement clock): apart, each would repeat it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::harness::{
    FILE, PROMPT, children, finish_wrk, serves, spawn_wrk, start, status_total, www,
};
use super::procs::{resume, state, stop};
use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::fail;

/// How soon a killed worker must have a successor.
const REPLACE_WITHIN: Duration = Duration::from_millis(100);

/// Sleeps until `at` (the load runs meanwhile: the pace of the scenario, not a wait for a
/// condition).
fn pace(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// How long wrk runs while a worker is SIGKILLed every second.
const KILL_LOAD_SECS: u32 = 10;

/// The second of the load at which every worker is killed at the same moment.
const TOGETHER_AT: u32 = 5;

/// wrk for 10 s on 16 connections; a worker SIGKILLed at 1, 2, ... 9 s, and at 5 s every
/// worker at the same moment, while the master is stopped (so that one SIGCHLD stands for
/// all of them). Each must be replaced within 100 ms, and wrk may count at most one failed
/// request per killed worker (the one it was serving).
pub(super) fn kill_under_load(ctx: &mut Ctx) -> CheckResult {
    let wrk = ctx.tool("wrk", "wrk")?;
    let root = www(ctx)?;
    let mut s = start(ctx, &root, 2)?;
    serves(&s, "the load with killed workers")?;
    let url = s.url(FILE);
    let mut load = spawn_wrk(ctx, &wrk, 16, KILL_LOAD_SECS, &url)?;
    let t0 = Instant::now();
    let mut kills = 0u64;
    let mut slow = Vec::new();
    let mut times = Vec::new();
    for k in 1..KILL_LOAD_SECS {
        // A random moment in each second: a master that looks at its signals at a fixed
        // pace would otherwise see every kill at the same point of its own cycle.
        let jitter = Duration::from_millis(ctx.next_u64() % 500);
        pace(t0 + Duration::from_secs(u64::from(k)) + jitter);
        if k == TOGETHER_AT {
            let (n, took) = kill_together(&s, &mut load)?;
            kills += n;
            times.push(format!("{} ({n} at once)", took.as_millis()));
            if took > REPLACE_WITHIN {
                slow.push(format!(
                    "{} ms ({n} workers killed at once)",
                    took.as_millis()
                ));
            }
            continue;
        }
        let before = children(s.pid());
        let Some(&victim) = before.get(k as usize % before.len().max(1)) else {
            fail!(
                "the master had no worker left at {k} s into the load: a killed worker must be \
                 replaced at once (on SIGCHLD); stderr: {}",
                super::harness::stderr(&s.proc)
            );
        };
        let pid = s.pid();
        let queued = run_delay(pid);
        let killed_at = since_boot();
        kill(Pid::from_raw(victim), Signal::SIGKILL)?;
        let killed = Instant::now();
        kills += 1;
        let replaced = poll_until(killed + Duration::from_secs(2), || {
            let now = children(pid);
            now.len() >= s.workers && !now.contains(&victim)
        });
        let took = replacement_time(pid, &before, killed, killed_at, queued);
        times.push(took.as_millis().to_string());
        if !replaced {
            let _ = load.kill();
            fail!(
                "worker {victim} was SIGKILLed under load; 2 s later the master still had only \
                 {:?} as workers: a crashed worker was not replaced. The master must reap it \
                 on SIGCHLD and fork a new worker at once",
                children(pid)
            );
        }
        if took > REPLACE_WITHIN {
            slow.push(format!("{} ms", took.as_millis()));
        }
    }
    let figures = finish_wrk(ctx, &mut load, KILL_LOAD_SECS)?;
    if !slow.is_empty() {
        fail!(
            "killed workers must be replaced within {} ms (not counting the time the master \
             waited for a CPU); {} of {} took longer: {} (all of them, in ms: {}). The master \
             should wait for SIGCHLD (signalfd, sigwaitinfo, or a handler with a self-pipe), \
             not poll with sleeps",
            REPLACE_WITHIN.as_millis(),
            slow.len(),
            times.len(),
            slow.join(", "),
            times.join(", ")
        );
    }
    if figures.requests == 0 || figures.failed() > kills {
        fail!(
            "wrk -c16 -d{KILL_LOAD_SECS}s while {kills} workers were SIGKILLed, one a second: \
             {}. At most \
             {kills} requests may fail (the one each killed worker was serving); the rest \
             must be served by the other workers and the replacements",
            figures.describe()
        );
    }
    let _ = s.proc.kill();
    ctx.note(format!(
        "wrk -c16 -d{KILL_LOAD_SECS}s with {kills} workers SIGKILLed: {}; the replacements \
         took {} ms",
        figures.describe(),
        times.join(", ")
    ));
    Ok(())
}

/// Every worker SIGKILLed at the same moment while the master is stopped: their SIGCHLDs
/// make one pending signal, which a master that reaps one child per SIGCHLD answers with
/// one replacement. Once the master goes on, all of them must be replaced within 2 s; how
/// many were killed, and how long the last replacement took after the master went on.
fn kill_together(
    s: &super::harness::Server,
    load: &mut crate::sandbox::Proc,
) -> Result<(u64, Duration), Fail> {
    let pid = s.pid();
    let before = children(pid);
    stop(pid)?;
    for &w in &before {
        let _ = kill(Pid::from_raw(w), Signal::SIGKILL);
    }
    // Dead, and not reaped: the master is stopped.
    let died = poll_until(Instant::now() + PROMPT, || {
        before.iter().all(|&w| matches!(state(w), 'Z' | '-'))
    });
    let queued = run_delay(pid);
    let went_on_at = since_boot();
    resume(pid);
    let went_on = Instant::now();
    if !died {
        fail!(
            "the grader's SIGKILL of workers {before:?} did not end them (tell your course staff)"
        );
    }
    let replaced = poll_until(went_on + Duration::from_secs(2), || {
        let now = children(pid);
        now.len() >= s.workers && !now.iter().any(|p| before.contains(p))
    });
    if !replaced {
        let _ = load.kill();
        let zombies = super::harness::zombies(pid);
        let now = children(pid);
        if zombies.is_empty() && now.len() < s.workers {
            fail!(
                "workers {before:?} were SIGKILLed at the same moment under load (the master, \
                 stopped meanwhile, got one SIGCHLD for all of them); 2 s after it went on it \
                 had reaped them all (no zombie is left) but had only the workers {now:?}, not \
                 {}. For each worker reaped that was not asked to stop, fork one into a free \
                 scoreboard slot, and release a worker's scoreboard slot when you reap it: a \
                 slot never released leaves no room after a few replacements",
                s.workers
            );
        }
        fail!(
            "workers {before:?} were SIGKILLed at the same moment under load (the master, \
             stopped meanwhile, got one SIGCHLD for all of them); 2 s after it went on it had \
             the workers {now:?}{}. One SIGCHLD can stand for several dead children: reap with \
             waitpid(-1, WNOHANG) until it says none is left, and fork a worker for each",
            if zombies.is_empty() {
                String::new()
            } else {
                format!(" and had not reaped {zombies:?}, which are zombies")
            }
        );
    }
    let took = replacement_time(pid, &before, went_on, went_on_at, queued);
    Ok((before.len() as u64, took))
}

/// How long the master took to replace its workers `before` since `from` (`from_boot` on
/// `CLOCK_BOOTTIME`): when the grader saw the new workers, or (the grader may be slow to
/// look on a busy machine) when the kernel says the last of them started, whichever is
/// sooner, less the time the master spent waiting for a CPU meanwhile (`queued`: its run
/// delay at `from`), which other work on the machine decides, not the master.
fn replacement_time(
    pid: i32,
    before: &[i32],
    from: Instant,
    from_boot: Option<Duration>,
    queued: Option<Duration>,
) -> Duration {
    let seen = from.elapsed();
    let started = children(pid)
        .into_iter()
        .filter(|p| !before.contains(p))
        .filter_map(started_since_boot)
        .max();
    let took = match (started, from_boot) {
        (Some(at), Some(k)) => seen.min(at.saturating_sub(k)),
        _ => seen,
    };
    let starved = match (queued, run_delay(pid)) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    took.saturating_sub(starved)
}

/// How long `pid` has waited, runnable, for a CPU since it started (the second field of
/// /proc/PID/schedstat, in nanoseconds).
fn run_delay(pid: i32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Now on `CLOCK_BOOTTIME`, the clock of the start times in /proc.
fn since_boot() -> Option<Duration> {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .ok()
        .map(Duration::from)
}

/// When process `pid` started, on `CLOCK_BOOTTIME`, rounded up to the next clock tick
/// (/proc counts whole ticks, 10 ms, so this errs late: never in the student's favour).
fn started_since_boot(pid: i32) -> Option<Duration> {
    // SAFETY: sysconf reads a constant of the system.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let ticks = testkit::procfs::stat(pid)?.starttime + 1;
    Some(Duration::from_secs(ticks / hz) + Duration::from_nanos(ticks % hz * 1_000_000_000 / hz))
}

/// SIGHUP while every worker holds a request (see [`super::stops::sighup_while_held`]); then,
/// on another server, wrk for 2 s on 16 connections with SIGHUP at 0.6 s and 1.2 s: every
/// worker is replaced each time and wrk counts no failed request.
pub(super) fn sighup_under_load(ctx: &mut Ctx) -> CheckResult {
    let wrk = ctx.tool("wrk", "wrk")?;
    let root = www(ctx)?;
    super::stops::sighup_while_held(ctx, &root)?;
    let s = start(ctx, &root, 2)?;
    serves(&s, "the load with SIGHUPs")?;
    let url = s.url(FILE);
    let mut load = spawn_wrk(ctx, &wrk, 16, 2, &url)?;
    let t0 = Instant::now();
    for k in 1..=2u64 {
        pace(t0 + Duration::from_millis(600 * k));
        let before = children(s.pid());
        kill(Pid::from_raw(s.pid()), Signal::SIGHUP)?;
        let pid = s.pid();
        let fresh = poll_until(Instant::now() + Duration::from_millis(500), || {
            children(pid).iter().filter(|p| !before.contains(p)).count() >= s.workers
        });
        if !fresh {
            let _ = load.kill();
            fail!(
                "after SIGHUP the master should fork {} new workers at once (the old ones \
                 finish their request and exit); its workers were {before:?} before and \
                 {:?} 0.5 s after",
                s.workers,
                children(pid)
            );
        }
    }
    let figures = finish_wrk(ctx, &mut load, 2)?;
    if figures.requests == 0 || figures.failed() > 0 {
        fail!(
            "wrk -c16 -d2s with SIGHUP at 0.6 s and 1.2 s: {}. SIGHUP must drop nothing: send the \
             old workers SIGTERM (not SIGKILL); a worker finishes the response it is writing, \
             answers a request already sent with `Connection: close`, and only then exits",
            figures.describe()
        );
    }
    ctx.note(format!(
        "wrk -c16 -d2s with two SIGHUPs: {}",
        figures.describe()
    ));
    Ok(())
}

/// The grader's client: `n` GETs of `/notes.txt` sent at once on one connection
/// (pipelined, so the worker serving it answers them back to back), then every response
/// read; how many 200 responses came. A server may end a kept-alive connection with a
/// response that says `Connection: close` (its turn is over while others wait): the client
/// then connects again and sends the requests not answered yet, as HTTP clients do.
fn client(port: u16, n: usize) -> Result<u64, String> {
    let mut answered = 0usize;
    let mut connections = 0usize;
    while answered < n {
        connections += 1;
        if connections > n {
            return Err(format!(
                "{connections} connections for {n} requests: the server closes connections \
                 without answering"
            ));
        }
        answered += one_connection(port, n - answered, answered)?;
    }
    Ok(answered as u64)
}

/// One connection of [`client`]: sends `n` pipelined GETs and reads responses until all
/// `n` came or one said `Connection: close`; how many came. `before` is what earlier
/// connections had answered, for messages.
fn one_connection(port: u16, n: usize, before: usize) -> Result<usize, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let one = "GET /notes.txt HTTP/1.1\r\nHost: grader\r\n\r\n";
    let mut s2 = s.try_clone().map_err(|e| e.to_string())?;
    // A writer of its own, so that neither side waits for the other's buffer to drain. It
    // fails harmlessly once the server has closed the connection.
    let writer = std::thread::spawn(move || s2.write_all(one.repeat(n).as_bytes()));
    let mut got: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut answered = 0usize;
    let mut closing = false;
    while answered < n && !closing {
        // Take every whole response at the front of `got`.
        while let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..p]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| format!("a response without Content-Length: {head:?}"))?;
            if got.len() < p + 4 + len {
                break;
            }
            if !head.starts_with("http/1.1 200") {
                return Err(format!(
                    "pipelined request {} of {}, a well-formed GET /notes.txt like all of them, \
                     was answered {:?}{}",
                    before + answered + 1,
                    before + n,
                    head.lines().next().unwrap_or(""),
                    if head.starts_with("http/1.1 400") {
                        ": the server parsed it from the middle of a request. Pipelined \
                         requests arrive together and may be cut between two reads: keep the \
                         bytes of a head that is not whole yet and complete them with the next \
                         read, and start the next request exactly where the last one ended"
                    } else {
                        ""
                    }
                ));
            }
            got.drain(..p + 4 + len);
            answered += 1;
            if head
                .lines()
                .any(|l| l.starts_with("connection:") && l.contains("close"))
            {
                closing = true;
                break;
            }
        }
        if answered == n || closing {
            break;
        }
        let k = match s.read(&mut buf) {
            Ok(k) => k,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "the server answered {} of {} pipelined requests on one connection, then \
                     nothing for 20 s{}",
                    before + answered,
                    before + n,
                    if super::procs::all_read(&s) {
                        ", though it had read every request the client sent: it loses \
                         requests, those cut between two reads or those after the first in \
                         one read (pipelined requests arrive together: parse them one after \
                         another from what was read, and keep the rest of a head that is not \
                         whole yet)"
                    } else {
                        ", and had not read all the client sent: a worker must go on reading \
                         a kept-alive connection until its client closes it"
                    }
                ));
            }
            Err(e) => return Err(e.to_string()),
        };
        if k == 0 {
            return Err(format!(
                "the server closed a kept-alive connection after {} of {} pipelined \
                 requests without saying `Connection: close` in the last response",
                before + answered,
                before + n
            ));
        }
        got.extend_from_slice(&buf[..k]);
    }
    // Wakes the writer if it is still blocked on a connection nobody reads any more.
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    Ok(answered)
}

/// 4 workers; 16 connections of the grader's own client send 1000 pipelined requests
/// each, so that every worker answers back to back and they add to the total at the same
/// moments; then the scoreboard's `total requests` must be exactly what was answered.
/// Then wrk for 2 s on 16 connections: the total must grow by what wrk counted, plus at most
/// the one request per connection wrk may have left unread when it stopped.
pub(super) fn scoreboard_totals(ctx: &mut Ctx) -> CheckResult {
    const CONNS: usize = 16;
    const EACH: usize = 1000;
    let root = www(ctx)?;
    let s = start(ctx, &root, 4)?;
    serves(&s, "the count under load")?;
    let start_total = status_total(s.port)?;
    let port = s.port;
    let threads: Vec<_> = (0..CONNS)
        .map(|_| std::thread::spawn(move || client(port, EACH)))
        .collect();
    let mut made = 0u64;
    for t in threads {
        match t
            .join()
            .map_err(|_| Fail("a client thread failed".into()))?
        {
            Ok(n) => made += n,
            Err(e) => fail!(
                "{CONNS} connections each sending {EACH} pipelined, kept-alive GETs: one failed: \
                 {e}"
            ),
        }
    }
    let (total, pages) = settled_total(s.port, start_total + made)?;
    let expected = start_total + made + pages;
    if total != expected {
        fail!(
            "/server-status says `total requests: {total}`, but the grader made {expected} \
             requests before it ({made} by {CONNS} connections at once, pipelined, {} status \
             pages): {} counts were {}. Every worker adds to the total at once: a load and a \
             store of `total + 1` loses the additions other workers made in between; use an \
             atomic add (fetch_add) on the shared mapping, and count every response once, \
             right after it is sent",
            pages,
            expected.abs_diff(total),
            if total < expected { "lost" } else { "too many" }
        );
    }
    ctx.note(format!(
        "scoreboard total {total} = requests made {expected}"
    ));
    totals_under_wrk(ctx, &s, total)
}

/// Reads the scoreboard's total until the k-th reading is at least `floor + k` (the status
/// page read before it, this function's or the caller's last, is counted once sent), for at
/// most a second: a worker counts a response right after sending it, so a client may read
/// the last responses a moment before they are counted. Lost counts never come back. The
/// last total read, and k.
fn settled_total(port: u16, floor: u64) -> Result<(u64, u64), Fail> {
    let settle = Instant::now() + Duration::from_secs(1);
    let mut k = 0;
    loop {
        let total = status_total(port)?;
        k += 1;
        if total >= floor + k || Instant::now() > settle {
            return Ok((total, k));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The wrk half of [`scoreboard_totals`]: `before` is the total read last.
fn totals_under_wrk(ctx: &mut Ctx, s: &super::harness::Server, before: u64) -> CheckResult {
    const CONNS: u32 = 16;
    const SECS: u32 = 2;
    let wrk = ctx.tool("wrk", "wrk")?;
    let mut load = spawn_wrk(ctx, &wrk, CONNS, SECS, &s.url(FILE))?;
    let figures = finish_wrk(ctx, &mut load, SECS)?;
    if figures.requests == 0 || figures.failed() > 0 {
        fail!(
            "wrk -c{CONNS} -d{SECS}s against 4 workers: {}. Every request must be answered \
             200",
            figures.describe()
        );
    }
    // wrk counts the responses it read; when it stops, each connection may have one
    // request answered (and counted by the server) but not read.
    let (total, pages) = settled_total(s.port, before + figures.requests)?;
    let low = before + figures.requests + pages;
    let high = low + u64::from(CONNS);
    if !(low..=high).contains(&total) {
        fail!(
            "after wrk -c{CONNS} -d{SECS}s counted {} responses, /server-status says `total \
             requests: {total}`; it said {before} before, so it must be between {low} and \
             {high} (wrk's count, {pages} status pages, and at most one unread response per \
             connection when wrk stopped): {} counts were {}. Count every response once, \
             right after it is sent, with an atomic add (fetch_add) on the shared mapping",
            figures.requests,
            if total < low {
                low - total
            } else {
                total - high
            },
            if total < low { "lost" } else { "too many" }
        );
    }
    ctx.note(format!(
        "after wrk counted {} responses the total was {total} (allowed {low}..={high})",
        figures.requests
    ));
    Ok(())
}
