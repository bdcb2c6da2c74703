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

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{Check, CheckResult, Ctx, Fail, Output};
use crate::procinfo;
use crate::sandbox::{Ending, Input, Proc, Spec};
use crate::{ensure, fail};

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
// Where the queues of a run can be seen

/// The check's view of message queues: its own namespaces when it could make them.
struct Scope {
    /// An mqueue filesystem showing this check's POSIX queues (`None`: not available).
    mq_dir: Option<PathBuf>,
    /// Whether this check has its own IPC namespace (every queue in it is the run's).
    private: bool,
    /// Queues there before the run (empty in a private namespace).
    posix_before: BTreeSet<String>,
    sysv_before: BTreeSet<i32>,
}

impl Scope {
    fn enter(ctx: &Ctx) -> Scope {
        use nix::sched::{CloneFlags, unshare};
        let private = unshare(CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS).is_ok();
        let mut mq_dir = None;
        if private {
            use nix::mount::{MsFlags, mount};
            // Mounts made from now on stay in this namespace.
            let _ = mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            );
            let dir = ctx.scratch.join(".grader-mqueue");
            if std::fs::create_dir_all(&dir).is_ok()
                && mount(
                    Some("mqueue"),
                    &dir,
                    Some("mqueue"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .is_ok()
            {
                mq_dir = Some(dir);
            }
        } else {
            mq_dir = mqueue_mount();
        }
        let mut scope = Scope {
            mq_dir,
            private,
            posix_before: BTreeSet::new(),
            sysv_before: BTreeSet::new(),
        };
        scope.posix_before = scope.posix_queues();
        scope.sysv_before = sysv_queues().into_keys().collect();
        scope
    }

    /// POSIX queue names (with their leading `/`) visible now.
    fn posix_queues(&self) -> BTreeSet<String> {
        let Some(dir) = &self.mq_dir else {
            return BTreeSet::new();
        };
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(|n| format!("/{n}")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every queue the run left behind, described, and removed. `dispatchers` are the pids
    /// of the dispatchers of the run, whose contract names are checked in any case.
    fn sweep(&self, dispatchers: &[i32]) -> Vec<String> {
        let mut left = BTreeSet::new();
        for name in self.posix_queues() {
            let ours = self.private
                || dispatchers
                    .iter()
                    .any(|pid| name.contains(&format!("-{pid}-")));
            if ours && !self.posix_before.contains(&name) {
                left.insert(name);
            }
        }
        for pid in dispatchers {
            for name in contract_names(*pid) {
                if posix_exists(&name) {
                    left.insert(name);
                }
            }
        }
        let mut found: Vec<String> = Vec::new();
        for name in left {
            let _ = nix::mqueue::mq_unlink(name.as_str());
            found.push(format!("POSIX queue {name}"));
        }
        if self.private {
            for (id, line) in sysv_queues() {
                if !self.sysv_before.contains(&id) {
                    // SAFETY: IPC_RMID takes no buffer.
                    unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
                    found.push(format!("System V queue (msqid {id}: {line})"));
                }
            }
        }
        found
    }
}

/// Where an mqueue filesystem is mounted, if anywhere.
fn mqueue_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
        (kind == "mqueue").then(|| PathBuf::from(at))
    })
}

/// Whether the POSIX queue `name` exists (the grader may open any queue).
fn posix_exists(name: &str) -> bool {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_open};
    use nix::sys::stat::Mode;
    match mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None) {
        Ok(q) => {
            let _ = mq_close(q);
            true
        }
        Err(e) => e != nix::errno::Errno::ENOENT,
    }
}

/// System V queues visible now: msqid and a summary of the line of /proc/sysvipc/msg.
fn sysv_queues() -> BTreeMap<i32, String> {
    let text = std::fs::read_to_string("/proc/sysvipc/msg").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let id = f.get(1)?.parse().ok()?;
            Some((
                id,
                format!(
                    "key {}, {} messages",
                    f.first().unwrap_or(&"?"),
                    f.get(4).unwrap_or(&"?")
                ),
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Processes of a run

/// The live children of `pid` (its workers).
fn live_children(pid: i32) -> Vec<i32> {
    procinfo::descendants(std::process::id() as i32)
        .into_iter()
        .filter(|s| s.ppid == pid && s.state != 'Z' && s.state != 'X')
        .map(|s| s.pid)
        .collect()
}

/// The system call `pid` is blocked in, by number (`None` when running or gone).
fn blocked_syscall(pid: i32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .filter(|n| *n >= 0)
}

fn syscall_name(nr: i64) -> String {
    match nr {
        n if n == libc::SYS_mq_timedsend => "mq_send (the queue is full)".into(),
        n if n == libc::SYS_mq_timedreceive => "mq_receive (the queue is empty)".into(),
        n if n == libc::SYS_read => "read".into(),
        n if n == libc::SYS_write => "write".into(),
        n if n == libc::SYS_wait4 || n == libc::SYS_waitid => "waitpid".into(),
        #[cfg(target_arch = "x86_64")]
        n if n == libc::SYS_poll => "poll".into(),
        n if n == libc::SYS_ppoll => "poll".into(),
        n if n == libc::SYS_pselect6 => "select".into(),
        n if n == libc::SYS_nanosleep || n == libc::SYS_clock_nanosleep => "sleep".into(),
        n => format!("system call {n}"),
    }
}

/// One line per process of the run: what it is blocked in, and which queue that fd is.
fn describe_run(dispatcher: i32) -> String {
    let mut out = String::new();
    let mut pids = vec![dispatcher];
    pids.extend(live_children(dispatcher));
    for (i, pid) in pids.iter().enumerate() {
        let who = if i == 0 {
            format!("mq-dispatch (pid {pid})")
        } else {
            format!("worker (pid {pid})")
        };
        let Some(stat) = procinfo::stat(*pid) else {
            continue;
        };
        let doing = match (stat.state, blocked_syscall(*pid)) {
            ('Z', _) => "has exited (zombie)".to_owned(),
            ('R', _) => "is running".to_owned(),
            (_, Some(nr)) => {
                let fd = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
                    .ok()
                    .and_then(|s| {
                        let a = s.split_whitespace().nth(1)?;
                        i64::from_str_radix(a.trim_start_matches("0x"), 16).ok()
                    });
                let target = fd
                    .and_then(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
                    .map(|t| format!(" on {}", t.display()))
                    .unwrap_or_default();
                format!("waits in {}{target}", syscall_name(nr))
            }
            _ => "is sleeping".to_owned(),
        };
        out.push_str(&format!("  {who} {doing}\n"));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Jobs and results

/// A job line as given on stdin.
#[derive(Clone)]
struct JobLine {
    priority: u8,
    payload: String,
}

impl JobLine {
    fn text(&self) -> String {
        format!("{} {}", self.priority, self.payload)
    }
}

fn random_jobs(ctx: &mut Ctx, count: usize, min_len: usize, max_len: usize) -> Vec<JobLine> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:";
    (0..count)
        .map(|_| {
            let len = min_len + (ctx.next_u64() as usize) % (max_len - min_len + 1);
            let payload = (0..len)
                .map(|_| ALPHABET[(ctx.next_u64() as usize) % ALPHABET.len()] as char)
                .collect();
            JobLine {
                priority: (ctx.next_u64() % 10) as u8,
                payload,
            }
        })
        .collect()
}

fn input_of(jobs: &[JobLine]) -> Vec<u8> {
    jobs.iter()
        .map(|j| j.text() + "\n")
        .collect::<String>()
        .into_bytes()
}

/// Compares the printed results with the jobs (`expected`: line number to job); returns
/// a student-facing description of the first problems, or `None` when all is right.
fn judge_results(stdout: &str, expected: &BTreeMap<u64, String>) -> Option<String> {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for line in stdout.lines() {
        let Some((n, text)) = line.split_once(' ') else {
            problems.push(format!("the output line {line:?} is not `<line> <result>`"));
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            problems.push(format!(
                "the output line {line:?} does not start with a line number"
            ));
            continue;
        };
        *seen.entry(n).or_default() += 1;
        match expected.get(&n) {
            None => problems.push(format!(
                "a result for line {n}, which is not a job: {line:?}"
            )),
            Some(payload) => {
                let want: String = payload.chars().rev().collect();
                if text != want {
                    problems.push(format!(
                        "line {n}: printed {:?}, expected {:?} (the payload {:?} reversed)",
                        crate::run::clip(text, 80),
                        crate::run::clip(&want, 80),
                        crate::run::clip(payload, 80)
                    ));
                }
            }
        }
    }
    let twice: Vec<String> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, c)| format!("{n} ({c} times)"))
        .collect();
    if !twice.is_empty() {
        problems.push(format!(
            "results printed more than once for line(s) {}: every job must get exactly one result \
             (when jobs are sent again after a worker died, print only the first result of each line)",
            list(&twice)
        ));
    }
    let missing: Vec<String> = expected
        .keys()
        .filter(|n| !seen.contains_key(n))
        .map(u64::to_string)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "no result for {} job(s), line(s) {}",
            missing.len(),
            list(&missing)
        ));
    }
    if problems.is_empty() {
        None
    } else {
        problems.truncate(6);
        Some(problems.join("; "))
    }
}

fn list(items: &[String]) -> String {
    if items.len() > 12 {
        format!("{} ... ({} in all)", items[..12].join(", "), items.len())
    } else {
        items.join(", ")
    }
}

fn expected_of(jobs: &[JobLine]) -> BTreeMap<u64, String> {
    jobs.iter()
        .enumerate()
        .map(|(i, j)| (i as u64 + 1, j.payload.clone()))
        .collect()
}

fn stderr_note(o: &Output) -> String {
    let err = o.stderr_str();
    let err = err.trim();
    if err.is_empty() {
        String::new()
    } else {
        format!(" Its stderr: {}", crate::run::clip(err, 600))
    }
}

/// Runs `mq-dispatch --workers N` on `input` within `limit`; on a hang, says what each of
/// its processes waits for.
fn run_dispatch(
    ctx: &mut Ctx,
    workers: usize,
    input: Vec<u8>,
    limit: Duration,
    what: &str,
) -> Result<(Output, i32), Fail> {
    let spec = Ctx::with_input(
        ctx.bin(BIN).args(["--workers", &workers.to_string()]),
        input,
    );
    let mut p = ctx.spawn(&spec)?;
    let pid = p.pid;
    let deadline = Instant::now() + limit;
    if p.wait_until(deadline).is_none() {
        let state = describe_run(pid);
        let printed = String::from_utf8_lossy(&p.stdout().0).lines().count();
        p.kill();
        fail!(
            "`mq-dispatch --workers {workers}` on {what} did not finish within {:.0} s \
             ({printed} result lines printed). Its processes:\n{state}\
             A dispatcher that blocks in mq_send on the full job queue while the workers block \
             sending results to the full result queue waits forever: keep receiving results while \
             the job queue is full (poll both queues, or send with a timeout).",
            limit.as_secs_f64()
        );
    }
    let out = ctx.finish("mq-dispatch", &mut p, Duration::from_secs(1))?;
    Ok((out, pid))
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

/// Lets the worker `pid` run until it enters `mq_send` (the `mq_timedsend` system call)
/// and SIGKILLs it there: it has taken a job from the job queue and not yet delivered the
/// result, so that job is lost unless the dispatcher sends it again. The grader follows
/// the worker with ptrace, stopping it at each system call. Returns whether it could; if
/// not (ptrace refused, the deadline), the worker is killed wherever it is.
fn kill_holding_a_job(pid: i32, deadline: Instant) -> bool {
    use std::mem::{MaybeUninit, size_of};
    let kill = || {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    };
    let mut status = 0;
    // SAFETY: ptrace and waitpid on a pid, with valid pointers; the worker is a process of
    // this check, and the grader may trace it (root).
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, libc::PTRACE_O_TRACESYSGOOD) != 0 {
            kill();
            return false;
        }
        libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0);
        loop {
            // The next stop, without blocking past the deadline.
            loop {
                let r = libc::waitpid(pid, &mut status, libc::__WALL | libc::WNOHANG);
                if r == pid {
                    break;
                }
                if r < 0 {
                    return false;
                }
                if Instant::now() >= deadline {
                    kill();
                    libc::waitpid(pid, &mut status, libc::__WALL);
                    return false;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if !libc::WIFSTOPPED(status) {
                return false;
            }
            let sig = libc::WSTOPSIG(status);
            let mut inject = 0;
            if sig == libc::SIGTRAP | 0x80 {
                let mut info = MaybeUninit::<libc::ptrace_syscall_info>::zeroed();
                let n = libc::ptrace(
                    libc::PTRACE_GET_SYSCALL_INFO,
                    pid,
                    size_of::<libc::ptrace_syscall_info>(),
                    info.as_mut_ptr(),
                );
                let info = info.assume_init();
                if n > 0
                    && info.op == libc::PTRACE_SYSCALL_INFO_ENTRY
                    && info.u.entry.nr == libc::SYS_mq_timedsend as u64
                {
                    kill();
                    libc::waitpid(pid, &mut status, libc::__WALL);
                    return true;
                }
            } else if status >> 16 == 0 {
                // A signal on its way to the worker: deliver it.
                inject = sig;
            }
            libc::ptrace(libc::PTRACE_SYSCALL, pid, 0, inject);
        }
    }
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
    let victim = workers[0];
    let held_job = kill_holding_a_job(victim, Instant::now() + Duration::from_secs(5));
    let _ = feeder.join();

    // The dispatcher must notice and start a new worker.
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
            .filter(|w| procinfo::stat(**w).is_some_and(|s| s.state != 'Z' && s.state != 'X'))
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
    if let Some(problems) = judge_results(&out.stdout_str(), &expected) {
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
        let stray: Vec<String> = procinfo::descendants(std::process::id() as i32)
            .into_iter()
            .filter(|s| s.state != 'Z' && s.state != 'X')
            .map(|s| format!("`{}` (pid {})", s.comm, s.pid))
            .collect();
        ensure!(
            stray.is_empty(),
            "after `mq-dispatch --workers 2` on {what} exited, processes it started still run: \
             {}. Stop the workers and waitpid for each before exiting.",
            stray.join(", ")
        );
    }
    Ok(())
}
