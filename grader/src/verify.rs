//! The lab invariants, as judgements on reports: the solution scores the maximum, the
//! skeleton scores 0, each mutant loses exactly the items it names with a message that names
//! the cause. `cargo xtask verify` and the grader's own tests both judge through here.

use std::collections::BTreeSet;

use crate::mutants::Mutant;
use crate::report::Report;

fn failing(report: &Report) -> BTreeSet<String> {
    report
        .items
        .iter()
        .filter(|i| !i.passed)
        .map(|i| i.id.clone())
        .collect()
}

fn summary(report: &Report, ids: &BTreeSet<String>) -> String {
    let mut s = String::new();
    for item in report.items.iter().filter(|i| ids.contains(&i.id)) {
        s.push_str(&format!(
            "\n  [{}] {}",
            item.id,
            item.message.replace('\n', "\n      ")
        ));
    }
    s
}

fn gradable(report: &Report) -> Result<(), String> {
    if !report.gradable {
        return Err(format!(
            "not gradable: {}",
            report.error.as_deref().unwrap_or("?")
        ));
    }
    if let Some(i) = report.items.iter().find(|i| i.not_gradable_here.is_some()) {
        return Err(format!(
            "cannot be verified on this machine: item `{}` is not gradable here: {}",
            i.id,
            i.not_gradable_here.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The reference solution must pass every item.
pub fn expect_max(report: &Report) -> Result<(), String> {
    gradable(report)?;
    if let Some(errors) = &report.compile_errors {
        return Err(format!("the solution does not compile:\n{errors}"));
    }
    if !report.unassigned_tests.is_empty() {
        return Err(format!(
            "tests that no rubric item claims (add them to an item's `name` in lab.toml): {}",
            report.unassigned_tests.join(", ")
        ));
    }
    let failed = failing(report);
    if !failed.is_empty() || report.score < report.max_score {
        return Err(format!(
            "the solution scores {}/{}; failing items:{}",
            report.score,
            report.max_score,
            summary(report, &failed)
        ));
    }
    Ok(())
}

/// `report` without the items this machine could not grade for want of CPU (one CPU only,
/// or too busy with other work to time a speed item): what their checks say then is "not
/// gradable here", rightly, and it is no verdict on the submission.
pub fn without_machine_limits(mut report: Report) -> Report {
    report.items.retain(|i| {
        !i.not_gradable_here
            .as_deref()
            .is_some_and(|why| why.contains("only one CPU") || why.contains("too busy to time"))
    });
    report
}

/// The skeleton must compile and fail every item.
pub fn expect_zero(report: &Report) -> Result<(), String> {
    gradable(report)?;
    if let Some(errors) = &report.compile_errors {
        return Err(format!(
            "the skeleton does not compile (a student must start from code that builds):\n{errors}"
        ));
    }
    let passed: Vec<&str> = report
        .items
        .iter()
        .filter(|i| i.passed)
        .map(|i| i.id.as_str())
        .collect();
    if !passed.is_empty() || report.score != 0.0 {
        return Err(format!(
            "the skeleton scores {} and passes {}",
            report.score,
            passed.join(", ")
        ));
    }
    Ok(())
}

/// A mutant must fail exactly the items it names, with the expected words in each message.
pub fn expect_mutant(report: &Report, mutant: &Mutant) -> Result<(), String> {
    gradable(report)?;
    if let Some(errors) = &report.compile_errors {
        return Err(format!(
            "mutant {} does not compile:\n{errors}",
            mutant.name
        ));
    }
    let want: BTreeSet<String> = mutant.loses.iter().map(|(id, _)| id.clone()).collect();
    let got = failing(report);
    let mut problems = Vec::new();
    for id in &want {
        if report.items.iter().all(|i| &i.id != id) {
            problems.push(format!("names `{id}`, which is not an item of the lab"));
        }
    }
    let missed: BTreeSet<_> = want.difference(&got).cloned().collect();
    if !missed.is_empty() {
        problems.push(format!(
            "should fail but passes: {}",
            missed.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let extra: BTreeSet<_> = got.difference(&want).cloned().collect();
    if !extra.is_empty() {
        problems.push(format!(
            "fails items it does not name:{}",
            summary(report, &extra)
        ));
    }
    for item in report.items.iter().filter(|i| !readable(&i.message)) {
        problems.push(format!(
            "the message of `{}` holds terminal escape codes or other control bytes, which \
             Gradescope and the JSON report show as garbage: {:?}",
            item.id,
            crate::run::clip(&item.message, 300)
        ));
    }
    for (id, expect) in &mutant.loses {
        let (Some(expect), Some(item)) = (expect, report.items.iter().find(|i| &i.id == id)) else {
            continue;
        };
        if !item.passed && !item.message.to_lowercase().contains(&expect.to_lowercase()) {
            problems.push(format!(
                "the message of `{id}` should say \"{expect}\" but says:\n      {}",
                item.message.replace('\n', "\n      ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "mutant {} ({}): {}",
            mutant.name,
            mutant.why,
            problems.join("; ")
        ))
    }
}

/// Two gradings of one submission must pass and fail the same items.
pub fn same_verdicts(first: &Report, second: &Report) -> Result<(), String> {
    let differ: Vec<String> = first
        .items
        .iter()
        .filter_map(|a| {
            let b = second.items.iter().find(|b| b.id == a.id)?;
            (a.passed != b.passed).then(|| {
                format!(
                    "`{}` {} the first time and {} the second:\n      {}\n      ---\n      {}",
                    a.id,
                    if a.passed { "passed" } else { "failed" },
                    if b.passed { "passed" } else { "failed" },
                    a.message.replace('\n', "\n      "),
                    b.message.replace('\n', "\n      ")
                )
            })
        })
        .collect();
    if differ.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the verdict depends on luck: {}",
            differ.join("; ")
        ))
    }
}

/// A student's own grading (`--local`) must pass and fail every item it grades as the
/// course's grading does.
pub fn same_local_verdicts(course: &Report, local: &Report) -> Result<(), String> {
    if !local.gradable {
        return Err(format!(
            "cargo grade could not grade it: {}",
            local.error.as_deref().unwrap_or("?")
        ));
    }
    let differ: Vec<String> = local
        .items
        .iter()
        // An item `cargo grade` cannot grade on this machine (it says so, and leaves its
        // points out) passes or fails nowhere here.
        .filter(|l| !l.after_submission && !l.not_run && l.not_gradable_here.is_none())
        .filter_map(|l| {
            let c = course.items.iter().find(|c| c.id == l.id)?;
            (c.passed != l.passed).then(|| {
                format!(
                    "`{}` {} in the course's grading and {} in `cargo grade`:\n      {}\n      \
                     ---\n      {}",
                    l.id,
                    if c.passed { "passed" } else { "failed" },
                    if l.passed { "passed" } else { "failed" },
                    c.message.replace('\n', "\n      "),
                    l.message.replace('\n', "\n      ")
                )
            })
        })
        .collect();
    if differ.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cargo grade disagrees with the course's grader: {}",
            differ.join("; ")
        ))
    }
}

/// [`grade_only_with`] as a student's own grading (`--local`).
pub fn grade_local_with(
    exe: &std::path::Path,
    root: &std::path::Path,
    slug: &str,
    submission: &std::path::Path,
) -> Result<Report, String> {
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--root".as_ref(),
        root.as_os_str(),
        "grade".as_ref(),
        slug.as_ref(),
    ])
    .arg(submission)
    .arg("--local");
    run_for_report(cmd)
}

/// A mutant graded only on the items it names (`grade --only`) must fail each of them, with
/// the expected words. [`expect_mutant`] also proves every other item passes; this weaker
/// judgement costs only the named items' tests and checks.
pub fn expect_caught(report: &Report, mutant: &Mutant) -> Result<(), String> {
    let mut named = report.clone();
    named
        .items
        .retain(|i| mutant.loses.iter().any(|(id, _)| id == &i.id));
    expect_mutant(&named, mutant)
}

/// Whether a message reads as text: no escape code (colours), no control byte but newline
/// and tab, no replacement character left by raw binary output.
pub fn readable(message: &str) -> bool {
    !message
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{fffd}')
}

/// Grades `submission` with the `grader` binary at `exe` (as a course would run it) and
/// returns its JSON report. The binary is a separate process so that its subreaper and
/// clean-up never touch the caller's processes.
pub fn grade_with(
    exe: &std::path::Path,
    root: &std::path::Path,
    slug: &str,
    submission: &std::path::Path,
) -> Result<Report, String> {
    grade_only_with(exe, root, slug, submission, &[])
}

/// [`grade_with`], grading only the items `only` (all of them when empty).
pub fn grade_only_with(
    exe: &std::path::Path,
    root: &std::path::Path,
    slug: &str,
    submission: &std::path::Path,
    only: &[String],
) -> Result<Report, String> {
    grade_command(
        std::process::Command::new(exe),
        root,
        slug,
        submission,
        only,
    )
}

/// [`grade_only_with`] through `grader`, a command that runs the grader (set up as the caller
/// likes: pinned to a CPU, in a cgroup).
pub fn grade_command(
    mut grader: std::process::Command,
    root: &std::path::Path,
    slug: &str,
    submission: &std::path::Path,
    only: &[String],
) -> Result<Report, String> {
    grader
        .arg("--root")
        .arg(root)
        .args(["grade", slug])
        .arg(submission)
        .args(only.iter().flat_map(|id| ["--only", id.as_str()]));
    run_for_report(grader)
}

/// Runs `grader` (a `grader grade ...` command) with `--json` and `--quiet`, and reads the
/// report it wrote.
fn run_for_report(mut grader: std::process::Command) -> Result<Report, String> {
    let exe = std::path::PathBuf::from(grader.get_program());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let json = dir.path().join("report.json");
    let out = grader
        .arg("--json")
        .arg(&json)
        .arg("--quiet")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let text = std::fs::read_to_string(&json).map_err(|e| {
        format!(
            "the grader wrote no report ({e}); it exited with {} and said:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("unreadable report: {e}"))
}

/// The mutants of `lab`, each applied to a copy of the solution under `scratch`.
pub fn materialise_mutants(
    lab: &crate::labfile::Lab,
    scratch: &std::path::Path,
) -> crate::Result<Vec<(Mutant, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for path in lab.mutant_paths()? {
        let m = Mutant::load(&path)?;
        let dir = scratch.join(&m.name);
        m.apply(&lab.solution, &dir)?;
        out.push((m, dir));
    }
    Ok(out)
}
