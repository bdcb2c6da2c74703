//! Checks of the mqueue lab: the student's `mq-dispatch` under load, with a worker killed,
//! with SIGTERM and SIGINT, with bad input, and the queues it must leave behind: none.
//!
//! Each check first moves itself into its own IPC and mount namespaces (when it may, as
//! root) and mounts a fresh mqueue filesystem there. Every process it starts inherits the
//! namespace, so every POSIX queue and System V queue of the run, and nothing of any other
//! grader running at the same time, shows up in that mount and in /proc/sysvipc/msg. Where
//! namespaces are not allowed, the checks fall back to the queue names the contract fixes
//! (`/mq-dispatch-PID-jobs`, `/mq-dispatch-PID-results`). Either way, a queue left behind
//! is reported and removed.
//!
//! # Layout
//!
//! - `mqueue.rs`: the `CHECKS` table, the queue names of the contract, and the checks.
//! - `mqueue/scope.rs`: the check's namespaces, the queues seen there, the sweep of leftovers.
//! - `mqueue/procs.rs`: starting the dispatcher and describing what its processes wait for.
//! - `mqueue/ptrace.rs`: killing a worker while it holds a job.
//! - `mqueue/jobs.rs`: job lines, the dispatcher's input, and the judging of its results.
//! - `mqueue/cut.rs`: job lines cut over several reads of the dispatcher.

mod cut;
mod jobs;
mod procs;
mod ptrace;
mod scope;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{Check, CheckResult, Ctx, Fail};
use crate::sandbox::{Ending, Input, Proc, Spec};
use crate::{ensure, fail};
use testkit::procfs;

use jobs::{JobLine, expected_of, input_of, judge_results, list, random_jobs, stderr_note};
use procs::{describe_run, live_children, run_dispatch, strays};
use ptrace::kill_holding_a_job;
use scope::{Scope, posix_exists};

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "backpressure",
        run: backpressure,
    },
    Check {
        name: "worker_killed",
        run: worker_killed,
    },
    Check {
        name: "signal_cleanup",
        run: signal_cleanup,
    },
    Check {
        name: "malformed_jobs",
        run: malformed_jobs,
    },
    Check {
        name: "no_queue_left",
        run: no_queue_left,
    },
    Check {
        name: "lines_cut_anywhere",
        run: cut::lines_cut_anywhere,
    },
];

const BIN: &str = "mq-dispatch";

/// The queue names the contract gives the dispatcher with pid `pid`.
fn contract_names(pid: i32) -> [String; 2] {
    [
        format!("/mq-dispatch-{pid}-jobs"),
        format!("/mq-dispatch-{pid}-results"),
    ]
}

// ---------------------------------------------------------------------------------------
// The checks

fn backpressure(ctx: &mut Ctx) -> CheckResult {
    let scope = Scope::enter(ctx);
    let jobs = random_jobs(ctx, 3000, 1, 120);
    let (out, pid) = run_dispatch(
        ctx,
        2,
        input_of(&jobs),
        Duration::from_secs(20),
        "3000 jobs",
    )?;
    scope.sweep(&[pid]);
    if let Some(problems) = judge_results(&out.stdout_str(), &expected_of(&jobs)) {
        fail!(
            "3000 jobs through `mq-dispatch --workers 2` (queues of 10 messages, so the job queue \
             is full most of the time): {problems}.{}",
            stderr_note(&out)
        );
    }
    ensure!(
        out.status() == 0,
        "`mq-dispatch --workers 2` printed every result for 3000 good jobs but {} (expected \
         status 0).{}",
        out.ending.describe(),
        stderr_note(&out)
    );
    Ok(())
}

fn worker_killed(ctx: &mut Ctx) -> CheckResult {
    let scope = Scope::enter(ctx);
    let mut jobs = random_jobs(ctx, 1500, 1, 40);
    let spec = Spec {
        input: Input::Pipe,
        ..ctx.bin(BIN).args(["--workers", "2"])
    };
    let mut p = ctx.spawn(&spec)?;
    let pid = p.pid;
    let write = |p: &mut Proc, jobs: &[JobLine]| -> Result<(), Fail> {
        let stdin = p.stdin().ok_or_else(|| Fail("no stdin pipe".into()))?;
        stdin
            .write_all(&input_of(jobs))
            .map_err(|e| Fail(format!("mq-dispatch stopped reading its stdin: {e}")))
    };
    // Jobs flowing: results come back while plenty are still to do.
    let (first, rest) = jobs.split_at(100);
    write(&mut p, first)?;
    let flowing = p.wait_stdout(Instant::now() + Duration::from_secs(5), |b| {
        b.iter().filter(|c| **c == b'\n').count() >= 5
    });
    let workers = live_children(pid);
    ensure!(
        flowing && !workers.is_empty(),
        "`mq-dispatch --workers 2` printed {} results within 5 s of getting 100 jobs, with {} \
         worker process(es): it must fork its workers at start and print results as they come, \
         before the end of its input. Its processes:\n{}",
        String::from_utf8_lossy(&p.stdout().0).lines().count(),
        workers.len(),
        describe_run(pid)
    );
    // 1400 more jobs keep the workers busy while one of them is followed to its death.
    let feeder = {
        let rest = input_of(rest);
        let mut stdin = p.stdin().map(|s| s.as_fd().try_clone_to_owned());
        std::thread::spawn(move || {
            if let Some(Ok(stdin)) = stdin.take() {
                let mut stdin = std::fs::File::from(stdin);
                let _ = stdin.write_all(&rest);
            }
        })
    };
    // Every worker is stopped until the job queue is full, so that the victim dies with
    // jobs still queued and another worker's job unanswered: a dispatcher that sends every
    // unanswered job again (as the reference does) then gets results twice, every time, and
    // must print each line once. The others go on once the victim is dead.
    let victim = workers[0];
    let stopped = Stopped::all(&workers);
    wait_for_full_queue(pid, Instant::now() + Duration::from_secs(2));
    let held_job = kill_holding_a_job(victim, Instant::now() + Duration::from_secs(5));

    // The dispatcher must notice and start a new worker. The others go on only then, so
    // that the dispatcher has seen the death before any queued job is answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut replaced = false;
    while Instant::now() < deadline && p.try_ending().is_none() {
        let now = live_children(pid);
        if now.len() >= 2 && !now.contains(&victim) {
            replaced = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(stopped);
    let _ = feeder.join();
    if !replaced {
        let state = describe_run(pid);
        fail!(
            "worker pid {victim} was killed with SIGKILL; within 5 s mq-dispatch did not start a \
             new one (it has {} live worker(s), expected 2). Notice a dead worker (waitpid with \
             WNOHANG in the loop, or SIGCHLD) and fork a replacement. Its processes:\n{state}",
            live_children(pid).len()
        );
    }
    // More jobs for the new worker, then EOF.
    let more = random_jobs(ctx, 20, 1, 40);
    write(&mut p, &more)?;
    p.close_stdin();
    jobs.extend(more);
    let expected = expected_of(&jobs);

    let cause = if held_job {
        format!(
            "worker pid {victim} was killed while it held a job (it had taken the job from the \
             job queue and was about to send its result)"
        )
    } else {
        format!("worker pid {victim} was killed mid-run")
    };
    let ending = p.wait_until(Instant::now() + Duration::from_secs(10));
    let Some(ending) = ending else {
        let stdout = String::from_utf8_lossy(&p.stdout().0).into_owned();
        let problems = judge_results(&stdout, &expected).unwrap_or_default();
        let state = describe_run(pid);
        p.kill();
        scope.sweep(&[pid]);
        fail!(
            "{cause}, and mq-dispatch never finished: {problems}. The job the dead worker had \
             taken was lost: it left the job queue and its result never came. Remember the jobs \
             sent but not answered, and send them again when a worker dies (dropping duplicate \
             results by line number). Its processes:\n{state}"
        );
    };
    let out = ctx.finish("mq-dispatch", &mut p, Duration::from_secs(1))?;
    scope.sweep(&[pid]);
    if let Some(problems) = judge_results(&out.stdout_str(), &expected) {
        fail!("{cause}: {problems}.{}", stderr_note(&out));
    }
    ensure!(
        ending == Ending::Exited(0),
        "{cause}; every job got its result, but mq-dispatch then {} (expected status 0: a \
         replaced worker is no error).{}",
        ending.describe(),
        stderr_note(&out)
    );
    Ok(())
}

/// Processes stopped by SIGSTOP, continued (SIGCONT) when this is dropped, whatever happens.
struct Stopped(Vec<i32>);

impl Stopped {
    fn all(pids: &[i32]) -> Stopped {
        for &p in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGSTOP);
        }
        Stopped(pids.to_vec())
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &p in &self.0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGCONT);
        }
    }
}

/// Waits until the job queue of the contract (`/mq-dispatch-PID-jobs`) holds as many
/// messages as it can, or the deadline. A dispatcher that names its queues otherwise, or
/// that never fills its job queue, is simply not waited for past the deadline.
fn wait_for_full_queue(dispatcher: i32, deadline: Instant) {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_getattr, mq_open};
    use nix::sys::stat::Mode;
    let [jobs, _] = contract_names(dispatcher);
    while Instant::now() < deadline {
        if let Ok(q) = mq_open(jobs.as_str(), MQ_OFlag::O_RDONLY, Mode::empty(), None) {
            let full = mq_getattr(&q).is_ok_and(|a| a.curmsgs() >= a.maxmsg());
            let _ = mq_close(q);
            if full {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal_cleanup(ctx: &mut Ctx) -> CheckResult {
    let scope = Scope::enter(ctx);
    for (sig, status) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let spec = Spec {
            input: Input::Pipe,
            ..ctx.bin(BIN).args(["--workers", "3"])
        };
        let mut p = ctx.spawn(&spec)?;
        let pid = p.pid;
        let jobs = random_jobs(ctx, 50, 1, 30);
        if let Some(stdin) = p.stdin() {
            let _ = stdin.write_all(&input_of(&jobs));
        }
        // Every result printed: the queues exist, the workers run, stdin is still open.
        let ready = p.wait_stdout(Instant::now() + Duration::from_secs(5), |b| {
            b.iter().filter(|c| **c == b'\n').count() >= jobs.len()
        });
        ensure!(
            ready,
            "`mq-dispatch --workers 3` printed {} of 50 results within 5 s while its stdin stayed \
             open: it must print each result as it arrives, not wait for the end of the input.",
            String::from_utf8_lossy(&p.stdout().0).lines().count()
        );
        let workers = live_children(pid);
        for name in contract_names(pid) {
            ensure!(
                posix_exists(&name),
                "while mq-dispatch (pid {pid}) runs there is no queue {name}: the dispatcher must \
                 name its queues /mq-dispatch-<its pid>-jobs and /mq-dispatch-<its pid>-results"
            );
        }
        p.signal(sig);
        let ending = p.wait_until(Instant::now() + Duration::from_secs(3));
        let Some(ending) = ending else {
            let state = describe_run(pid);
            p.kill();
            scope.sweep(&[pid]);
            fail!(
                "mq-dispatch did not exit within 3 s of {}. Catch it with a handler that sets a \
                 flag, and check that flag in the loop (a blocking call returns EINTR when the \
                 handler was installed without SA_RESTART). Its processes:\n{state}",
                sig.as_str()
            );
        };
        let alive: Vec<String> = workers
            .iter()
            .filter(|w| procfs::stat(**w).is_some_and(|s| s.state != 'Z' && s.state != 'X'))
            .map(|w| w.to_string())
            .collect();
        let left = scope.sweep(&[pid]);
        ensure!(
            left.is_empty(),
            "after {} mq-dispatch exited but left {} behind (the grader removed them). A queue \
             outlives its processes: on SIGINT and SIGTERM too, stop the workers and mq_unlink \
             both queues before exiting.",
            sig.as_str(),
            left.join(", ")
        );
        ensure!(
            alive.is_empty(),
            "after {} mq-dispatch exited but its worker(s) {} still run: stop them (kill, or a \
             stop message) and waitpid for each before exiting.",
            sig.as_str(),
            alive.join(", ")
        );
        ensure!(
            ending == Ending::Exited(status) || ending == Ending::Signaled(sig as i32),
            "after {} mq-dispatch {} (expected status {status}, 128 + the signal's number).",
            sig.as_str(),
            ending.describe()
        );
    }
    Ok(())
}

fn malformed_jobs(ctx: &mut Ctx) -> CheckResult {
    let scope = Scope::enter(ctx);
    let long = "x".repeat(1001);
    let exactly = "y".repeat(1000);
    // (line, is it a good job)
    let lines: Vec<(Vec<u8>, bool)> = vec![
        (b"5 first good".to_vec(), true),
        (b"".to_vec(), false),
        (b"x not a priority".to_vec(), false),
        (b"10 two digits".to_vec(), false),
        (b"7".to_vec(), false),
        (b"0 zero is fine".to_vec(), true),
        (b"-1 negative".to_vec(), false),
        (b"3\ttab instead of space".to_vec(), false),
        (format!("4 {long}").into_bytes(), false),
        (format!("9 {exactly}").into_bytes(), true),
        (b"2 \xff\xfe not utf-8".to_vec(), false),
        (b" 5 leading space".to_vec(), false),
        // Limits are in bytes: 500 x "é" is 1000 bytes (good), 501 x "é" 1002 (bad), though
        // both are far fewer than 1000 characters.
        (format!("6 {}", "é".repeat(500)).into_bytes(), true),
        (format!("6 {}", "é".repeat(501)).into_bytes(), false),
        (b"8 last good line".to_vec(), true),
    ];
    let mut input = Vec::new();
    let mut expected = BTreeMap::new();
    let mut bad = Vec::new();
    for (i, (line, good)) in lines.iter().enumerate() {
        input.extend_from_slice(line);
        input.push(b'\n');
        let n = i as u64 + 1;
        if *good {
            let text = String::from_utf8_lossy(line);
            expected.insert(
                n,
                text.split_once(' ').map(|x| x.1).unwrap_or("").to_owned(),
            );
        } else {
            bad.push(n);
        }
    }
    let (out, pid) = run_dispatch(
        ctx,
        2,
        input,
        Duration::from_secs(10),
        "a mix of good and bad lines",
    )?;
    scope.sweep(&[pid]);
    let stdout = out.stdout_str();
    for (i, (line, good)) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let payload = &line[2.min(line.len())..];
        let chars = String::from_utf8_lossy(payload).chars().count();
        if payload.len() <= 1000 || chars > 1000 || *good {
            continue;
        }
        ensure!(
            !stdout.lines().any(|l| l.starts_with(&format!("{n} "))),
            "line {n} has a payload of {} bytes ({chars} characters of 2 bytes each in UTF-8), \
             more than the 1000 allowed, and still got a result: the limit is in bytes, not \
             characters (count `payload.len()`, not `chars().count()`)",
            payload.len()
        );
    }
    if let Some(problems) = judge_results(&stdout, &expected) {
        fail!(
            "on input with bad lines ({}), the good lines ({}) must each get one result and the \
             bad ones none: {problems}.{}",
            list(&bad.iter().map(u64::to_string).collect::<Vec<_>>()),
            list(&expected.keys().map(u64::to_string).collect::<Vec<_>>()),
            stderr_note(&out)
        );
    }
    let stderr = out.stderr_str();
    let unreported: Vec<String> = bad
        .iter()
        .filter(|n| {
            !stderr
                .lines()
                .any(|l| l.contains(&format!("line {n}:")) || l.contains(&format!("line {n} ")))
        })
        .map(u64::to_string)
        .collect();
    ensure!(
        unreported.is_empty(),
        "bad job lines must each be reported on stderr with their line number (`mq-dispatch: \
         line N: <reason>`); line(s) {} were not. Its stderr: {}",
        list(&unreported),
        crate::run::clip(stderr.trim(), 800)
    );
    ensure!(
        out.status() == 1,
        "mq-dispatch skipped the bad lines but {} (expected status 1 when some lines did not \
         parse).",
        out.ending.describe()
    );
    Ok(())
}

fn no_queue_left(ctx: &mut Ctx) -> CheckResult {
    let scope = Scope::enter(ctx);
    let jobs = random_jobs(ctx, 40, 1, 50);
    let cases = [
        ("40 jobs", input_of(&jobs), expected_of(&jobs), 0),
        ("empty input", Vec::<u8>::new(), BTreeMap::new(), 0),
        (
            "only bad lines",
            b"oops\n99 no\n".to_vec(),
            BTreeMap::new(),
            1,
        ),
    ];
    for (what, input, expected, status) in cases {
        let (out, pid) = run_dispatch(ctx, 2, input, Duration::from_secs(10), what)?;
        let left = scope.sweep(&[pid]);
        // Clean-up counts only after a run that did its work.
        if let Some(problems) = judge_results(&out.stdout_str(), &expected) {
            fail!(
                "`mq-dispatch --workers 2` on {what} did not do the work, so its clean-up \
                 cannot be judged: {problems}.{}",
                stderr_note(&out)
            );
        }
        ensure!(
            out.status() == status,
            "`mq-dispatch --workers 2` on {what} {} (expected status {status}), so its clean-up \
             cannot be judged.{}",
            out.ending.describe(),
            stderr_note(&out)
        );
        ensure!(
            left.is_empty(),
            "after `mq-dispatch --workers 2` on {what} ({}), {} still existed (the grader removed \
             them). Closing a queue does not remove it: mq_unlink both queues before exiting, \
             on every way out.",
            out.ending.describe(),
            left.join(", ")
        );
        let stray: Vec<String> = strays();
        ensure!(
            stray.is_empty(),
            "after `mq-dispatch --workers 2` on {what} exited, processes it started still run: \
             {}. Stop the workers and waitpid for each before exiting.",
            stray.join(", ")
        );
    }
    stdout_fails(ctx, &scope, &jobs)
}

/// A runtime error, provoked: stdout is /dev/full, so the first result printed fails with
/// ENOSPC. One line `mq-dispatch: ...`, exit 1, and the same clean-up.
fn stdout_fails(ctx: &mut Ctx, scope: &Scope, jobs: &[JobLine]) -> CheckResult {
    let input = ctx.scratch.join("mqueue-jobs-for-dev-full");
    std::fs::write(&input, input_of(jobs))?;
    let mut spec = ctx.bin(BIN);
    let bin = std::mem::replace(&mut spec.program, "/bin/bash".into());
    spec.args = vec![
        "-c".into(),
        "exec \"$0\" --workers 2 < \"$1\" > /dev/full".into(),
        bin,
        input.clone().into_os_string(),
    ];
    let mut p = ctx.spawn(&spec)?;
    let pid = p.pid;
    let what = "`mq-dispatch --workers 2 > /dev/full` (40 jobs; every write to stdout fails \
                with ENOSPC)";
    if p.wait_until(Instant::now() + Duration::from_secs(10))
        .is_none()
    {
        let state = describe_run(pid);
        p.kill();
        scope.sweep(&[pid]);
        fail!(
            "{what} did not exit within 10 s: a failed write to stdout is a runtime error, \
             after which the dispatcher cleans up and exits 1. Its processes:\n{state}"
        );
    }
    let out = ctx.finish("mq-dispatch", &mut p, Duration::from_secs(1))?;
    let _ = std::fs::remove_file(&input);
    let left = scope.sweep(&[pid]);
    let stray: Vec<String> = strays();
    ensure!(
        left.is_empty() && stray.is_empty(),
        "{what} {}, and left {} behind (the grader removed them). On a runtime error too, stop \
         the workers and mq_unlink both queues before exiting.",
        out.ending.describe(),
        list(&left.into_iter().chain(stray).collect::<Vec<_>>())
    );
    let err = out.stderr_str();
    let lines = err.trim_end().lines().count();
    ensure!(
        out.status() == 1 && err.starts_with("mq-dispatch: ") && lines == 1,
        "{what} {} with {lines} line(s) on stderr: {}; expected exit status 1 and one line \
         `mq-dispatch: <what went wrong>`.{}",
        out.ending.describe(),
        crate::run::clip(err.trim(), 400),
        if err.contains("panicked") {
            " It panicked: println! panics when stdout cannot be written; write with \
             writeln! and return the error, so that main prints one line and exits 1"
        } else {
            ""
        }
    );
    Ok(())
}
