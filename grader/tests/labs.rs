//! The invariants of every lab, through the `grader` binary as a course runs it: the staged
//! solution scores the maximum, the staged skeleton scores 0, and every mutant fails the items
//! it names with a message that names the cause.
//!
//! Mutants are graded on their named items only (`--only`), leaving out the speed checks
//! (`alone`) of a mutant that other items catch too: that every *other* item still passes,
//! and every named item fails, twice, is `cargo xtask verify`'s stricter judgement, which a
//! lab's author runs; here it would cost every item's tests and checks once per mutant of
//! every lab.

mod common;

use std::path::{Path, PathBuf};

use common::{Job, OneCpu, QuotaGroup, one_cpu_grader, run_pairwise};

use grader::labfile::Tree;
use grader::report::Report;
use grader::verify;

fn tree() -> Tree {
    Tree::locate(Some(&common::root())).unwrap()
}

fn grade(slug: &str, submission: &Path) -> Report {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_grader"));
    verify::grade_with(&exe, &tree().root, slug, submission)
        .unwrap_or_else(|e| panic!("{slug}: {e}"))
}

fn grade_only(slug: &str, submission: &Path, only: &[String]) -> Report {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_grader"));
    verify::grade_only_with(&exe, &tree().root, slug, submission, only)
        .unwrap_or_else(|e| panic!("{slug}: {e}"))
}

/// The reference solution of every lab scores the maximum, and its skeleton scores 0; a
/// student's own grading of each (`cargo grade`, `--local`) passes and fails every item it
/// grades as the course's grading does, but for the reference's speed and load checks
/// (`alone`), which each grading measures again beside this test's others.
#[test]
fn solutions_score_the_maximum_and_skeletons_zero() {
    let tree = tree();
    let mut jobs: Vec<Job> = Vec::new();
    for slug in tree.slugs().unwrap() {
        let lab = tree.lab(&slug).unwrap();
        let (s1, s2) = (slug.clone(), slug.clone());
        let sol = lab.solution.clone();
        // The checks that run alone measure speed or behaviour under load: two gradings
        // measure twice, beside this test's other gradings, and may land on both sides of a
        // bar. Each must still pass in the course's grading; equality is asked of the rest.
        let measured = alone_items(&lab);
        jobs.push((
            format!("{slug} solution"),
            Box::new(move || {
                let course = grade(&s1, &sol);
                verify::expect_max(&verify::without_machine_limits(course.clone()))?;
                let mut local = grade_local(&s1, &sol)?;
                local.items.retain(|i| !measured.contains(&i.id));
                verify::same_local_verdicts(&course, &local)
            }),
        ));
        let skel = lab.dir.clone();
        jobs.push((
            format!("{slug} skeleton"),
            Box::new(move || {
                let course = grade(&s2, &skel);
                verify::expect_zero(&course)?;
                verify::same_local_verdicts(&course, &grade_local(&s2, &skel)?)
            }),
        ));
    }
    run_pairwise(jobs);
}

/// The ids of `lab`'s checks that run alone (speed, and behaviour under load).
fn alone_items(lab: &grader::labfile::Lab) -> Vec<String> {
    lab.file
        .items
        .iter()
        .filter(|i| i.alone)
        .map(|i| i.id.clone())
        .collect()
}

fn grade_local(slug: &str, submission: &Path) -> Result<Report, String> {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_grader"));
    verify::grade_local_with(&exe, &tree().root, slug, submission)
}

/// Every lab's reference scores the maximum on one CPU, as many autograder containers give:
/// once with the grader pinned to one CPU (two such gradings at a time, one on each CPU),
/// once under a CFS quota of one CPU with every CPU visible. An item whose comparison
/// means nothing with one CPU may say so ("not gradable here"), never fail.
#[test]
fn solutions_score_the_maximum_on_one_cpu() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: this machine's grader cannot be put in a cgroup of its own");
        return;
    }
    let tree = tree();
    let group = std::sync::Arc::new(QuotaGroup::new().expect("a cgroup with a CPU quota"));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut jobs: Vec<Job> = Vec::new();
    for (k, slug) in tree.slugs().unwrap().into_iter().enumerate() {
        let sol = tree.lab(&slug).unwrap().solution;
        for how in [OneCpu::Affinity(k % cpus), OneCpu::Quota] {
            let (slug, sol, group) = (slug.clone(), sol.clone(), group.clone());
            jobs.push((
                format!("{slug} solution, one CPU by {how:?}"),
                Box::new(move || {
                    let exe = PathBuf::from(env!("CARGO_BIN_EXE_grader"));
                    let cmd = one_cpu_grader(&exe, how, Some(&group));
                    let r = verify::grade_command(cmd, &tree_root(), &slug, &sol, &[])?;
                    verify::expect_max(&verify::without_machine_limits(r))
                }),
            ));
        }
    }
    run_pairwise(jobs);
}

fn tree_root() -> PathBuf {
    tree().root
}

/// Every mutant of every lab is caught by the items it names, each with a message that names
/// the cause.
#[test]
fn every_mutant_is_caught_by_its_items() {
    let tree = tree();
    let scratch = tempfile::tempdir().unwrap();
    let mut jobs: Vec<Job> = Vec::new();
    let mut count = 0;
    for slug in tree.slugs().unwrap() {
        let lab = tree.lab(&slug).unwrap();
        let mutants = verify::materialise_mutants(&lab, &scratch.path().join(&slug)).unwrap();
        assert!(!mutants.is_empty(), "lab {slug} has no mutants");
        let alone = alone_items(&lab);
        for (m, dir) in mutants {
            count += 1;
            let slug = slug.clone();
            let named: Vec<String> = m.loses.iter().map(|(id, _)| id.clone()).collect();
            // A speed check (`alone`) takes seconds of measuring; where the mutant names
            // other items too, they catch it here, and `cargo xtask verify` grades it whole.
            let quick: Vec<String> = named
                .iter()
                .filter(|id| !alone.contains(id))
                .cloned()
                .collect();
            let only = if quick.is_empty() { named } else { quick };
            let mut m = m;
            m.loses.retain(|(id, _)| only.contains(id));
            // A second grading only when the first missed it: a check of behaviour under
            // load can miss beside this test's other gradings (two at a time on each CPU).
            // `cargo xtask verify` asks two equal verdicts on a quiet machine; a mutant
            // missed twice here fails.
            jobs.push((
                format!("{slug} mutant {}", m.name),
                Box::new(move || {
                    verify::expect_caught(&grade_only(&slug, &dir, &only), &m).or_else(|first| {
                        verify::expect_caught(&grade_only(&slug, &dir, &only), &m).map_err(
                            |second| {
                                format!(
                                    "{first}
    and again: {second}"
                                )
                            },
                        )
                    })
                }),
            ));
        }
    }
    assert!(count >= 6);
    run_pairwise(jobs);
}
