//! Idle CPU: how much of one CPU a process used over a stretch of time in which it had
//! nothing to do. A program that polls instead of blocking (`try_receive` in a loop, a
//! FIFO read at EOF again and again) uses most of a CPU; a blocked one uses none.
//!
//! Two measures, both summed over every thread: CPU time (utime + stime, from
//! `/proc/PID/stat`, which counts every thread, ended ones included, or the finer time on a
//! CPU from `/proc/PID/task/*/schedstat`) and runnable time (on a CPU or waiting for one).
//! Runnable time does not depend on how busy the machine is: two gradings at once on two
//! cores leave a spinning process far less than a CPU, but it is runnable the whole time.
//! See [`Share::busy`] for how the two make one figure.
//!
//! Idleness is the absence of events, so this is the one place a test waits for a stretch
//! of time rather than for a condition.

use std::time::{Duration, Instant};

use crate::procfs;

/// CPU and runnable time of a process so far, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// utime + stime of every thread, ended ones included.
    pub cpu: f64,
    /// Time on a CPU or waiting for one, summed over its live threads; `None` where the
    /// kernel keeps no schedstat.
    pub runnable: Option<f64>,
    /// Time on a CPU, summed over its live threads (schedstat, in nanoseconds, finer than
    /// clock ticks); `None` where the kernel keeps no schedstat.
    pub on_cpu: Option<f64>,
}

/// Reads the [`Usage`] of `pid`; `None` once it is gone.
pub fn usage(pid: i32) -> Option<Usage> {
    let stat = procfs::stat(pid)?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let mut tasks_ticks = 0;
    let mut runnable: Option<f64> = None;
    let mut on_cpu: Option<f64> = None;
    for tid in procfs::threads(pid) {
        let dir = format!("/proc/{pid}/task/{tid}");
        if let Some(t) = std::fs::read_to_string(format!("{dir}/stat"))
            .ok()
            .and_then(|s| procfs::parse_stat(&s))
        {
            tasks_ticks += t.utime + t.stime;
        }
        // "time on cpu (ns)  time waiting for a cpu (ns)  timeslices"; a thread that has
        // just ended has none.
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/schedstat")) {
            let mut f = text
                .split_whitespace()
                .map(|x| x.parse::<u64>().unwrap_or(0));
            let (run, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
            on_cpu = Some(on_cpu.unwrap_or(0.0) + run as f64 / 1e9);
            runnable = Some(runnable.unwrap_or(0.0) + (run + wait) as f64 / 1e9);
        }
    }
    let ticks = (stat.utime + stat.stime).max(tasks_ticks);
    Some(Usage {
        cpu: (ticks as f64 / hz).max(on_cpu.unwrap_or(0.0)),
        runnable,
        on_cpu,
    })
}

/// The share of one CPU a process used over a measured window.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// The process.
    pub pid: i32,
    /// Its name (`/proc/PID/comm`).
    pub comm: String,
    /// CPU time over the window, as a fraction of one CPU (0.25 = 25 %).
    pub cpu: f64,
    /// Runnable time over the window, as a fraction, where the kernel keeps it.
    pub runnable: Option<f64>,
    /// The window's length.
    pub window: Duration,
}

impl Share {
    /// How busy the process was: its CPU share, or its runnable share when that is over
    /// half a CPU (a process that spins on a crowded machine gets little CPU but is
    /// runnable all the time; one that blocks is never runnable that long, while a few
    /// wake-ups may wait a while for a CPU).
    pub fn busy(&self) -> f64 {
        match self.runnable {
            Some(r) if r > 0.5 => r.max(self.cpu),
            _ => self.cpu,
        }
    }

    /// "`mq-dispatch` (pid 12) was busy 97.0% of one CPU over 3.0 s (CPU time 48.5%)".
    pub fn describe(&self) -> String {
        format!(
            "`{}` (pid {}) was busy {:.1}% of one CPU over {:.1} s (CPU time {:.1}%)",
            self.comm,
            self.pid,
            self.busy() * 100.0,
            self.window.as_secs_f64(),
            self.cpu * 100.0
        )
    }
}

/// Measures every process of `pids` over the same `window`; a process that is gone at
/// either end is left out.
pub fn shares(pids: &[i32], window: Duration) -> Vec<Share> {
    let before: Vec<(i32, Option<Usage>)> = pids.iter().map(|&p| (p, usage(p))).collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let elapsed = t0.elapsed();
    let secs = elapsed.as_secs_f64();
    before
        .into_iter()
        .filter_map(|(pid, b)| {
            let (b, a) = (b?, usage(pid)?);
            let comm = procfs::stat(pid).map(|s| s.comm).unwrap_or_default();
            Some(Share {
                pid,
                comm,
                cpu: (a.cpu - b.cpu).max(0.0) / secs,
                runnable: match (b.runnable, a.runnable) {
                    (Some(x), Some(y)) => Some((y - x).max(0.0) / secs),
                    _ => None,
                },
                window: elapsed,
            })
        })
        .collect()
}

/// The share of one CPU that `pid` used over `window` (see [`Share::busy`]); `None` if it
/// is gone.
pub fn cpu_share(pid: i32, window: Duration) -> Option<Share> {
    shares(&[pid], window).pop()
}

/// The processes of `pids` busier than `max` (a fraction of one CPU) over `window`, each
/// described with its measured share; `Ok` if none is. `advice` ends the message.
pub fn check_idle(pids: &[i32], window: Duration, max: f64, advice: &str) -> Result<(), String> {
    let busy: Vec<String> = shares(pids, window)
        .into_iter()
        .filter(|s| s.busy() > max)
        .map(|s| s.describe())
        .collect();
    if busy.is_empty() {
        return Ok(());
    }
    Err(format!(
        "while it had nothing to do, {} (at most {:.0}% allowed): it polls instead of \
         blocking. {advice}",
        busy.join("; "),
        max * 100.0
    ))
}

/// [`check_idle`] that fails the test.
#[track_caller]
pub fn assert_idle(pids: &[i32], window: Duration, max: f64, advice: &str) {
    if let Err(why) = check_idle(pids, window, max, advice) {
        panic!("{why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_child_is_idle_and_a_spinning_one_is_not() {
        let mut idle = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let s = shares(
            &[idle.id() as i32, busy.id() as i32],
            Duration::from_millis(500),
        );
        let _ = (idle.kill(), busy.kill(), idle.wait(), busy.wait());
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].busy() < 0.05, "{}", s[0].describe());
        assert!(s[1].busy() > 0.5, "{}", s[1].describe());
        assert!(
            s[1].describe().contains("% of one CPU"),
            "{}",
            s[1].describe()
        );
    }
}
