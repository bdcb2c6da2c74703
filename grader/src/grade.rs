//! The whole pipeline for one submission: stage, build, run tests, run checks, score.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::build::{self, Built};
use crate::check;
use crate::error::{Error, Result};
use crate::labfile::{Kind, Lab, Tree};
use crate::report::Report;
use crate::run::{self, RunEnv};
use crate::score::{self, ItemResult};
use crate::stage;
use crate::submission;

/// What a test says that was skipped because an earlier test of its item was stopped.
pub const NOT_RUN: &str =
    "not run: an earlier test of this item was stopped (it hung, or used too much memory)";

/// How to grade.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The seed of every random choice; drawn from the clock when absent.
    pub seed: Option<u64>,
    /// The shared cargo target folder for the lab (default: `<root>/target/grader/<slug>`).
    pub target_dir: Option<PathBuf>,
    /// Grade only these items (all when empty); the others score 0, marked "not run".
    pub only: Vec<String>,
    /// Print progress on stderr.
    pub progress: bool,
    /// Replaces every item's timeout (seconds).
    pub timeout_s: Option<f64>,
    /// Run only the tests whose `stem::name` contains this (checks are unaffected).
    pub test_filter: Option<String>,
}

impl Options {
    fn timeout(&self, lab: &Lab, item: &crate::labfile::Item) -> std::time::Duration {
        match self.timeout_s {
            Some(s) => std::time::Duration::from_secs_f64(s),
            None => lab.file.limits_for(item).timeout(),
        }
    }
}

/// Grades `submission` for lab `slug`.
///
/// `Err` only for a bad request (unknown lab, unreadable submission). When the grader
/// itself fails, the report says so (`gradable: false`) and carries the reason.
pub fn grade(tree: &Tree, slug: &str, submission: &Path, opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let seed = opts.seed.unwrap_or_else(clock_seed);
    let lab = match tree.lab(slug) {
        Ok(lab) => lab,
        Err(e) if e.is_usage() => return Err(e),
        Err(e) => return Ok(not_gradable_bare(slug, submission, seed, &e.to_string())),
    };
    let sub = submission::load(submission)?;
    let mut report = Report::new(
        &lab.file.slug,
        &lab.file.title,
        submission,
        lab.file.max_score(),
        seed,
    );
    if let Err(e) = grade_into(tree, &lab, &sub, opts, &mut report) {
        report = report.not_gradable(Some(&lab.file), &e.to_string());
    }
    // Whatever the pipeline made of runs that a signal cut short, it graded nothing.
    if let Err(e) = crate::interrupt::check() {
        report = report.not_gradable(Some(&lab.file), &e.to_string());
    }
    report.notes.extend(crate::isolate::note());
    report.score = report.items.iter().map(|i| i.score).sum();
    let ungraded: Vec<&ItemResult> = report
        .items
        .iter()
        .filter(|i| i.not_gradable_here.is_some())
        .collect();
    if !ungraded.is_empty() {
        let points: f64 = ungraded
            .iter()
            .filter_map(|i| lab.file.items.iter().find(|l| l.id == i.id))
            .map(|l| l.points)
            .sum();
        let ids: Vec<&str> = ungraded.iter().map(|i| i.id.as_str()).collect();
        report.max_score -= points;
        report.notes.push(format!(
            "{} item(s) could not be graded on this machine ({}): their {} points are left out \
             of the total. Install what they name and grade again.",
            ids.len(),
            ids.join(", "),
            crate::report::fmt_points(points)
        ));
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

fn grade_into(
    tree: &Tree,
    lab: &Lab,
    sub: &submission::Submission,
    opts: &Options,
    report: &mut Report,
) -> Result<()> {
    let say = |msg: &str| {
        if opts.progress {
            crate::errln!("grader: {msg}");
        }
    };
    let work = tempfile::Builder::new()
        .prefix(&format!("grader-{}-", lab.file.slug))
        .tempdir()
        .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
    // The student's identity may pass through to its own scratch folders, never list them.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711))
            .map_err(|e| Error::io(work.path(), e))?;
    }
    let staged_dir = work.path().join("stage");
    let out_dir = work.path().join("run");
    std::fs::create_dir_all(&staged_dir).map_err(|e| Error::io(&staged_dir, e))?;

    say("staging");
    let t0 = Instant::now();
    let staged = stage::stage(tree, lab, sub, &staged_dir, true)?;
    report.ignored = staged.ignored;
    report.notes = staged.notes;
    if staged.taken.is_empty() {
        report.notes.push(format!(
            "the submission has no file matching {}: the skeleton was graded",
            lab.file.editable.join(", ")
        ));
    }
    report.timing.stage_ms = t0.elapsed().as_millis() as u64;

    crate::interrupt::check()?;
    say("building");
    let t0 = Instant::now();
    let target = opts
        .target_dir
        .clone()
        .unwrap_or_else(|| default_target_dir(tree));
    let built = build::build(&staged_dir, &lab.file.slug, &target, &out_dir, &|dir| {
        stage::add_hidden(lab, dir)
    })?;
    report.timing.build_ms = t0.elapsed().as_millis() as u64;
    // The hidden tests' sources go as soon as they are compiled.
    let _ = std::fs::remove_dir_all(&staged_dir);
    let artifacts = match built {
        Built::Ok(a) => a,
        Built::CompileError(errors) => {
            report.items = ItemResult::all_failed(
                &lab.file,
                "the submission does not compile (see the compiler's errors above)",
            );
            report.compile_errors = Some(errors);
            return Ok(());
        }
    };
    report.compiled = true;
    crate::interrupt::check()?;

    let wanted = |id: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == id);
    let student = crate::isolate::student_identity();
    if student.is_none() {
        report.notes.push(
            "the grader is not root: the submission's code ran as the grader's own user, with \
             that user's access to this machine"
                .into(),
        );
    }
    let env = RunEnv {
        bins: artifacts.bins.clone(),
        scratch_root: work.path().join("scratch"),
        jail: true,
        student,
        fixtures: Some(tree.root.join("grader").join("fixtures")).filter(|f| f.is_dir()),
    };
    std::fs::create_dir_all(&env.scratch_root).map_err(|e| Error::io(&env.scratch_root, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&env.scratch_root, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| Error::io(&env.scratch_root, e))?;
    }
    let t0 = Instant::now();
    let mut test_results = Vec::new();
    let mut queue = Vec::new();
    for (stem, exe) in &artifacts.tests {
        let names = match run::list(&env, exe) {
            Ok(n) => n,
            Err(why) => {
                test_results.push(run::TestResult {
                    id: format!("{stem}::"),
                    passed: false,
                    message: format!("the test program `{stem}` could not list its tests: {why}"),
                    elapsed_ms: 0,
                    timed_out: false,
                });
                continue;
            }
        };
        for name in names {
            let id = format!("{stem}::{name}");
            let Some(item) = lab.file.items.iter().find(|i| i.matches_test(&id)) else {
                report.unassigned_tests.push(id);
                continue;
            };
            if !wanted(&item.id)
                || opts
                    .test_filter
                    .as_ref()
                    .is_some_and(|f| !id.contains(f.as_str()))
            {
                continue;
            }
            queue.push(TestJob {
                id,
                item,
                stem,
                exe,
                name,
            });
        }
    }
    test_results.extend(run_tests(&env, lab, opts, queue, &say));
    if let Some((stems, errors)) = &artifacts.hidden_error {
        let of_hidden = lab.file.items.iter().filter(|i| {
            i.kind == Kind::Test && stems.iter().any(|s| i.name.split("::").next() == Some(s))
        });
        for item in of_hidden {
            let stem = item.name.split("::").next().unwrap_or_default();
            test_results.push(run::TestResult {
                id: item.name.clone(),
                passed: false,
                message: format!(
                    "the hidden tests `{stem}` do not compile against your code: keep the name \
                     and signature of every public item as the skeleton has it. The compiler \
                     said:\n{errors}"
                ),
                elapsed_ms: 0,
                timed_out: false,
            });
        }
    }
    report.timing.tests_ms = t0.elapsed().as_millis() as u64;
    let mut by_item = score::group_tests(&lab.file, test_results);
    let t0 = Instant::now();

    let bins_dir = out_dir.join("bin");
    for item in &lab.file.items {
        if !wanted(&item.id) {
            report
                .items
                .push(ItemResult::new(item, false, "not run (--only)".into(), 0));
            continue;
        }
        let result = match item.kind {
            Kind::Test => score::test_item(item, by_item.remove(&item.id).unwrap_or_default()),
            Kind::Check => {
                if crate::labs::find(&lab.file.slug, &item.name).is_none() {
                    return Err(Error::LabFile {
                        path: lab.dir.join("lab.toml"),
                        message: format!(
                            "item `{}` names the check `{}`, which does not exist",
                            item.id, item.name
                        ),
                    });
                }
                crate::interrupt::check()?;
                say(&format!("check {}", item.name));
                let t0 = Instant::now();
                let v = check::run_in_child(
                    &env,
                    &lab.file.slug,
                    &item.name,
                    &bins_dir,
                    &work.path().join("results"),
                    report.seed,
                    opts.timeout(lab, item),
                    lab.file.limits_for(item).memory(),
                );
                let elapsed = t0.elapsed().as_millis() as u64;
                if let Some(why) = &v.not_gradable_here {
                    ItemResult::not_gradable_here(item, why, elapsed)
                } else {
                    let msg = if v.passed && v.message.is_empty() {
                        "passed".to_string()
                    } else {
                        v.message
                    };
                    ItemResult::new(item, v.passed, msg, elapsed)
                }
            }
        };
        report.items.push(result);
    }
    report.timing.checks_ms = t0.elapsed().as_millis() as u64;
    Ok(())
}

/// One test to run: its id (`stem::name`), its item, its test program.
struct TestJob<'a> {
    id: String,
    item: &'a crate::labfile::Item,
    stem: &'a str,
    exe: &'a Path,
    name: String,
}

/// How many tests run at once to begin with: two where every test runs in a PID namespace of
/// its own (its clean-up then touches only its own processes), else one.
fn test_workers(env: &RunEnv) -> usize {
    let parallel = env.jail && crate::init::provided() && crate::isolate::available();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if parallel { cores.clamp(1, 2) } else { 1 }
}

/// How often a spare worker looks whether the machine has a CPU to spare.
const SPARE_EVERY: Duration = Duration::from_millis(250);

/// A test running this long may be hanging: another test of its item waits for its end.
const SUSPECT_AFTER: Duration = Duration::from_secs(1);

/// Runs `queue`, [`test_workers`] tests at once, and returns the results in queue order.
///
/// An item is all or nothing: once one of its tests has hung (the grader's timeout, or the
/// test's own deadline), its tests not yet started are reported, not run, since they would
/// most likely hang too, each for the whole timeout. So the workers take tests of items with
/// no test running first, and never start a test of an item whose running test has taken
/// over [`SUSPECT_AFTER`]: they wait for its end instead, which says whether the rest runs.
///
/// A test that waits (on its deadline, on a child that never answers) holds no CPU. Where
/// tests run in parallel, up to as many spare workers again start a test each when, over
/// the last quarter second, a whole CPU of the machine stayed idle and the memory available
/// (the machine's, or the grader's cgroup's if less) holds one more test at its cap. Under
/// a CPU quota smaller than the CPUs the grader may run on, there are no spare workers. A spare worker takes only a test of an item with no test
/// running. A hanging submission's deadlines then run out side by side instead of one after
/// another, and a machine busy with real work gets no more load.
fn run_tests(
    env: &RunEnv,
    lab: &Lab,
    opts: &Options,
    queue: Vec<TestJob<'_>>,
    say: &(dyn Fn(&str) + Sync),
) -> Vec<run::TestResult> {
    use std::sync::{Condvar, Mutex};
    let board = Mutex::new(Board::new(
        queue.iter().map(|j| j.item.id.clone()).collect(),
    ));
    let ended = Condvar::new();
    let lock = || board.lock().unwrap_or_else(|e| e.into_inner());
    // Runs the next test; `false` once none is left (for a spare: none it may take now).
    let run_next =
        |spare: bool| -> bool {
            let (k, started) = {
                let mut b = lock();
                loop {
                    if crate::interrupt::signal().is_some() {
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
                    let job = &queue[k];
                    let started = Instant::now();
                    if let Some(first) = b.start(k, started) {
                        let r = run::TestResult {
                            id: job.id.clone(),
                            passed: false,
                            message: format!("{NOT_RUN} (`{first}`)"),
                            elapsed_ms: 0,
                            timed_out: false,
                        };
                        b.results[k] = Some(r);
                        continue;
                    }
                    break (k, started);
                }
            };
            let job = &queue[k];
            say(&format!("test {}", job.id));
            let timeout = opts.timeout(lab, job.item);
            let memory = lab.file.limits_for(job.item).memory();
            // A panic here must not leave the test marked running: the other workers wait for
            // its end.
            let run = || run::run_one(env, job.exe, job.stem, &job.name, timeout, memory);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .unwrap_or_else(|panic| run::TestResult {
                    id: job.id.clone(),
                    passed: false,
                    message: format!(
                        "the grader failed while running this test: {}",
                        panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("a panic")
                    ),
                    elapsed_ms: 0,
                    timed_out: false,
                });
            lock().finish(k, started, &job.id, result);
            ended.notify_all();
            true
        };
    let base = test_workers(env);
    let cap = queue
        .iter()
        .map(|j| lab.file.limits_for(j.item).memory())
        .max()
        .unwrap_or(0);
    // A spare worker: waits for an idle CPU while the others are busy, then runs one test.
    // It waits on `ended`, not in a sleep, so that it is gone as soon as the last test is.
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
                (
                    b.busy(),
                    !b.pending() || crate::interrupt::signal().is_some(),
                )
            };
            if done {
                return;
            }
            if measured.elapsed() < SPARE_EVERY {
                continue;
            }
            let idle = meter.idle_cpus();
            measured = Instant::now();
            if busy >= base
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
    let spares = if base > 1
        && crate::cgroup::cpu_quota()
            .is_none_or(|q| IdleMeter::times().is_none_or(|(_, _, cpus)| q >= cpus as f64))
    {
        base
    } else {
        0
    };
    std::thread::scope(|s| {
        for _ in 0..spares {
            s.spawn(spare);
        }
        for _ in 1..base {
            s.spawn(|| while run_next(false) {});
        }
        while run_next(false) {}
    });
    let board = board.into_inner().unwrap_or_else(|e| e.into_inner());
    board.results.into_iter().flatten().collect()
}

/// The state of [`run_tests`]: which tests are waiting, running, hung and done.
struct Board {
    /// The item of each test of the queue.
    items: Vec<String>,
    /// Whether each test is still to be taken.
    next: Vec<bool>,
    /// When each running test of each item started.
    running: std::collections::BTreeMap<String, Vec<Instant>>,
    /// The first test of each item that hung.
    hung: std::collections::BTreeMap<String, String>,
    results: Vec<Option<run::TestResult>>,
}

/// What a worker is to do next.
#[derive(Debug, PartialEq, Eq)]
enum Take {
    /// Start (or report as not run) this test of the queue.
    Run(usize),
    /// Wait for a running test to end.
    Wait,
    /// Nothing is left to take.
    Done,
}

impl Board {
    fn new(items: Vec<String>) -> Board {
        let n = items.len();
        Board {
            items,
            next: vec![true; n],
            running: Default::default(),
            hung: Default::default(),
            results: (0..n).map(|_| None).collect(),
        }
    }

    fn pending(&self) -> bool {
        self.next.contains(&true)
    }

    /// How many tests are running.
    fn busy(&self) -> usize {
        self.running.values().map(Vec::len).sum()
    }

    /// The next test for a worker, at `now`: one of a hung item (to report it not run), else
    /// one of an item with no test running, else (not for a `spare`) one of an item whose
    /// running tests are all younger than [`SUSPECT_AFTER`].
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

    /// Test `k` is taken at `at`: running, or, when its item has hung, the first test that
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

    /// Test `k` (`id`), started at `started`, ended with `result`.
    fn finish(&mut self, k: usize, started: Instant, id: &str, result: run::TestResult) {
        let item = &self.items[k];
        if let Some(starts) = self.running.get_mut(item) {
            if let Some(i) = starts.iter().position(|&t| t == started) {
                starts.swap_remove(i);
            }
            if starts.is_empty() {
                self.running.remove(item);
            }
        }
        if result.timed_out {
            self.hung
                .entry(item.clone())
                .or_insert_with(|| id.to_owned());
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
    crate::cgroup::memory_headroom().map_or(machine, |h| h.min(machine))
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

/// The target folder every grading on this machine shares, whatever the lab: the labs'
/// common dependencies (nix, the test helpers) compile once, and each lab keeps its build
/// folder beside it (`labs.crates/<slug>`, see [`build::build`]).
pub fn default_target_dir(tree: &Tree) -> PathBuf {
    tree.root.join("target").join("grader").join("labs")
}

fn not_gradable_bare(slug: &str, submission: &Path, seed: u64, why: &str) -> Report {
    Report::new(slug, slug, submission, 0.0, seed).not_gradable(None, why)
}

fn clock_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64 ^ (std::process::id() as u64).rotate_left(32)) % 1_000_000_007
}

/// Reports a failure to write results as "not gradable", never as a silent success.
pub fn write_outputs(
    report: &Report,
    json: Option<&Path>,
    gradescope: Option<&Path>,
    junit: Option<&Path>,
) -> std::io::Result<()> {
    if let Some(p) = json {
        Report::write_atomic(p, &report.to_json())?;
    }
    if let Some(p) = gradescope {
        Report::write_atomic(p, &report.to_gradescope())?;
    }
    if let Some(p) = junit {
        Report::write_atomic(p, &report.to_junit())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(items: &[&str]) -> Board {
        Board::new(items.iter().map(|s| s.to_string()).collect())
    }

    fn result(id: &str, timed_out: bool) -> run::TestResult {
        run::TestResult {
            id: id.into(),
            passed: !timed_out,
            message: String::new(),
            elapsed_ms: 0,
            timed_out,
        }
    }

    #[test]
    fn tests_of_items_with_none_running_come_first() {
        let mut b = board(&["a", "a", "b"]);
        let now = Instant::now();
        assert_eq!(b.take(false, now), Take::Run(0));
        assert_eq!(b.start(0, now), None);
        assert_eq!(b.take(false, now), Take::Run(2), "b has no test running");
        assert_eq!(b.take(true, now), Take::Run(2));
    }

    #[test]
    fn a_second_test_of_an_item_waits_once_its_running_test_may_be_hanging() {
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
        b.finish(0, t0, "s::first", result("s::first", false));
        assert_eq!(b.take(false, later), Take::Run(1));
    }

    #[test]
    fn once_a_test_hung_its_item_is_reported_not_run_at_once() {
        let mut b = board(&["a", "a", "a"]);
        let t0 = Instant::now();
        b.start(0, t0);
        b.start(1, t0);
        b.finish(0, t0, "s::first", result("s::first", true));
        // Test 1 of the same item still runs; test 2 is taken at once, to be reported.
        let later = t0 + SUSPECT_AFTER * 5;
        assert_eq!(b.take(false, later), Take::Run(2));
        assert_eq!(b.take(true, later), Take::Run(2));
        assert_eq!(b.start(2, later), Some("s::first".to_string()));
        assert_eq!(b.take(false, later), Take::Done);
        assert_eq!(b.busy(), 1);
        b.finish(1, t0, "s::second", result("s::second", true));
        assert_eq!((b.busy(), b.pending()), (0, false));
        assert_eq!(
            b.hung["a"], "s::first",
            "the first hang is the one reported"
        );
    }

    #[test]
    fn two_tests_started_at_one_instant_end_one_at_a_time() {
        let mut b = board(&["a", "a"]);
        let t0 = Instant::now();
        b.start(0, t0);
        b.start(1, t0);
        b.finish(0, t0, "s::x", result("s::x", false));
        assert_eq!(b.busy(), 1, "the other test still runs");
    }
}
