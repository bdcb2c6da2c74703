//! Running a grading's tests and checks side by side: which job runs next, how many at
//! once, and when a spare CPU takes one more.
//!
//! An item is all or nothing: once one of its tests has hung (the grader's timeout, or the
//! test's own deadline), its tests not yet started are reported, not run, since they would
//! most likely hang too, each for the whole timeout. So the workers take jobs of items with
//! nothing running first, and never start a job of an item whose running job has taken over
//! [`SUSPECT_AFTER`]: they wait for its end instead, which says whether the rest runs.
//!
//! A job that waits (on its deadline, on a child that never answers) holds no CPU. Where
//! jobs run in parallel, up to twice as many spare workers start a job each when, over the
//! last quarter second, a whole CPU of the machine stayed idle and the memory available
//! (the machine's, or the grader's cgroup's if less) holds one more job at its cap. Under a
//! CPU quota smaller than the CPUs the grader may run on, there are no spare workers. A
//! spare worker takes only a job of an item with nothing running. A hanging submission's
//! deadlines then run out side by side instead of one after another, and a machine busy
//! with real work gets no more load.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Spare workers for each worker (see the module's notes).
const SPARES_PER_WORKER: usize = 2;

/// How often a spare worker looks whether the machine has a CPU to spare.
const SPARE_EVERY: Duration = Duration::from_millis(250);

/// A job running this long may be hanging: another job of its item waits for its end.
pub const SUSPECT_AFTER: Duration = Duration::from_secs(1);

/// One job for [`run`]: the item it belongs to, and its cap of memory in bytes.
pub struct Job<T> {
    /// The item's id: jobs of one item are all or nothing.
    pub item: String,
    /// The most memory it may use (a spare worker starts it only if that much is free).
    pub memory: u64,
    /// What to run.
    pub what: T,
}

/// How a job ended, for the jobs of its item still to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Nothing to say.
    Done,
    /// It failed after a wait of [`SUSPECT_AFTER`] or more (a deadline of its own that ran
    /// out): the item's other jobs likely wait too, so they run side by side, spares too.
    Slow,
    /// It hung: the item's jobs not yet started are reported, not run.
    Hung,
}

/// What a worker does with a job: runs it (`None`), or, for a job of an item that already
/// hung, reports it not run with the id of the job that hung (`Some`). Returns the result
/// and how the job ended.
pub type Runner<'a, T, R> = dyn Fn(&T, Option<&str>) -> (R, Mark) + Sync + 'a;

/// Runs `jobs` with `workers` workers (plus spares, see the module's notes) and returns
/// their results in job order. `id` names a job (for "not run" reports); `stop` is asked
/// before each job starts, and once it says so, nothing more starts.
pub fn run<T: Sync, R: Send>(
    jobs: &[Job<T>],
    workers: usize,
    id: &(dyn Fn(&T) -> String + Sync),
    run: &Runner<'_, T, R>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<Option<R>> {
    let board = Mutex::new(Board::new(jobs.iter().map(|j| j.item.clone()).collect()));
    let ended = Condvar::new();
    let lock = || board.lock().unwrap_or_else(|e| e.into_inner());
    // Runs the next job; `false` once none is left (for a spare: none it may take now).
    let run_next = |spare: bool| -> bool {
        let (k, started) = {
            let mut b = lock();
            loop {
                if stop() {
                    return false;
                }
                let k = match b.take(spare, Instant::now()) {
                    Take::Run(k) => k,
                    Take::Done => return false,
                    Take::Wait if spare => return false,
                    Take::Wait => {
                        b = ended.wait(b).unwrap_or_else(|e| e.into_inner());
                        continue;
                    }
                };
                let started = Instant::now();
                if let Some(first) = b.start(k, started) {
                    let (r, _) = run(&jobs[k].what, Some(&first));
                    b.results[k] = Some(r);
                    continue;
                }
                break (k, started);
            }
        };
        let job = &jobs[k];
        let (result, mark) = run(&job.what, None);
        lock().finish(k, started, &id(&job.what), mark, result);
        ended.notify_all();
        true
    };
    let cap = jobs.iter().map(|j| j.memory).max().unwrap_or(0);
    // A spare worker: waits for an idle CPU while the others are busy, then runs one job.
    // It waits on `ended`, not in a sleep, so that it is gone as soon as the last job is.
    let spare = || {
        let mut meter = IdleMeter::new();
        let mut measured = Instant::now();
        loop {
            let (busy, done) = {
                let b = lock();
                let b = if b.pending() {
                    ended
                        .wait_timeout(b, SPARE_EVERY)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                } else {
                    b
                };
                (b.busy(), !b.pending() || stop())
            };
            if done {
                return;
            }
            if measured.elapsed() < SPARE_EVERY {
                continue;
            }
            let idle = meter.idle_cpus();
            measured = Instant::now();
            if busy >= workers
                && idle.is_some_and(|c| c >= 0.9)
                && memory_available() > cap
                && run_next(true)
            {
                meter = IdleMeter::new();
                measured = Instant::now();
            }
        }
    };
    // Under a CPU quota below the CPUs the grader may run on (a container's `--cpus` on a
    // big host), idle CPUs of the machine are not ours to use: no spare worker.
    let spares = if workers > 1
        && crate::sandbox::cgroup::cpu_quota()
            .is_none_or(|q| IdleMeter::times().is_none_or(|(_, _, cpus)| q >= cpus as f64))
    {
        SPARES_PER_WORKER * workers
    } else {
        0
    };
    std::thread::scope(|s| {
        for _ in 0..spares {
            s.spawn(spare);
        }
        for _ in 1..workers {
            s.spawn(|| while run_next(false) {});
        }
        while run_next(false) {}
    });
    board
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .results
}

/// The state of [`run`]: which jobs are waiting, running, hung and done.
struct Board<R> {
    /// The item of each job.
    items: Vec<String>,
    /// Whether each job is still to be taken.
    next: Vec<bool>,
    /// When each running job of each item started.
    running: BTreeMap<String, Vec<Instant>>,
    /// The first job of each item that hung.
    hung: BTreeMap<String, String>,
    /// Items with a job that failed after a long wait.
    slow: std::collections::BTreeSet<String>,
    results: Vec<Option<R>>,
}

/// What a worker is to do next.
#[derive(Debug, PartialEq, Eq)]
enum Take {
    /// Start (or report as not run) this job.
    Run(usize),
    /// Wait for a running job to end.
    Wait,
    /// Nothing is left to take.
    Done,
}

impl<R> Board<R> {
    fn new(items: Vec<String>) -> Board<R> {
        let n = items.len();
        Board {
            items,
            next: vec![true; n],
            running: BTreeMap::new(),
            hung: BTreeMap::new(),
            slow: Default::default(),
            results: (0..n).map(|_| None).collect(),
        }
    }

    fn pending(&self) -> bool {
        self.next.contains(&true)
    }

    /// How many jobs are running.
    fn busy(&self) -> usize {
        self.running.values().map(Vec::len).sum()
    }

    /// The next job for a worker, at `now`: one of a hung item (to report it not run), else
    /// one of an item with nothing running or of a slow item, else (not for a `spare`) one
    /// of an item whose running jobs are all younger than [`SUSPECT_AFTER`].
    fn take(&self, spare: bool, now: Instant) -> Take {
        let mut pending = (0..self.items.len()).filter(|&k| self.next[k]).peekable();
        if pending.peek().is_none() {
            return Take::Done;
        }
        let mut fallback = None;
        for k in pending {
            let item = &self.items[k];
            if self.hung.contains_key(item) {
                return Take::Run(k);
            }
            match self.running.get(item) {
                None => return Take::Run(k),
                Some(_) if self.slow.contains(item) => return Take::Run(k),
                Some(starts) if !spare && fallback.is_none() => {
                    let young = |t: &Instant| now.saturating_duration_since(*t) < SUSPECT_AFTER;
                    if starts.iter().all(young) {
                        fallback = Some(k);
                    }
                }
                Some(_) => {}
            }
        }
        fallback.map_or(Take::Wait, Take::Run)
    }

    /// Job `k` is taken at `at`: running, or, when its item has hung, the first job that
    /// hung (the caller reports it not run).
    fn start(&mut self, k: usize, at: Instant) -> Option<String> {
        self.next[k] = false;
        let item = &self.items[k];
        if let Some(first) = self.hung.get(item) {
            return Some(first.clone());
        }
        self.running.entry(item.clone()).or_default().push(at);
        None
    }

    /// Job `k` (`id`), started at `started`, ended with `result` as `mark` says.
    fn finish(&mut self, k: usize, started: Instant, id: &str, mark: Mark, result: R) {
        let item = &self.items[k];
        if let Some(starts) = self.running.get_mut(item) {
            if let Some(i) = starts.iter().position(|&t| t == started) {
                starts.swap_remove(i);
            }
            if starts.is_empty() {
                self.running.remove(item);
            }
        }
        match mark {
            Mark::Hung => {
                self.hung
                    .entry(item.clone())
                    .or_insert_with(|| id.to_owned());
            }
            Mark::Slow => {
                self.slow.insert(item.clone());
            }
            Mark::Done => {}
        }
        self.results[k] = Some(result);
    }
}

/// The idle time of the CPUs the grader may run on (its affinity mask: a container's
/// cpuset, not the whole host) since the meter was made or last read, from `/proc/stat`.
struct IdleMeter {
    last: Option<(u64, u64, usize)>,
}

impl IdleMeter {
    fn new() -> IdleMeter {
        IdleMeter {
            last: Self::times(),
        }
    }

    /// (idle and iowait, all) jiffies of those CPUs together, and how many CPUs that is.
    fn times() -> Option<(u64, u64, usize)> {
        let mine = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let (mut idle, mut all, mut cpus) = (0, 0, 0);
        for line in stat.lines() {
            // `cpuN user nice system idle iowait irq softirq steal ...`
            let Some((n, rest)) = line
                .strip_prefix("cpu")
                .and_then(|l| l.split_once(' '))
                .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)))
            else {
                continue;
            };
            if mine.is_some_and(|set| !set.is_set(n).unwrap_or(false)) {
                continue;
            }
            let fields: Vec<u64> = rest
                .split_whitespace()
                .take(8)
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            idle += fields.get(3)? + fields.get(4)?;
            all += fields.iter().sum::<u64>();
            cpus += 1;
        }
        (cpus > 0).then_some((idle, all, cpus))
    }

    /// How many CPUs' worth stayed idle since the last reading.
    fn idle_cpus(&mut self) -> Option<f64> {
        let now = Self::times()?;
        let (idle0, all0, _) = self.last.replace(now)?;
        let all = now.1.checked_sub(all0).filter(|&d| d > 0)?;
        Some(now.0.saturating_sub(idle0) as f64 / all as f64 * now.2 as f64)
    }
}

/// Bytes of memory available: the machine's (`MemAvailable`), or what the grader's cgroup
/// still allows if that is less; 0 when unknown.
fn memory_available() -> u64 {
    let machine = machine_memory_available();
    crate::sandbox::cgroup::memory_headroom().map_or(machine, |h| h.min(machine))
}

/// `MemAvailable` of /proc/meminfo in bytes, 0 when unknown.
fn machine_memory_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(items: &[&str]) -> Board<&'static str> {
        Board::new(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn jobs_of_items_with_none_running_come_first() {
        let mut b = board(&["a", "a", "b"]);
        let now = Instant::now();
        assert_eq!(b.take(false, now), Take::Run(0));
        assert_eq!(b.start(0, now), None);
        assert_eq!(b.take(false, now), Take::Run(2), "b has no job running");
        assert_eq!(b.take(true, now), Take::Run(2));
    }

    #[test]
    fn a_second_job_of_an_item_waits_once_its_running_job_may_be_hanging() {
        let mut b = board(&["a", "a"]);
        let t0 = Instant::now();
        b.start(0, t0);
        // Young: a base worker may run a sibling beside it; a spare never does.
        assert_eq!(b.take(false, t0 + Duration::from_millis(100)), Take::Run(1));
        assert_eq!(b.take(true, t0 + Duration::from_millis(100)), Take::Wait);
        // Past SUSPECT_AFTER: everyone waits for its end.
        let later = t0 + SUSPECT_AFTER + Duration::from_millis(1);
        assert_eq!(b.take(false, later), Take::Wait);
        assert_eq!(b.take(true, later), Take::Wait);
        // It passed: the sibling runs.
        b.finish(0, t0, "s::first", Mark::Done, "ok");
        assert_eq!(b.take(false, later), Take::Run(1));
    }

    #[test]
    fn once_a_job_hung_its_item_is_reported_not_run_at_once() {
        let mut b = board(&["a", "a", "a"]);
        let t0 = Instant::now();
        b.start(0, t0);
        b.start(1, t0);
        b.finish(0, t0, "s::first", Mark::Hung, "hung");
        // Job 1 of the same item still runs; job 2 is taken at once, to be reported.
        let later = t0 + SUSPECT_AFTER * 5;
        assert_eq!(b.take(false, later), Take::Run(2));
        assert_eq!(b.take(true, later), Take::Run(2));
        assert_eq!(b.start(2, later), Some("s::first".to_string()));
        assert_eq!(b.take(false, later), Take::Done);
        assert_eq!(b.busy(), 1);
        b.finish(1, t0, "s::second", Mark::Hung, "hung");
        assert_eq!((b.busy(), b.pending()), (0, false));
        assert_eq!(
            b.hung["a"], "s::first",
            "the first hang is the one reported"
        );
    }

    /// Once a job of an item failed after a long wait, the item's other jobs run side by
    /// side, spare workers too: they likely wait as long.
    #[test]
    fn the_jobs_of_a_slow_item_run_side_by_side() {
        let mut b = board(&["a", "a", "a"]);
        let t0 = Instant::now();
        b.start(0, t0);
        let later = t0 + SUSPECT_AFTER * 5;
        b.finish(0, t0, "s::first", Mark::Slow, "failed late");
        b.start(1, later);
        assert_eq!(b.take(true, later + SUSPECT_AFTER * 2), Take::Run(2));
    }

    #[test]
    fn two_jobs_started_at_one_instant_end_one_at_a_time() {
        let mut b = board(&["a", "a"]);
        let t0 = Instant::now();
        b.start(0, t0);
        b.start(1, t0);
        b.finish(0, t0, "s::x", Mark::Done, "ok");
        assert_eq!(b.busy(), 1, "the other job still runs");
    }

    /// The pool runs every job once and hands back the results in job order.
    #[test]
    fn every_job_runs_once_in_order_of_results() {
        let jobs: Vec<Job<usize>> = (0..20)
            .map(|n| Job {
                item: format!("item{}", n % 4),
                memory: 0,
                what: n,
            })
            .collect();
        let results = run(
            &jobs,
            2,
            &|n| n.to_string(),
            &|n, _| (n * 10, Mark::Done),
            &|| false,
        );
        let got: Vec<usize> = results.into_iter().map(Option::unwrap).collect();
        assert_eq!(got, (0..20).map(|n| n * 10).collect::<Vec<_>>());
    }
}
