//! `cargo xtask bench --only hangs`: how long a deadlocked submission of each lab takes to
//! grade, against the goal of 30 s. Each lab's deadlock is a patch of its reference in
//! `hangs/<slug>.patch` (the mutant format: what hangs, and the items it loses), graded whole
//! through the `grader` binary, one lab after another. The report names the items that took
//! longest, and says whether every item the patch names failed, so that a faster grading is
//! never one that stopped judging.

use anyhow::{Result, bail};
use grader::labfile::Tree;
use grader::mutants::Mutant;

/// The goal: any deadlocked submission graded in this many seconds.
const GOAL_S: f64 = 30.0;

pub fn run(tree: &Tree) -> Result<()> {
    let exe = crate::verify::build_grader(tree)?;
    let dir = crate::root().join("xtask/src/bench/hangs");
    let scratch = tempfile::tempdir()?;
    let mut over = Vec::new();
    for slug in tree.slugs()? {
        let lab = tree.lab(&slug)?;
        let m = Mutant::load(&dir.join(format!("{slug}.patch")))?;
        let sub = scratch.path().join(&slug);
        m.apply(&lab.solution, &sub)?;
        // A first grading builds it; the second is the one timed, as a regrade.
        grader::verify::grade_with(&exe, &tree.root, &slug, &sub).map_err(anyhow::Error::msg)?;
        let r = grader::verify::grade_with(&exe, &tree.root, &slug, &sub)
            .map_err(anyhow::Error::msg)?;
        let mut slowest: Vec<(u64, &str)> = r
            .items
            .iter()
            .map(|i| (i.elapsed_ms, i.id.as_str()))
            .collect();
        slowest.sort_unstable_by(|a, b| b.cmp(a));
        let caught = m
            .loses
            .iter()
            .all(|(id, _)| r.items.iter().any(|i| &i.id == id && !i.passed));
        println!(
            "{slug:13} {:5.1} s (goal {GOAL_S:.0} s; build {:.1} s, tests and side checks {:.1} s, \
             checks alone {:.1} s); slowest items: {}; {}",
            r.elapsed_s,
            r.timing.build_ms as f64 / 1e3,
            r.timing.tests_ms as f64 / 1e3,
            r.timing.checks_ms as f64 / 1e3,
            slowest
                .iter()
                .take(3)
                .map(|(ms, id)| format!("{id} {:.1} s", *ms as f64 / 1e3))
                .collect::<Vec<_>>()
                .join(", "),
            if caught {
                "every item it names failed".to_string()
            } else {
                format!("NOT every item it names failed ({})", m.path.display())
            }
        );
        if r.elapsed_s > GOAL_S || !caught {
            over.push(slug);
        }
    }
    if !over.is_empty() {
        bail!("over the goal or not judged: {}", over.join(", "));
    }
    Ok(())
}
