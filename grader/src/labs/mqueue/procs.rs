//! Processes of a run: starting the dispatcher, its live workers, and what each of them
//! is blocked in (from /proc/PID/syscall), for the messages of a hang.

use std::time::{Duration, Instant};

use crate::check::{Ctx, Fail, Output};
use crate::fail;
use testkit::procfs;

use super::BIN;

/// The live children of `pid` (its workers).
pub(super) fn live_children(pid: i32) -> Vec<i32> {
    procfs::descendants(std::process::id() as i32)
        .into_iter()
        .filter(|s| s.ppid == pid && s.state != 'Z' && s.state != 'X')
        .map(|s| s.pid)
        .collect()
}

/// Every live process the check's programs left running, named for a message.
pub(super) fn strays() -> Vec<String> {
    procfs::descendants(std::process::id() as i32)
        .into_iter()
        .filter(|s| s.state != 'Z' && s.state != 'X')
        .map(|s| format!("`{}` (pid {})", s.comm, s.pid))
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
pub(super) fn describe_run(dispatcher: i32) -> String {
    let mut out = String::new();
    let mut pids = vec![dispatcher];
    pids.extend(live_children(dispatcher));
    for (i, pid) in pids.iter().enumerate() {
        let who = if i == 0 {
            format!("mq-dispatch (pid {pid})")
        } else {
            format!("worker (pid {pid})")
        };
        let Some(stat) = procfs::stat(*pid) else {
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

/// Runs `mq-dispatch --workers N` on `input` within `limit`; on a hang, says what each of
/// its processes waits for.
pub(super) fn run_dispatch(
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
