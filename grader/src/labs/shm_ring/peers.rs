//! The checks about the other process: one side killed with SIGKILL mid-stream, and both
//! sides idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::sandbox::Ending;
use crate::{ensure, fail};

use super::shm::{
    ensure_gone, exists, first_line, ring_name, start_recv, start_send, wait_asleep, waiting_in,
};
use super::stream::{Pattern, feed, make_fifo, sink};

/// SIGKILL of ring-send, then of ring-recv, in the middle of a stream: the other one exits
/// with status 1 and a message within 1 s, and nothing is left in /dev/shm.
pub(super) fn peer_killed(ctx: &mut Ctx) -> CheckResult {
    let pattern = Pattern::new(ctx);
    for victim in ["ring-send", "ring-recv"] {
        let name = ring_name(ctx, if victim == "ring-send" { "ks" } else { "kr" });
        let fifo = make_fifo(ctx, "kill")?;
        let progress = Arc::new(AtomicU64::new(0));
        let _drain = sink(fifo.clone(), None, progress.clone());
        let mut recv = start_recv(ctx, &name, &fifo.to_string_lossy())?;
        if !poll_until(Instant::now() + Duration::from_secs(5), || exists(&name)) {
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
    Ok(())
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
/// ring-recv for bytes): each uses under 2% of a CPU over 3 s.
pub(super) fn idle(ctx: &mut Ctx) -> CheckResult {
    let (alone, pair) = (ring_name(ctx, "idle1"), ring_name(ctx, "idle2"));
    let mut lonely = start_recv(ctx, &alone, "/dev/null")?;
    let mut recv = start_recv(ctx, &pair, "/dev/null")?;
    if !poll_until(Instant::now() + Duration::from_secs(5), || {
        exists(&pair) && exists(&alone)
    }) {
        fail!("`ring-recv NAME` started alone did not create /dev/shm/NAME within 5 s");
    }
    let mut send = start_send(ctx, &pair, &[])?;
    // Paired: the name is removed once both have mapped the ring.
    let paired = poll_until(Instant::now() + Duration::from_secs(5), || !exists(&pair));
    // Settle: each got as far as its wait (a spinner never does; it is measured anyway).
    for pid in [lonely.pid, recv.pid, send.pid] {
        wait_asleep(pid, Duration::from_secs(1));
    }
    let procs = [
        (lonely.pid, format!("ring-recv {alone} with no sender yet")),
        (recv.pid, format!("ring-recv {pair}, its sender idle")),
        (send.pid, format!("ring-send {pair} with no input")),
    ];
    let before: Vec<_> = procs.iter().map(|(p, _)| usage(*p)).collect();
    let t0 = Instant::now();
    // The one timed wait: idleness is the absence of events, so it takes a stretch of time.
    std::thread::sleep(Duration::from_secs(3));
    let secs = t0.elapsed().as_secs_f64();
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
    for p in [&mut lonely, &mut recv, &mut send] {
        p.kill();
    }
    let _ = std::fs::remove_file(super::shm::shm_file(&alone));
    let _ = std::fs::remove_file(super::shm::shm_file(&pair));
    if !busy.is_empty() {
        return Err(Fail(format!(
            "while there was nothing to do, {} (at most 2% allowed): it spins. Spin only a \
             few microseconds, then sleep in futex(FUTEX_WAIT) with a timeout until the other \
             side rings",
            busy.join("; ")
        )));
    }
    ensure!(
        paired,
        "ring-send and ring-recv on {pair} both waited, but /dev/shm{pair} was still there: \
         once both halves are attached, remove the name"
    );
    Ok(())
}
