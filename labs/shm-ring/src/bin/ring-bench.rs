//! `ring-bench`: measures your ring between two processes. Given: do not edit (the grader
//! uses its own copy).
//!
//! - `ring-bench --throughput BYTES [--chunk N] [--capacity C]`: a forked child writes
//!   BYTES through one ring in `write_all` calls of N bytes (default 65536); this process
//!   reads them in reads of N bytes. Prints
//!   `ring-bench: throughput X.XXX GB/s (BYTES bytes in S s, chunk N B, ring C B)`.
//! - `ring-bench --pingpong N`: two rings; this process writes a 64-byte message to the
//!   first, the child echoes it back on the second; N round trips, each timed. Prints
//!   `ring-bench: pingpong median X.XXX us (N round trips of 64 B, p10 A us, p90 B us)`.
//!
//! - `ring-bench --memcpy BYTES [--chunk N] [--capacity C]`: the baseline of the first: one
//!   process copies BYTES in `memcpy`s of N bytes into a C-byte buffer, as a producer copies
//!   into the ring. Prints `ring-bench: memcpy X.XXX GB/s (...)`.
//!
//! Exit status 0 when every byte arrived intact, 1 otherwise.

use std::process::exit;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use shm_ring::{Ring, RingError};

const USAGE: &str =
    "usage: ring-bench --throughput BYTES [--chunk N] [--capacity C] | --pingpong N";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |flag: &str| -> Option<usize> {
        let i = args.iter().position(|a| a == flag)?;
        match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(v) => Some(v),
            None => {
                eprintln!("ring-bench: {flag} needs a number\n{USAGE}");
                exit(2)
            }
        }
    };
    let result = if let Some(bytes) = num("--throughput") {
        let chunk = num("--chunk").unwrap_or(64 << 10).max(1);
        let capacity = num("--capacity").unwrap_or(shm_ring::ring::DEFAULT_CAPACITY);
        throughput(bytes, chunk, capacity)
    } else if let Some(n) = num("--pingpong") {
        pingpong(n.max(1))
    } else if let Some(bytes) = num("--memcpy") {
        let chunk = num("--chunk").unwrap_or(64 << 10).max(1);
        let capacity = num("--capacity").unwrap_or(shm_ring::ring::DEFAULT_CAPACITY);
        memcpy(bytes, chunk, capacity.max(chunk));
        Ok(())
    } else {
        eprintln!("{USAGE}");
        exit(2)
    };
    if let Err(e) = result {
        eprintln!("ring-bench: {e}");
        exit(1);
    }
}

/// A ring name of this run, removed when dropped.
struct Name(String);

impl Name {
    fn new(tag: &str) -> Name {
        Name(format!("/ring-bench-{}-{tag}", std::process::id()))
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = Ring::unlink(&self.0);
    }
}

/// The byte at stream position `i` (a pattern with period 251, so a shifted or repeated
/// chunk shows).
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Runs `child` in a forked child process (exit 0 on `Ok`), then `parent` here, each on a
/// core of its own when `pinned`; waits for the child.
fn with_child<T>(
    pinned: bool,
    child: impl FnOnce() -> Result<(), String>,
    parent: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    // SAFETY: this program has one thread; the child only uses the ring and exits.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            if pinned {
                pin(1);
            }
            let code = match child() {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("ring-bench (child): {e}");
                    1
                }
            };
            // SAFETY: leave without running the parent's destructors (its ring names).
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child: pid } => {
            if pinned {
                pin(0);
            }
            let out = parent();
            if out.is_err() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, 0)) => out,
                Ok(st) => out.and(Err(format!("the child ended badly: {st:?}"))),
                Err(e) => out.and(Err(format!("waitpid: {e}"))),
            }
        }
    }
}

/// Puts this process on the `nth` CPU it may use, when it may use two or more: the two
/// processes of a ring are meant to run side by side, each on a core of its own.
fn pin(nth: usize) {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let Ok(allowed) = sched_getaffinity(Pid::from_raw(0)) else {
        return;
    };
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    if cpus.len() >= 2 {
        let mut one = CpuSet::new();
        if one.set(cpus[nth % cpus.len()]).is_ok() {
            let _ = sched_setaffinity(Pid::from_raw(0), &one);
        }
    }
}

fn err(e: RingError) -> String {
    e.to_string()
}

fn throughput(bytes: usize, chunk: usize, capacity: usize) -> Result<(), String> {
    let name = Name::new("t");
    let ring = Ring::create(&name.0, capacity).map_err(err)?;
    let src: Vec<u8> = (0..chunk + 251).map(pattern).collect();
    let t0 = Instant::now();
    // Not pinned: on a busy machine the scheduler moves a stream to the freer core.
    let received = with_child(
        false,
        || {
            drop(ring);
            let mut tx = Ring::open(&name.0).map_err(err)?.producer().map_err(err)?;
            let mut sent = 0;
            while sent < bytes {
                let n = chunk.min(bytes - sent);
                let off = sent % 251;
                tx.write_all(&src[off..off + n]).map_err(err)?;
                sent += n;
            }
            tx.close();
            Ok(())
        },
        || {
            let mut rx = Ring::open(&name.0).map_err(err)?.consumer().map_err(err)?;
            let mut buf = vec![0u8; chunk];
            let mut total = 0usize;
            // Read exactly `bytes`: a benchmark measures speed, not the end of the stream.
            // Check a sample of each read: the whole stream would cost as much as the ring.
            while total < bytes {
                let want = chunk.min(bytes - total);
                let n = rx.read(&mut buf[..want]).map_err(err)?;
                if n == 0 {
                    return Err(format!("the stream ended after {total} of {bytes} bytes"));
                }
                if buf[0] != pattern(total) || buf[n - 1] != pattern(total + n - 1) {
                    return Err(format!("wrong bytes at offset {total}"));
                }
                total += n;
            }
            Ok(total)
        },
    )?;
    let secs = t0.elapsed().as_secs_f64();
    if received != bytes {
        return Err(format!("sent {bytes} bytes, received {received}"));
    }
    println!(
        "ring-bench: throughput {:.3} GB/s ({bytes} bytes in {secs:.3} s, chunk {chunk} B, ring {capacity} B)",
        bytes as f64 / secs / 1e9
    );
    Ok(())
}

fn memcpy(bytes: usize, chunk: usize, capacity: usize) {
    let src: Vec<u8> = (0..chunk).map(pattern).collect();
    let mut dst = vec![0u8; capacity];
    let t0 = Instant::now();
    let (mut done, mut at) = (0, 0);
    while done < bytes {
        let n = chunk.min(bytes - done);
        if at + n > capacity {
            at = 0;
        }
        dst[at..at + n].copy_from_slice(&src[..n]);
        std::hint::black_box(&mut dst);
        at += n;
        done += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "ring-bench: memcpy {:.3} GB/s ({bytes} bytes in {secs:.3} s, chunk {chunk} B, buffer {capacity} B)",
        bytes as f64 / secs / 1e9
    );
}

fn pingpong(rounds: usize) -> Result<(), String> {
    let (ping, pong) = (Name::new("ping"), Name::new("pong"));
    let a = Ring::create(&ping.0, 4096).map_err(err)?;
    let b = Ring::create(&pong.0, 4096).map_err(err)?;
    // Pinned to two cores: a round trip is about two processes running side by side.
    let times = with_child(
        true,
        || {
            drop((a, b));
            let mut rx = Ring::open(&ping.0).map_err(err)?.consumer().map_err(err)?;
            let mut tx = Ring::open(&pong.0).map_err(err)?.producer().map_err(err)?;
            let mut msg = [0u8; 64];
            // Echo exactly as many messages as the parent sends (no reliance on the end of
            // the stream: a benchmark measures speed only).
            for _ in 0..rounds + 100 {
                if !read_exact(&mut rx, &mut msg)? {
                    return Err("the stream ended early".into());
                }
                tx.write_all(&msg).map_err(err)?;
            }
            Ok(())
        },
        || {
            let mut tx = Ring::open(&ping.0).map_err(err)?.producer().map_err(err)?;
            let mut rx = Ring::open(&pong.0).map_err(err)?.consumer().map_err(err)?;
            let mut times = Vec::with_capacity(rounds);
            let mut back = [0u8; 64];
            // A few untimed rounds first: both processes running, caches warm.
            for i in 0..rounds + 100 {
                let msg = [(i % 256) as u8; 64];
                let t = Instant::now();
                tx.write_all(&msg).map_err(err)?;
                if !read_exact(&mut rx, &mut back)? || back != msg {
                    return Err(format!("round trip {i}: the echo differs"));
                }
                if i >= 100 {
                    times.push(t.elapsed());
                }
            }
            tx.close();
            Ok(times)
        },
    )?;
    drop((ping, pong));
    let mut times = times;
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "ring-bench: pingpong median {:.3} us ({rounds} round trips of 64 B, p10 {:.3} us, p90 {:.3} us)",
        us(at(0.5)),
        us(at(0.1)),
        us(at(0.9))
    );
    Ok(())
}

/// Fills `buf` from `rx`; `false` at an end of stream before the first byte.
fn read_exact(rx: &mut shm_ring::Consumer, buf: &mut [u8]) -> Result<bool, String> {
    let mut got = 0;
    while got < buf.len() {
        let n = rx.read(&mut buf[got..]).map_err(err)?;
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err("the stream ended inside a message".into())
            };
        }
        got += n;
    }
    Ok(true)
}
