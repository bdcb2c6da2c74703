//! The checks about the other process: one side killed with SIGKILL mid-stream, and both
//! sides idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::sandbox::{Ending, Proc};
use crate::{ensure, fail};

use super::shm::{
    ensure_gone, exists, first_line, made, ring_name, start_recv, start_send, wait_asleep,
    waiting_in,
};
use super::stream::{Pattern, feed, make_fifo, sink};

/// SIGKILL of ring-send, then of ring-recv, in the middle of a stream: the other one exits
/// with status 1 and a message within 1 s, and nothing is left in /dev/shm.
pub(super) fn peer_killed(ctx: &mut Ctx) -> CheckResult {
    let pattern = Pattern::new(ctx);
    for victim in ["ring-send", "ring-recv"] {
        let name = ring_name(ctx, if victim == "ring-send" { "ks" } else { "kr" });
        let _remove = super::shm::RemoveOnDrop(name.clone());
        let fifo = make_fifo(ctx, "kill")?;
        let progress = Arc::new(AtomicU64::new(0));
        let _drain = sink(fifo.clone(), None, progress.clone());
        let mut recv = start_recv(ctx, &name, &fifo.to_string_lossy())?;
        if !poll_until(Instant::now() + Duration::from_secs(5), || made(&name)) {
            fail!("`ring-recv {name}` started alone did not create /dev/shm{name} within 5 s");
        }
        let mut send = start_send(ctx, &name, &[])?;
        let seed = ctx.next_u64();
        // Far more than will pass before the kill: the stream is still flowing then.
        feed(&mut send, pattern.clone(), 1 << 40, 64 << 10, seed, None);
        let flowing = poll_until(Instant::now() + Duration::from_secs(10), || {
            progress.load(Ordering::Relaxed) >= 4 << 20
        });
        ensure!(
            flowing,
            "`ring-send {name} | ring-recv {name}` moved only {} bytes in 10 s",
            progress.load(Ordering::Relaxed)
        );
        let (dead, survivor, survivor_name) = if victim == "ring-send" {
            (&mut send, &mut recv, "ring-recv")
        } else {
            (&mut recv, &mut send, "ring-send")
        };
        dead.signal(Signal::SIGKILL);
        let killed_at = Instant::now();
        let ending = survivor.wait_until(killed_at + Duration::from_secs(1));
        let Some(ending) = ending else {
            let state = waiting_in(survivor.pid);
            let diagnosis = crate::sandbox::diagnose_tree();
            survivor.kill();
            let _ = std::fs::remove_file(super::shm::shm_file(&name));
            fail!(
                "{victim} was killed with SIGKILL in the middle of a stream; 1 s later \
                 {survivor_name} (pid {}) was still running: it {state}. A peer that dies \
                 without closing never rings the futex: wait with a timeout (100 ms) and at \
                 each timeout check the peer's pid from the header (pidfd_open + poll, or \
                 kill(pid, 0)); a dead peer that did not close is an error: exit 1. What its \
                 processes were waiting for:\n{}",
                survivor.pid,
                diagnosis.trim_end()
            );
        };
        let took = killed_at.elapsed();
        let out = ctx.finish(survivor_name, survivor, Duration::from_secs(1))?;
        let said = first_line(&out.stderr);
        ensure!(
            ending == Ending::Exited(1),
            "{victim} was killed with SIGKILL mid-stream; {survivor_name} then {} after {:.0} ms \
             (expected exit status 1 with a line on stderr); it said {said}",
            ending.describe(),
            took.as_secs_f64() * 1000.0
        );
        ensure!(
            out.stderr
                .starts_with(format!("{survivor_name}: ").as_bytes()),
            "{victim} was killed with SIGKILL; {survivor_name} exited 1 but its stderr does not \
             start with `{survivor_name}: `: it said {said}"
        );
        ensure_gone(
            &[&name],
            &format!("after {victim} was killed and {survivor_name} exited"),
        )?;
    }
    killed_while_sender_waits_for_input(ctx)?;
    killed_while_input_trickles(ctx)?;
    receiver_failed_while_sender_waits_for_input(ctx, &pattern)?;
    output_closed_while_sender_waits_for_room(ctx, &pattern)
}

/// ring-recv's stdout is /dev/full: the first bytes it copies fail to be written (ENOSPC),
/// so it exits 1 and its half closes, while ring-send, its input still open but empty,
/// waits for its stdin. ring-send must notice the closed receiver within 1 s of its exit,
/// as it notices a dead one.
fn receiver_failed_while_sender_waits_for_input(ctx: &mut Ctx, pattern: &Pattern) -> CheckResult {
    let name = ring_name(ctx, "kfull");
    let _remove = super::shm::RemoveOnDrop(name.clone());
    let mut recv = start_recv(ctx, &name, "/dev/full")?;
    let mut send: Option<crate::sandbox::Proc> = None;
    let (_keep_open, hold) = std::sync::mpsc::channel::<()>();
    let result = (|| {
        if !poll_until(Instant::now() + Duration::from_secs(5), || made(&name)) {
            fail!("`ring-recv {name}` started alone did not create /dev/shm{name} within 5 s");
        }
        let s = send.insert(start_send(ctx, &name, &[])?);
        let seed = ctx.next_u64();
        // A few bytes, then the input stays open and empty: ring-send waits for its stdin.
        feed(s, pattern.clone(), 64, 64, seed, Some(hold));
        let Some(recv_end) = recv.wait_until(Instant::now() + Duration::from_secs(5)) else {
            fail!(
                "`ring-recv {name} > /dev/full` got bytes to copy but was still running 5 s \
                 later: it {}. A write to stdout that fails (here ENOSPC) is an error: one \
                 line, exit 1",
                waiting_in(recv.pid)
            );
        };
        let ended_at = Instant::now();
        let recv_out = ctx.finish("ring-recv", &mut recv, Duration::from_secs(1))?;
        ensure!(
            recv_end == Ending::Exited(1) && recv_out.stderr.starts_with(b"ring-recv: "),
            "`ring-recv {name} > /dev/full` could not write its stdout; it then {} (expected \
             exit status 1 and one line `ring-recv: ...`); it said {}.{}",
            recv_end.describe(),
            first_line(&recv_out.stderr),
            panic_note(recv_end, &String::from_utf8_lossy(&recv_out.stderr))
        );
        let Some(send_end) = s.wait_until(ended_at + Duration::from_secs(1)) else {
            fail!(
                "ring-recv exited 1 (its stdout failed) and its half was closed while ring-send \
                 waited for more input (its stdin still open); 1 s later ring-send (pid {}) was \
                 still running: it {}. At each timeout of the poll on stdin, check the peer: a \
                 receiver that closed its half is gone as surely as one that died (PeerClosed): \
                 one line, exit 1",
                s.pid,
                waiting_in(s.pid)
            );
        };
        let send_out = ctx.finish("ring-send", s, Duration::from_secs(1))?;
        ensure!(
            send_end == Ending::Exited(1) && send_out.stderr.starts_with(b"ring-send: "),
            "ring-recv exited 1 while ring-send waited for its stdin; ring-send then {} \
             (expected exit status 1 and one line `ring-send: ...`: the receiver closed); it \
             said {}",
            send_end.describe(),
            first_line(&send_out.stderr)
        );
        ensure_gone(&[&name], "after ring-recv's stdout failed and both exited")
    })();
    recv.kill();
    if let Some(mut s) = send {
        s.kill();
    }
    result
}

/// Waits until `pid` is asleep in a kernel function `wanted` accepts; what it last slept in.
fn wait_in(pid: i32, limit: Duration, wanted: impl Fn(&str) -> bool) -> Result<(), String> {
    let mut last = String::new();
    let ok = poll_until(Instant::now() + limit, || {
        last = super::shm::wchan(pid);
        wanted(&last)
    });
    if ok { Ok(()) } else { Err(last) }
}

/// What a program that ended with status 101 or said `panicked` is told, or nothing.
fn panic_note(end: Ending, said: &str) -> &'static str {
    if end == Ending::Exited(101) || said.contains("panicked") {
        " Status 101 and `panicked` are a Rust panic: an unwrap or expect on the write to \
         stdout. A write error is a runtime error like any other: return it, print one line \
         and exit 1."
    } else {
        ""
    }
}

/// `ring-recv NAME > /dev/null` started alone (it creates the ring), then `ring-send NAME`
/// with a pipe for its stdin.
fn start_pair(ctx: &mut Ctx, name: &str) -> Result<(Proc, Proc), Fail> {
    let mut recv = start_recv(ctx, name, "/dev/null")?;
    if !poll_until(Instant::now() + Duration::from_secs(5), || made(name)) {
        recv.kill();
        fail!("`ring-recv {name}` started alone did not create /dev/shm{name} within 5 s");
    }
    let send = start_send(ctx, name, &[])?;
    Ok((recv, send))
}

/// The pair idle, ring-send waiting for its stdin (no input yet), then SIGKILL of
/// ring-recv: ring-send must notice although it is not waiting on the ring.
fn killed_while_sender_waits_for_input(ctx: &mut Ctx) -> CheckResult {
    let name = ring_name(ctx, "kidle");
    let _remove = super::shm::RemoveOnDrop(name.clone());
    let (mut recv, mut send) = start_pair(ctx, &name)?;
    // Paired (the name is removed once both are attached), and both asleep: ring-recv on
    // the empty ring, ring-send on its stdin.
    let paired = poll_until(Instant::now() + Duration::from_secs(5), || !exists(&name));
    // (A side that spins instead of sleeping is given 2 s: it has long been waiting then.)
    wait_asleep(send.pid, Duration::from_secs(2));
    wait_asleep(recv.pid, Duration::from_secs(2));
    let waited_in = waiting_in(send.pid);
    recv.signal(Signal::SIGKILL);
    let killed_at = Instant::now();
    let Some(ending) = send.wait_until(killed_at + Duration::from_secs(1)) else {
        let state = waiting_in(send.pid);
        send.kill();
        recv.kill();
        let _ = std::fs::remove_file(super::shm::shm_file(&name));
        fail!(
            "ring-recv was killed with SIGKILL while ring-send had no input yet (ring-send {} \
             then); 1 s later ring-send (pid {}) was still running: it {state}. A receiver \
             that dies while ring-send waits for its stdin must be noticed too: wait for \
             stdin with poll and a timeout (100 ms), and check the peer at each timeout",
            waited_in,
            send.pid
        );
    };
    recv.kill();
    let out = ctx.finish("ring-send", &mut send, Duration::from_secs(1))?;
    let said = first_line(&out.stderr);
    ensure!(
        ending == Ending::Exited(1) && out.stderr.starts_with(b"ring-send: "),
        "ring-recv was killed with SIGKILL while ring-send waited for its stdin; ring-send \
         then {} (expected exit status 1 and one line `ring-send: ...`); it said {said}",
        ending.describe()
    );
    ensure!(
        paired,
        "ring-send and ring-recv on {name} both waited, but /dev/shm{name} was still there: \
         once both halves are attached, remove the name"
    );
    ensure_gone(&[&name], "after ring-recv was killed and ring-send exited")
}

/// The pair paired, ring-send's input trickling in: one byte, and the next as soon as
/// ring-send has read it (its stdin pipe empty again), so that its poll for input never
/// times out while the ring has room to spare. Then SIGKILL of ring-recv: ring-send must
/// still notice within 1 s (checking the peer only when poll times out never does).
fn killed_while_input_trickles(ctx: &mut Ctx) -> CheckResult {
    use std::os::fd::{AsFd, AsRawFd};
    let name = ring_name(ctx, "ktrickle");
    let _remove = super::shm::RemoveOnDrop(name.clone());
    let (mut recv, mut send) = start_pair(ctx, &name)?;
    let stdin = send
        .stdin()
        .and_then(|s| s.as_fd().try_clone_to_owned().ok());
    send.close_stdin();
    let Some(stdin) = stdin else {
        send.kill();
        recv.kill();
        return Err(Fail("no stdin pipe to ring-send".into()));
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let trickle = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let fd = stdin.as_raw_fd();
            let mut pipe = std::fs::File::from(stdin);
            while !stop.load(Ordering::Relaxed) {
                if std::io::Write::write_all(&mut pipe, b"t").is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                while !stop.load(Ordering::Relaxed)
                    && crate::check::pipe_unread(fd).is_some_and(|n| n > 0)
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    // Bytes flow (each one read by ring-send) before the receiver dies.
    let flowing = poll_until(Instant::now() + Duration::from_secs(5), || {
        sent.load(Ordering::Relaxed) >= 20
    });
    recv.signal(Signal::SIGKILL);
    let killed_at = Instant::now();
    let ending = send.wait_until(killed_at + Duration::from_secs(1));
    let trickled = sent.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let Some(ending) = ending else {
        let state = waiting_in(send.pid);
        send.kill();
        recv.kill();
        let _ = trickle.join();
        let _ = std::fs::remove_file(super::shm::shm_file(&name));
        fail!(
            "ring-recv was killed with SIGKILL while ring-send's input trickled in (a byte \
             whenever ring-send had read the last: {trickled} bytes by then); 1 s later \
             ring-send (pid {}) was still running: it {state}. Its poll for input never timed \
             out and the ring had room, so nothing looked at the receiver: check the peer \
             whenever 100 ms have passed since the last check, not only when poll times out",
            send.pid
        );
    };
    let _ = trickle.join();
    recv.kill();
    let out = ctx.finish("ring-send", &mut send, Duration::from_secs(1))?;
    let said = first_line(&out.stderr);
    ensure!(
        flowing,
        "ring-send read only {trickled} bytes of a trickle in 5 s (a byte written whenever it \
         had read the last): it must copy its input as it comes"
    );
    ensure!(
        ending == Ending::Exited(1) && out.stderr.starts_with(b"ring-send: "),
        "ring-recv was killed with SIGKILL while ring-send's input trickled in; ring-send then          {} (expected exit status 1 and one line `ring-send: ...`); it said {said}",
        ending.describe()
    );
    ensure_gone(&[&name], "after ring-recv was killed and ring-send exited")
}

/// ring-recv's output is a FIFO nobody reads: ring-recv blocks writing it, the ring fills
/// and ring-send waits for room. Then the reader goes away: ring-recv gets EPIPE and must
/// exit 1 with one line; its half closes, and ring-send, asleep waiting for room, must wake
/// and exit 1 too.
fn output_closed_while_sender_waits_for_room(ctx: &mut Ctx, pattern: &Pattern) -> CheckResult {
    use std::os::unix::fs::OpenOptionsExt;
    let name = ring_name(ctx, "epipe");
    let _remove = super::shm::RemoveOnDrop(name.clone());
    let fifo = make_fifo(ctx, "epipe")?;
    // Opened without waiting for a writer; never read.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)?;
    let mut recv = start_recv(ctx, &name, &fifo.to_string_lossy())?;
    if !poll_until(Instant::now() + Duration::from_secs(5), || made(&name)) {
        recv.kill();
        fail!("`ring-recv {name}` started alone did not create /dev/shm{name} within 5 s");
    }
    let mut send = start_send(ctx, &name, &[])?;
    let seed = ctx.next_u64();
    feed(&mut send, pattern.clone(), 1 << 40, 64 << 10, seed, None);
    // Forced, not hoped for: ring-recv blocked writing its full stdout, ring-send asleep in
    // its wait for room (a futex, or whatever a spinner runs in).
    let blocked = wait_in(recv.pid, Duration::from_secs(10), |w| {
        w.contains("pipe_write")
    });
    let full = wait_in(send.pid, Duration::from_secs(3), |w| {
        !w.is_empty() && !w.contains("pipe") && !w.contains("poll")
    });
    if let Err(w) = blocked {
        send.kill();
        recv.kill();
        fail!(
            "ring-recv {name}, its output a FIFO nobody reads, never blocked writing it within \
             10 s (it was in {:?}): it should copy the ring to stdout until stdout is full",
            if w.is_empty() { "nothing: running" } else { &w }
        );
    }
    let sender_state = match full {
        Ok(()) => "waited for room in the full ring".to_owned(),
        Err(_) => format!("{} (not waiting for room)", waiting_in(send.pid)),
    };
    drop(reader);
    let closed_at = Instant::now();
    let recv_end = recv.wait_until(closed_at + Duration::from_secs(2));
    let Some(recv_end) = recv_end else {
        let state = waiting_in(recv.pid);
        send.kill();
        recv.kill();
        fail!(
            "the program reading ring-recv's output went away; 2 s later ring-recv (pid {}) \
             was still running: it {state}. A write to a pipe with no reader fails with EPIPE: \
             that is an error (one line, exit 1)",
            recv.pid
        );
    };
    let recv_out = ctx.finish("ring-recv", &mut recv, Duration::from_secs(1))?;
    let recv_said = String::from_utf8_lossy(&recv_out.stderr)
        .trim_end()
        .to_owned();
    if recv_end != Ending::Exited(1)
        || !recv_said.starts_with("ring-recv: ")
        || recv_said.lines().count() != 1
    {
        send.kill();
        let panic = panic_note(recv_end, &recv_said);
        fail!(
            "ring-recv's stdout was closed by its reader (a write then fails with EPIPE); \
             ring-recv {} and said {:?} (expected exit status 1 and one line `ring-recv: \
             <why>` on stderr).{panic}",
            recv_end.describe(),
            recv_said.chars().take(300).collect::<String>()
        );
    }
    let Some(send_end) = send.wait_until(Instant::now() + Duration::from_secs(1)) else {
        let state = waiting_in(send.pid);
        send.kill();
        fail!(
            "ring-recv exited 1 on EPIPE (its half closed) while ring-send {sender_state}; \
             1 s later ring-send (pid {}) was still running: it {state}. A producer waiting \
             for room must also wake when the consumer closes (its close rings the \
             producer's bell, and the wait's condition includes the consumer's closed flag), \
             then fail with PeerClosed: one line, exit 1",
            send.pid
        );
    };
    let send_out = ctx.finish("ring-send", &mut send, Duration::from_secs(1))?;
    ensure!(
        send_end == Ending::Exited(1) && send_out.stderr.starts_with(b"ring-send: "),
        "ring-recv exited 1 on EPIPE while ring-send {sender_state}; ring-send then {} \
         (expected exit status 1 and one line `ring-send: ...`: the consumer closed the \
         ring); it said {}",
        send_end.describe(),
        first_line(&send_out.stderr)
    );
    let _ = std::fs::remove_file(&fifo);
    ensure_gone(&[&name], "after ring-recv's output closed and both exited")
}

/// utime + stime of `pid` in seconds, and its runnable time when the kernel keeps it.
fn usage(pid: i32) -> Option<(f64, Option<f64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let mut runnable = Some(0.0);
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        let mut it = text.split_whitespace().map(|x| x.parse::<u64>().ok());
        match (it.next().flatten(), it.next().flatten(), runnable) {
            (Some(a), Some(b), Some(r)) => runnable = Some(r + (a + b) as f64 / 1e9),
            _ => runnable = None,
        }
    }
    Some((ticks as f64 / hz, runnable))
}

/// An idle receiver with no sender, and an idle pair (ring-send waiting for input,
/// ring-recv for bytes): each uses under 2% of a CPU over 3 s, and wakes at most 100 times
/// a second (waits of a few milliseconds cost little CPU on a fast machine, but are not
/// idle).
pub(super) fn idle(ctx: &mut Ctx) -> CheckResult {
    let (alone, pair) = (ring_name(ctx, "idle1"), ring_name(ctx, "idle2"));
    let mut lonely = start_recv(ctx, &alone, "/dev/null")?;
    let mut recv = start_recv(ctx, &pair, "/dev/null")?;
    if !poll_until(Instant::now() + Duration::from_secs(5), || {
        made(&pair) && made(&alone)
    }) {
        fail!("`ring-recv NAME` started alone did not create /dev/shm/NAME within 5 s");
    }
    let mut send = start_send(ctx, &pair, &[])?;
    // A sender alone with more input than its ring holds: it fills the ring and waits for
    // room (the input stays open, so it never reaches the end).
    let full = ring_name(ctx, "idle3");
    let mut filler = start_send(ctx, &full, &[])?;
    let pattern = Pattern::new(ctx);
    let (_keep_open, hold) = std::sync::mpsc::channel::<()>();
    let seed = ctx.next_u64();
    feed(&mut filler, pattern, 1 << 20, 64 << 10, seed, Some(hold));
    // Paired: the name is removed once both have mapped the ring.
    let paired = poll_until(Instant::now() + Duration::from_secs(5), || !exists(&pair));
    // Settle: each got as far as its wait (a spinner never does; it is measured anyway).
    for pid in [lonely.pid, recv.pid, send.pid, filler.pid] {
        wait_asleep(pid, Duration::from_secs(1));
    }
    let procs = [
        (lonely.pid, format!("ring-recv {alone} with no sender yet")),
        (recv.pid, format!("ring-recv {pair}, its sender idle")),
        (send.pid, format!("ring-send {pair} with no input")),
        (
            filler.pid,
            format!("ring-send {full}, its ring full and no receiver (waiting for room)"),
        ),
    ];
    let before: Vec<_> = procs.iter().map(|(p, _)| usage(*p)).collect();
    let woken_before: Vec<_> = procs.iter().map(|(p, _)| wakeups(*p)).collect();
    let t0 = Instant::now();
    // The one timed wait: idleness is the absence of events, so it takes a stretch of time.
    std::thread::sleep(Duration::from_secs(3));
    let secs = t0.elapsed().as_secs_f64();
    let woken: Vec<_> = procs
        .iter()
        .zip(&woken_before)
        .filter_map(|((pid, what), w0)| {
            let rate = (wakeups(*pid)? - (*w0)?) as f64 / secs;
            (rate > MAX_WAKEUPS_PER_S)
                .then(|| format!("{what} (pid {pid}) woke {rate:.0} times a second"))
        })
        .collect();
    let mut busy = Vec::new();
    for ((pid, what), b) in procs.iter().zip(before) {
        let (Some((c0, r0)), Some((c1, r1))) = (b, usage(*pid)) else {
            busy.push(format!("{what} (pid {pid}) exited while it should wait"));
            continue;
        };
        let cpu = (c1 - c0) / secs;
        let run = match (r0, r1) {
            (Some(a), Some(b)) => Some((b - a) / secs),
            _ => None,
        };
        // Runnable time counts a spinner that a crowded machine leaves little CPU.
        let share = match run {
            Some(r) if r > 0.5 => r.max(cpu),
            _ => cpu,
        };
        if share > 0.02 {
            busy.push(format!(
                "{what} (pid {pid}) was busy {:.1}% of one CPU over {secs:.1} s (CPU time {:.1}%)",
                share * 100.0,
                cpu * 100.0
            ));
        }
    }
    send.close_stdin();
    for p in [&mut lonely, &mut recv, &mut send, &mut filler] {
        p.kill();
    }
    for n in [&alone, &pair, &full] {
        let _ = std::fs::remove_file(super::shm::shm_file(n));
    }
    if !busy.is_empty() {
        return Err(Fail(format!(
            "while there was nothing to do, {} (at most 2% allowed): it spins. Spin only a \
             few microseconds, then sleep in futex(FUTEX_WAIT) with a timeout until the other \
             side rings{}",
            busy.join("; "),
            if woken.is_empty() {
                String::new()
            } else {
                format!(
                    ". Also, {}: wait with the contract's timeout of 100 ms (the futex wait for \
                     the ring, the poll on stdin), not a few milliseconds",
                    woken.join("; ")
                )
            }
        )));
    }
    if !woken.is_empty() {
        return Err(Fail(format!(
            "while there was nothing to do, {} (at most {MAX_WAKEUPS_PER_S} allowed): an idle \
             side that wakes every few milliseconds uses CPU for nothing. Wait with the \
             contract's timeout of 100 ms (the futex wait for the ring, the poll on stdin), \
             not a few milliseconds",
            woken.join("; ")
        )));
    }
    ensure!(
        paired,
        "ring-send and ring-recv on {pair} both waited, but /dev/shm{pair} was still there: \
         once both halves are attached, remove the name"
    );
    Ok(())
}

/// Wake-ups an idle program may have per second: ten times what waits of 100 ms cost.
const MAX_WAKEUPS_PER_S: f64 = 100.0;

/// How often `pid`'s threads have been switched out so far (voluntary and involuntary
/// context switches, summed over its threads): each is a wake-up or a preemption.
fn wakeups(pid: i32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut n = 0;
    for t in tasks.flatten() {
        let status = std::fs::read_to_string(t.path().join("status")).ok()?;
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                n += v.trim().parse::<u64>().ok()?;
            }
        }
    }
    Some(n)
}
