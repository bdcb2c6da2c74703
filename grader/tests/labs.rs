//! The invariants of every lab, through the `grader` binary as a course runs it: the staged
//! solution scores the maximum, the staged skeleton scores 0, and every mutant loses exactly
//! the items it names with a message that names the cause.

use std::path::{Path, PathBuf};

use grader::labfile::Tree;
use grader::report::Report;
use grader::verify;

fn tree() -> Tree {
    Tree::locate(Some(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))).unwrap()
}

fn grade(slug: &str, submission: &Path) -> Report {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_grader"));
    verify::grade_with(&exe, &tree().root, slug, submission)
        .unwrap_or_else(|e| panic!("{slug}: {e}"))
}

/// Runs `jobs` two at a time (the machine has two cores) and collects every failure.
fn run_pairwise(jobs: Vec<(String, Box<dyn FnOnce() -> Result<(), String> + Send>)>) {
    let mut failures = Vec::new();
    let mut jobs = jobs.into_iter();
    loop {
        let batch: Vec<_> = jobs.by_ref().take(2).collect();
        if batch.is_empty() {
            break;
        }
        let results: Vec<(String, Result<(), String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .into_iter()
                .map(|(name, job)| (name, s.spawn(job)))
                .collect();
            handles
                .into_iter()
                .map(|(name, h)| (name, h.join().unwrap_or_else(|_| Err("panicked".into()))))
                .collect()
        });
        for (name, r) in results {
            if let Err(e) = r {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The reference solution of every lab scores the maximum, and its skeleton scores 0.
#[test]
fn solutions_score_the_maximum_and_skeletons_zero() {
    let tree = tree();
    let mut jobs: Vec<(String, Box<dyn FnOnce() -> Result<(), String> + Send>)> = Vec::new();
    for slug in tree.slugs().unwrap() {
        let lab = tree.lab(&slug).unwrap();
        let (s1, s2) = (slug.clone(), slug.clone());
        let sol = lab.solution.clone();
        jobs.push((
            format!("{slug} solution"),
            Box::new(move || verify::expect_max(&grade(&s1, &sol))),
        ));
        let skel = lab.dir.clone();
        jobs.push((
            format!("{slug} skeleton"),
            Box::new(move || verify::expect_zero(&grade(&s2, &skel))),
        ));
    }
    run_pairwise(jobs);
}

/// Every mutant of every lab loses exactly the items it names, each with a message that
/// names the cause.
#[test]
fn every_mutant_loses_exactly_its_items() {
    let tree = tree();
    let scratch = tempfile::tempdir().unwrap();
    let mut jobs: Vec<(String, Box<dyn FnOnce() -> Result<(), String> + Send>)> = Vec::new();
    let mut count = 0;
    for slug in tree.slugs().unwrap() {
        let lab = tree.lab(&slug).unwrap();
        let mutants = verify::materialise_mutants(&lab, &scratch.path().join(&slug)).unwrap();
        assert!(!mutants.is_empty(), "lab {slug} has no mutants");
        for (m, dir) in mutants {
            count += 1;
            let slug = slug.clone();
            jobs.push((
                format!("{slug} mutant {}", m.name),
                Box::new(move || verify::expect_mutant(&grade(&slug, &dir), &m)),
            ));
        }
    }
    assert!(count >= 6);
    run_pairwise(jobs);
}
