//! The whole pipeline for one submission: stage, build, run tests, run checks, score.
//!
//! Its length is the pipeline read top to bottom in one place (each step is a function of
//! its own module; what stays here is the order and what one step hands the next).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::build::{self, Built};
use crate::check;
use crate::error::{Error, Result};
use crate::labfile::{Kind, Lab, Tree};
use crate::report::Report;
use crate::run::{self, RunEnv};
use crate::schedule;

mod jobs;
use crate::score::{self, ItemResult};
use crate::stage;
use crate::submission;
use jobs::{Done, TestJob, Work, panic_text, run_test, workers};

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
    /// A student's own grading (`cargo grade` in the handout): only the items graded locally
    /// ([`crate::labfile::Item::graded_locally`]), no hidden test, and the code runs as the
    /// user who runs it, with no jail (nothing needs root on one's own machine).
    pub local: bool,
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
    if let Some(why) = &sub.unreadable {
        // An archive that does not open is the student's: a 0 with the reason, not retried.
        report = report.unreadable_upload(&lab.file, why);
    } else if let Err(e) = grade_into(tree, &lab, &sub, opts, &mut report) {
        report = report.not_gradable(Some(&lab.file), &e.to_string());
    }
    // Whatever the pipeline made of runs that a signal cut short, it graded nothing.
    if let Err(e) = crate::interrupt::check() {
        report = report.not_gradable(Some(&lab.file), &e.to_string());
    }
    report.notes.extend(crate::sandbox::isolate::note());
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
    let later: Vec<&ItemResult> = report.items.iter().filter(|i| i.after_submission).collect();
    if !later.is_empty() {
        let points: f64 = later
            .iter()
            .filter_map(|i| lab.file.item(&i.id))
            .map(|l| l.points)
            .sum();
        let ids: Vec<&str> = later.iter().map(|i| i.id.as_str()).collect();
        report.max_score -= points;
        report.notes.push(format!(
            "graded after you submit: {} ({} points)",
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
    // A student's own grading hands over `src/` itself.
    report
        .notes
        .retain(|n| !(opts.local && n.starts_with("no file sat under src/")));
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
    let later = |item: &crate::labfile::Item| opts.local && !item.graded_locally();
    let wanted = |id: &str| {
        (opts.only.is_empty() || opts.only.iter().any(|o| o == id))
            && lab.file.item(id).is_none_or(|i| !later(i))
    };
    // The test files of the items graded.
    let wanted_stems: std::collections::BTreeSet<&str> = lab
        .file
        .items
        .iter()
        .filter(|i| i.kind == Kind::Test && wanted(&i.id))
        .filter_map(|i| i.name.split("::").next())
        .collect();
    let built = build::build(
        &staged_dir,
        &lab.file.slug,
        &target,
        &out_dir,
        &|dir| {
            if opts.local {
                Ok(Vec::new())
            } else {
                stage::add_hidden(lab, dir)
            }
        },
        &|stem| wanted_stems.contains(stem),
    )?;
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

    let student = if opts.local {
        None
    } else {
        crate::sandbox::isolate::student_identity()
    };
    if student.is_none() && !opts.local {
        report.notes.push(
            "the grader is not root: the submission's code ran as the grader's own user, with \
             that user's access to this machine"
                .into(),
        );
    }
    let env = RunEnv {
        bins: artifacts.bins.clone(),
        scratch_root: work.path().join("scratch"),
        jail: !opts.local,
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
                test_results.push(run::TestResult::failed(
                    &format!("{stem}::"),
                    format!("the test program `{stem}` could not list its tests: {why}"),
                    0,
                ));
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
    // The grader knows the lab, and every check item names a check that exists, before
    // anything runs.
    if crate::labs::checks(&lab.file.slug).is_none() {
        return Err(Error::LabFile {
            path: lab.dir.join("lab.toml"),
            message: format!(
                "the grader has no lab `{}` (add it to grader::labs::LABS)",
                lab.file.slug
            ),
        });
    }
    for item in lab.file.items.iter().filter(|i| i.kind == Kind::Check) {
        if crate::labs::find(&lab.file.slug, &item.name).is_none() {
            return Err(Error::LabFile {
                path: lab.dir.join("lab.toml"),
                message: format!(
                    "item `{}` names the check `{}`, which does not exist",
                    item.id, item.name
                ),
            });
        }
    }
    let bins_dir = out_dir.join("bin");
    let results_dir = work.path().join("results");
    let report_seed = report.seed;
    let run_check = |item: &crate::labfile::Item| -> ItemResult {
        let t0 = Instant::now();
        let run = || {
            check::run_in_child(
                &env,
                &lab.file.slug,
                &item.name,
                &bins_dir,
                &results_dir,
                report_seed,
                opts.timeout(lab, item),
                lab.file.limits_for(item).memory(),
            )
        };
        let v =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
                check::Verdict {
                    passed: false,
                    message: String::new(),
                    not_gradable_here: Some(format!(
                        "the grader failed while running this check: {}",
                        panic_text(&*panic)
                    )),
                }
            });
        let elapsed = t0.elapsed().as_millis() as u64;
        let verdict = if v.not_gradable_here.is_some() {
            "n/a "
        } else if v.passed {
            "ok  "
        } else {
            "FAIL"
        };
        say(&format!(
            "{verdict} {} ({:.1} s)",
            item.id,
            elapsed as f64 / 1e3
        ));
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
    };
    // Tests and the checks that may run beside them share one pool; the checks that must
    // run alone (they measure speed, or load every CPU) follow, one at a time.
    let side_checks = lab
        .file
        .items
        .iter()
        .filter(|i| i.kind == Kind::Check && !i.alone && wanted(&i.id));
    let mut jobs: Vec<schedule::Job<Work>> = queue
        .into_iter()
        .map(|t| schedule::Job {
            item: t.item.id.clone(),
            memory: lab.file.limits_for(t.item).memory(),
            what: Work::Test(t),
        })
        .collect();
    jobs.extend(side_checks.map(|item| schedule::Job {
        item: item.id.clone(),
        memory: lab.file.limits_for(item).memory(),
        what: Work::Check(item),
    }));
    // A line of progress once every test of an item has ended: (tests left, any failed).
    let left: std::sync::Mutex<std::collections::BTreeMap<&str, (usize, bool)>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    for job in &jobs {
        if let Work::Test(t) = &job.what {
            left.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(t.item.id.as_str())
                .or_insert((0, false))
                .0 += 1;
        }
    }
    let test_ended = |item: &str, passed: bool| {
        let mut left = left.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, failed)) = left.get_mut(item) {
            *n -= 1;
            *failed |= !passed;
            if *n == 0 {
                say(&format!("{} {item}", if *failed { "FAIL" } else { "ok  " }));
            }
        }
    };
    let runner = |w: &Work, hung: Option<&str>| -> (Done, schedule::Mark) {
        if let (Work::Test(job), Some(_)) = (w, hung) {
            test_ended(&job.item.id, false);
        }
        match (w, hung) {
            (Work::Test(job), Some(first)) => (
                Done::Test(run::TestResult {
                    id: job.id.clone(),
                    outcome: run::Outcome::NotRun(first.to_owned()),
                    elapsed_ms: 0,
                }),
                schedule::Mark::Done,
            ),
            (Work::Test(job), None) => {
                let r = run_test(&env, lab, opts, job);
                test_ended(&job.item.id, r.passed());
                let mark = if r.stopped() {
                    schedule::Mark::Hung
                } else if !r.passed() && r.elapsed_ms >= schedule::SUSPECT_AFTER.as_millis() as u64
                {
                    schedule::Mark::Slow
                } else {
                    schedule::Mark::Done
                };
                (Done::Test(r), mark)
            }
            (Work::Check(item), _) => (Done::Check(run_check(item)), schedule::Mark::Done),
        }
    };
    let name = |w: &Work| match w {
        Work::Test(t) => t.id.clone(),
        Work::Check(i) => i.id.clone(),
    };
    let stop = || crate::interrupt::signal().is_some();
    let mut checked = std::collections::BTreeMap::new();
    for done in schedule::run(&jobs, workers(&env), &name, &runner, &stop)
        .into_iter()
        .flatten()
    {
        match done {
            Done::Test(r) => test_results.push(r),
            Done::Check(r) => {
                checked.insert(r.id.clone(), r);
            }
        }
    }
    crate::interrupt::check()?;
    if let Some((stems, errors)) = &artifacts.hidden_error {
        let of_hidden = lab.file.items.iter().filter(|i| {
            i.kind == Kind::Test && stems.iter().any(|s| i.name.split("::").next() == Some(s))
        });
        for item in of_hidden {
            let stem = item.name.split("::").next().unwrap_or_default();
            test_results.push(run::TestResult::failed(
                &item.name,
                format!(
                    "the hidden tests `{stem}` do not compile against your code: keep the name \
                     and signature of every public item as the skeleton has it. The compiler \
                     said:\n{errors}"
                ),
                0,
            ));
        }
    }
    report.timing.tests_ms = t0.elapsed().as_millis() as u64;
    let mut by_item = score::group_tests(&lab.file, test_results);
    let t0 = Instant::now();
    for item in &lab.file.items {
        if later(item) {
            report.items.push(ItemResult::after_submission(item));
            continue;
        }
        if !wanted(&item.id) {
            report.items.push(ItemResult::not_run(item));
            continue;
        }
        let result = match item.kind {
            Kind::Test => score::test_item(item, by_item.remove(&item.id).unwrap_or_default()),
            Kind::Check => match checked.remove(&item.id) {
                Some(r) => r,
                None => {
                    crate::interrupt::check()?;
                    run_check(item)
                }
            },
        };
        report.items.push(result);
    }
    report.timing.checks_ms = t0.elapsed().as_millis() as u64;
    Ok(())
}

/// The target folder every grading on this machine shares, whatever the lab: the labs'
/// common dependencies (nix, the test helpers) compile once, and each lab keeps its build
/// folder beside it (`labs.crates/<slug>`, see [`build::build`]). Under `$CARGO_TARGET_DIR`
/// when it is set, as cargo's own output is.
pub fn default_target_dir(tree: &Tree) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tree.root.join("target"))
        .join("grader")
        .join("labs")
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
