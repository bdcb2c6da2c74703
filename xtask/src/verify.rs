//! `cargo xtask verify`: every lab keeps its invariants. The solution scores the maximum,
//! the skeleton scores 0, and each mutant loses exactly the items it names, with a message
//! that names the cause, the same way twice (each mutant is graded twice, and the two
//! verdicts must agree item by item); a student's own grading (`cargo grade`) of each passes
//! and fails the items it grades as the course's grading does. The lab's contract table
//! (`solutions/<slug>/CONTRACT.md`, see [`grader::contract`]) gives every clause an item and
//! a mutant. Grades through the `grader` binary, as a course would.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use grader::labfile::Tree;
use grader::verify;

/// How a grading's report is judged.
type Judge = Box<dyn Fn(&grader::report::Report) -> Result<(), String>>;

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args)]
pub struct Verify {
    /// Labs to verify (default: all).
    slugs: Vec<String>,
}

impl Verify {
    pub fn run(self) -> Result<()> {
        let tree = Tree::locate(Some(&crate::root()))?;
        let exe = build_grader(&tree)?;
        let slugs = if self.slugs.is_empty() {
            tree.slugs()?
        } else {
            self.slugs
        };
        let mut failures = 0;
        for slug in &slugs {
            let lab = tree.lab(slug)?;
            match grader::contract::check(&lab) {
                Ok(rows) => println!("ok    {slug}: contract table, {} clauses", rows.len()),
                Err(problems) => {
                    failures += problems.len();
                    for p in problems {
                        println!("FAIL  {slug}: contract table: {p}");
                    }
                }
            }
            let scratch = tempfile::tempdir()?;
            let mut cases: Vec<(String, PathBuf, Judge)> = vec![
                (
                    "solution".into(),
                    lab.solution.clone(),
                    Box::new(verify::expect_max),
                ),
                (
                    "skeleton".into(),
                    lab.dir.clone(),
                    Box::new(verify::expect_zero),
                ),
            ];
            for (m, dir) in verify::materialise_mutants(&lab, scratch.path())? {
                let name = format!("mutant {}", m.name);
                cases.push((name, dir, Box::new(move |r| verify::expect_mutant(r, &m))));
            }
            for (name, dir, judge) in cases {
                let verdict = verify::grade_with(&exe, &tree.root, slug, &dir).and_then(|r| {
                    judge(&r)?;
                    // `cargo grade` agrees with the course's grading on what it grades.
                    let local = verify::grade_local_with(&exe, &tree.root, slug, &dir)?;
                    verify::same_local_verdicts(&r, &local)?;
                    // A mutant's verdict must not depend on luck: the same again.
                    if name.starts_with("mutant ") {
                        let again = verify::grade_with(&exe, &tree.root, slug, &dir)?;
                        verify::same_verdicts(&r, &again)?;
                    }
                    Ok(())
                });
                match verdict {
                    Ok(()) => println!("ok    {slug}: {name}"),
                    Err(why) => {
                        failures += 1;
                        println!("FAIL  {slug}: {name}: {why}");
                    }
                }
            }
        }
        if failures > 0 {
            bail!(
                "{failures} invariant(s) broken: fix the solution, the skeleton or the mutant's \
                 `# loses:` lines, then run `cargo xtask verify` again"
            );
        }
        Ok(())
    }
}

/// Builds the grader binary and returns its path.
pub fn build_grader(tree: &Tree) -> Result<PathBuf> {
    let status = std::process::Command::new(grader::build::cargo())
        .args(["build", "--quiet", "-p", "grader"])
        .current_dir(&tree.root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build -p grader failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tree.root.join("target"));
    Ok(target.join("debug").join("grader"))
}
