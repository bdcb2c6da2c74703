//! Performance items: the given `ring-bench` (built on the student's library) against pipe
//! baselines the grader measures itself, in the same run, on the same machine.
//!
//! Fairness on a shared machine: ring and pipe rounds alternate, several short rounds of
//! each. Within a round the figure is a median (of round trips) or a whole transfer; across
//! rounds the item takes each side's best round, so that a burst of other work on the
//! machine during some rounds costs neither side (both had the same chances at a quiet
//! moment). The report gives every round, both figures and the ratio whether the item
//! passes or not.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::check::{CheckResult, Ctx, Fail};
use crate::fail;

/// Rounds of each measurement.
const ROUNDS: usize = 7;
/// Bytes of one throughput round.
const BYTES: u64 = 128 << 20;
/// Round trips of one ping-pong round.
const TRIPS: usize = 2000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn best_high(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MIN, f64::max)
}

fn best_low(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::MAX, f64::min)
}

fn list(v: &[f64], digits: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `ring-bench ARGS` and returns the number after `key` in its output line.
fn bench(ctx: &mut Ctx, args: &[&str], key: &str) -> Result<f64, Fail> {
    bench_within(ctx, args, key, Duration::from_secs(30))
}

/// A small run of `ring-bench ARGS` first, within 2 s (a right ring takes milliseconds): a
/// ring that hangs fails here at once instead of at each round's deadline.
fn warm_up(ctx: &mut Ctx, args: &[&str], key: &str) -> Result<(), Fail> {
    bench_within(ctx, args, key, Duration::from_secs(2))
        .map(drop)
        .map_err(|Fail(why)| {
            Fail(format!(
                "speed was not measured: a small run did not work. {why}. Make the stream \
                 item pass first"
            ))
        })
}

/// [`bench`] with a deadline of `limit`.
fn bench_within(ctx: &mut Ctx, args: &[&str], key: &str, limit: Duration) -> Result<f64, Fail> {
    bench_run(ctx, args, key, limit).map_err(|(fail, _)| fail)
}

/// [`bench_within`], and on failure whether the run was still on a CPU or waiting for one
/// at its deadline (too slow, not stuck asleep).
fn bench_run(
    ctx: &mut Ctx,
    args: &[&str],
    key: &str,
    limit: Duration,
) -> Result<f64, (Fail, bool)> {
    let spec = ctx.bin("ring-bench").args(args.iter().copied());
    let what = format!("ring-bench {}", args.join(" "));
    let mut p = ctx.spawn(&spec).map_err(|f| (f, false))?;
    if p.wait_until(Instant::now() + limit).is_none() {
        let mut pids = vec![p.pid];
        pids.extend(testkit::procfs::descendants(p.pid).iter().map(|s| s.pid));
        let running = pids
            .iter()
            .any(|&pid| testkit::procfs::stat(pid).is_some_and(|s| s.state == 'R'));
        let diagnosis = crate::sandbox::diagnose_tree();
        p.kill();
        let fail = Fail(format!(
            "{what} did not finish within {:.0} s. What its processes were waiting for:\n{}",
            limit.as_secs_f64(),
            diagnosis.trim_end()
        ));
        return Err((fail, running));
    }
    let out = ctx
        .finish(&what, &mut p, Duration::ZERO)
        .map_err(|f| (f, false))?;
    let text = out.stdout_str();
    let value = text
        .split_once(key)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok());
    match (out.status(), value) {
        (0, Some(v)) => Ok(v),
        _ => Err((
            Fail(format!(
                "`ring-bench {}` (the given benchmark, on your library) {}; it printed {:?} and said \
             {:?}",
                args.join(" "),
                out.ending.describe(),
                text.trim(),
                out.stderr_str().trim()
            )),
            false,
        )),
    }
}

/// The pipe baseline of throughput: `cat | cat > /dev/null` with `input` (an in-memory file
/// of [`BYTES`]) as stdin, timed by bash's `time` around the pipeline only; GB/s.
/// It runs as a peer, with every process of the submission stopped meanwhile.
fn pipe_throughput(ctx: &mut Ctx, input: &Arc<OwnedFd>) -> Result<f64, Fail> {
    nix::unistd::lseek(input, 0, nix::unistd::Whence::SeekSet)?;
    let mut spec = ctx
        .peer(Path::new("/bin/bash"))
        .args(["-c", "TIMEFORMAT=%R; time (cat | cat > /dev/null)"]);
    spec.input = crate::sandbox::Input::File(Arc::clone(input));
    let frozen = ctx.freeze_student();
    let out = ctx.run("the pipe baseline", &spec, Duration::from_secs(30));
    drop(frozen);
    let out = out?;
    let secs = out.stderr_str().trim().parse::<f64>().map_err(|_| {
        Fail(format!(
            "the grader's pipe baseline failed (tell your course staff): {}",
            out.stderr_str()
        ))
    })?;
    Ok(BYTES as f64 / secs.max(0.001) / 1e9)
}

/// The pipe baseline's input: [`BYTES`] random bytes in a memfd, so that no disk is timed and
/// nothing is left behind, whatever ends the check (a named file in /dev/shm outlived checks
/// killed at their time limit).
fn baseline_input(ctx: &mut Ctx) -> Result<Arc<OwnedFd>, Fail> {
    // SAFETY: a C string literal and flags; the result is checked before use.
    let fd = unsafe { libc::memfd_create(c"shmring-baseline".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    let block = ctx.random_bytes(1 << 20);
    for _ in 0..(BYTES >> 20) {
        file.write_all(&block)?;
    }
    Ok(Arc::new(OwnedFd::from(file)))
}

/// Ring throughput (`ring-bench --throughput`) against a pipe (`cat | cat`, same bytes):
/// at least 2x.
pub(super) fn throughput(ctx: &mut Ctx) -> CheckResult {
    let input = baseline_input(ctx)?;
    let bytes = BYTES.to_string();
    warm_up(
        ctx,
        &["--throughput", "1048576", "--capacity", "65536"],
        "throughput ",
    )?;
    let measured = (|| -> Result<(Vec<f64>, Vec<f64>), Fail> {
        let (mut ring, mut pipe) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ring.push(bench(
                ctx,
                &["--throughput", &bytes, "--capacity", "1048576"],
                "throughput ",
            )?);
            pipe.push(pipe_throughput(ctx, &input)?);
        }
        Ok((ring, pipe))
    })();
    let (ring, pipe) = measured?;
    let (r, p) = (best_high(&ring), best_high(&pipe));
    let ratio = r / p;
    let figures = format!(
        "ring {r:.2} GB/s (best round of `ring-bench --throughput {BYTES} --capacity 1048576`: \
         {} GB/s), pipe {p:.2} GB/s (best round of `cat < in-memory-file | cat > /dev/null`, same \
         bytes, alternating: {} GB/s), ratio {ratio:.2} (at least 2.00 needed)",
        list(&ring, 2),
        list(&pipe, 2)
    );
    if ratio < 2.0 {
        fail!(
            "throughput: {figures}. The ring should copy each byte in and out once, with no \
             system call while bytes flow: wake the other side only when it sleeps (a flag it \
             sets before its futex wait), and copy whole chunks (two copies at the wrap, not \
             byte by byte)"
        );
    }
    ctx.note(figures);
    Ok(())
}

/// The time `tid`'s thread (of process `pid`) has spent ready to run but waiting for a
/// CPU, in seconds, and the number of times it was put on one (the second and third fields
/// of its schedstat); zeros where the kernel keeps none.
fn cpu_wait(pid: i32, tid: i32) -> (f64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"));
    let mut f = text.as_deref().unwrap_or("").split_whitespace().skip(1);
    let mut next = || f.next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let (wait_ns, runs) = (next(), next());
    (wait_ns as f64 / 1e9, runs)
}

/// A pipe ping-pong round: the median round trip in microseconds, and how long its two
/// processes waited for a CPU, on average, each time they were woken (seconds). Every round
/// trip wakes each of them once; on a machine with a CPU free for each, a wake-up waits
/// microseconds. When other work crowds them it waits for that work's time slices,
/// milliseconds, and round trips time the scheduler: no comparison of them means anything.
struct PipeRound {
    median_us: f64,
    wait_per_wakeup: f64,
}

/// The deadline of one measured round (a right ring takes a fraction of a second).
const ROUND_LIMIT: Duration = Duration::from_secs(30);

/// The average wait for a CPU per wake-up of the pipe rounds' processes above which round
/// trips are not timed fairly (a quiet machine: 2 to 4 µs; one whose CPUs run other work
/// too: tens of microseconds and more).
const BUSY: f64 = 20e-6;

/// Why the machine was too busy to compare round trips, from the pipe rounds' waits per
/// wake-up, or `None` when it was not.
fn too_busy(waits: &[f64]) -> Option<String> {
    let worst = waits.iter().copied().fold(0.0, f64::max);
    (worst >= BUSY).then(|| {
        format!(
            "this machine was too busy to time round trips: the grader's own pipe round trips, \
             run while your programs were stopped, waited {:.0} µs for a CPU on average each \
             time a process was woken (other work was using the CPUs; {:.0} µs or more makes \
             any round trip time the scheduler, not the ring). Grade again on a quiet machine",
            worst * 1e6,
            BUSY * 1e6
        )
    })
}

/// One pipe ping-pong round, measured by the grader itself: a forked child echoes 64-byte
/// messages back over a second pipe.
fn pipe_pingpong(trips: usize) -> Result<PipeRound, Fail> {
    let (a_r, a_w) = nix::unistd::pipe()?;
    let (b_r, b_w) = nix::unistd::pipe()?;
    use std::os::fd::AsRawFd;
    let (ar, aw, br, bw) = (
        a_r.as_raw_fd(),
        a_w.as_raw_fd(),
        b_r.as_raw_fd(),
        b_w.as_raw_fd(),
    );
    // SAFETY: the child makes only async-signal-safe calls (read, write, close, _exit).
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => unsafe {
            libc::close(aw);
            libc::close(br);
            let mut buf = [0u8; 64];
            loop {
                let mut got = 0usize;
                while got < 64 {
                    let n = libc::read(ar, buf.as_mut_ptr().add(got).cast(), 64 - got);
                    if n <= 0 {
                        libc::_exit(0);
                    }
                    got += n as usize;
                }
                if libc::write(bw, buf.as_ptr().cast(), 64) != 64 {
                    libc::_exit(1);
                }
            }
        },
        nix::unistd::ForkResult::Parent { child } => {
            drop((a_r, b_w));
            let (me, thread) = (std::process::id() as i32, nix::unistd::gettid().as_raw());
            let child_pid = child.as_raw();
            let waits = || {
                let ((a, m), (b, n)) = (cpu_wait(me, thread), cpu_wait(child_pid, child_pid));
                (a + b, m + n)
            };
            let before = waits();
            let mut times = Vec::with_capacity(trips);
            let msg = [7u8; 64];
            let mut back = [0u8; 64];
            let mut ok = true;
            for i in 0..trips + 100 {
                let t = Instant::now();
                // SAFETY: plain reads and writes of our buffers on our descriptors.
                unsafe {
                    if libc::write(aw, msg.as_ptr().cast(), 64) != 64 {
                        ok = false;
                        break;
                    }
                    let mut got = 0usize;
                    while got < 64 {
                        let n = libc::read(br, back.as_mut_ptr().add(got).cast(), 64 - got);
                        if n <= 0 {
                            ok = false;
                            break;
                        }
                        got += n as usize;
                    }
                }
                if i >= 100 {
                    times.push(t.elapsed().as_secs_f64() * 1e6);
                }
            }
            let after = waits();
            let wakeups = after.1.saturating_sub(before.1).max(1);
            let wait_per_wakeup = (after.0 - before.0) / wakeups as f64;
            drop((a_w, b_r));
            let _ = nix::sys::wait::waitpid(child, None);
            if !ok || times.is_empty() {
                return Err(Fail(
                    "the grader's pipe ping-pong failed (tell your course staff)".into(),
                ));
            }
            Ok(PipeRound {
                median_us: median(times),
                wait_per_wakeup,
            })
        }
    }
}

/// 64-byte round trip over two rings (`ring-bench --pingpong`) against two pipes: at most
/// half.
pub(super) fn pingpong(ctx: &mut Ctx) -> CheckResult {
    // With one CPU for both processes every round trip, ring or pipe, is two switches between
    // them: the comparison says nothing about the ring.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return Err(ctx.not_gradable_here(
            "the grader may use only one CPU here (its affinity, or its cgroup's CPU quota), and \
             with one CPU a round trip between two processes needs two switches between them \
             whatever carries the bytes, so ring and pipe cannot be told apart",
        ));
    }
    let trips = TRIPS.to_string();
    let (mut ring, mut pipe, mut waited) = (Vec::new(), Vec::new(), Vec::new());
    // A small run first, within 2 s (a right ring takes milliseconds): a ring that hangs
    // fails here at once instead of at each round's deadline.
    let mut measured = bench_run(
        ctx,
        &["--pingpong", "100"],
        "median ",
        Duration::from_secs(2),
    )
    .map(drop)
    .map_err(|(Fail(why), running)| {
        let why = format!(
            "speed was not measured: a small run did not work. {why}. Make the stream item \
                 pass first"
        );
        (Fail(why), running)
    });
    if measured.is_ok() {
        measured = (|| {
            for _ in 0..ROUNDS {
                ring.push(bench_run(
                    ctx,
                    &["--pingpong", &trips],
                    "median ",
                    ROUND_LIMIT,
                )?);
                let frozen = ctx.freeze_student();
                let round = pipe_pingpong(TRIPS).map_err(|f| (f, false))?;
                drop(frozen);
                pipe.push(round.median_us);
                waited.push(round.wait_per_wakeup);
            }
            Ok(())
        })();
    }
    if let Err((fail, running)) = measured {
        // Too slow, not stuck: was the machine too busy to time anything?
        if running && waited.is_empty() {
            let frozen = ctx.freeze_student();
            if let Ok(round) = pipe_pingpong(TRIPS / 4) {
                waited.push(round.wait_per_wakeup);
            }
            drop(frozen);
        }
        if running && let Some(busy) = too_busy(&waited) {
            return Err(ctx.too_busy_to_measure(format!("{busy}; meanwhile: {}", fail.0)));
        }
        return Err(fail);
    }
    let (r, p) = (best_low(&ring), best_low(&pipe));
    let ratio = r / p;
    let figures = format!(
        "64-byte round trip: ring {r:.2} µs (best round of `ring-bench --pingpong {TRIPS}`, \
         each round's median: {} µs), pipe {p:.2} µs (two pipes and a forked echo, measured \
         by the grader, each round's median, alternating: {} µs), ratio {ratio:.2} (at most \
         0.50 needed); a pipe round's wake-up waited {:.1} µs for a CPU on average, at most",
        list(&ring, 2),
        list(&pipe, 2),
        waited.iter().copied().fold(0.0, f64::max) * 1e6
    );
    if ratio > 0.5
        && let Some(busy) = too_busy(&waited)
    {
        return Err(ctx.too_busy_to_measure(format!("{busy}; meanwhile: {figures}")));
    }
    if ratio > 0.5 {
        fail!(
            "{figures}. A round trip through the ring should not enter the kernel: before a \
             futex wait, spin for a few microseconds (std::hint::spin_loop), since the reply \
             usually comes by then; and call FUTEX_WAKE only when the other side sleeps"
        );
    }
    ctx.note(figures);
    Ok(())
}
