//! Helpers shared by the grader's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The project's root (with labs/ and solutions/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A job for [`run_pairwise`]: its name and what it checks.
pub type Job = (String, Box<dyn FnOnce() -> Result<(), String> + Send>);

/// Runs `jobs` two at a time (the machine has two cores) and fails with every failure.
pub fn run_pairwise(jobs: Vec<Job>) {
    let mut failures = Vec::new();
    let mut jobs = jobs.into_iter();
    loop {
        let batch: Vec<Job> = jobs.by_ref().take(2).collect();
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
