//! Two graders at once on one machine, on the same lab, give the same results as one at a
//! time: their builds, processes and IPC objects never mix.

mod common;

use std::path::{Path, PathBuf};

use common::root;
use grader::labfile::Tree;
use grader::report::Report;

fn grade(slug: &str, sub: &Path) -> Report {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_grader"));
    grader::verify::grade_with(&exe, &root(), slug, sub).unwrap()
}

fn outcome(r: &Report) -> Vec<(String, bool)> {
    r.items.iter().map(|i| (i.id.clone(), i.passed)).collect()
}

/// The System V lab's solution and its no-lock mutant, graded alone and then at once, give
/// the same item results: keys come from each run's own files, namespaces keep them apart.
#[test]
fn two_graders_at_once_give_the_same_results_as_one_at_a_time() {
    let tree = Tree::locate(Some(&root())).unwrap();
    let lab = tree.lab("sysv-shm").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mutants = grader::verify::materialise_mutants(&lab, scratch.path()).unwrap();
    let (_, mutant) = mutants
        .iter()
        .find(|(m, _)| m.name == "no-lock")
        .expect("the no-lock mutant");

    let alone = (
        outcome(&grade("sysv-shm", &lab.solution)),
        outcome(&grade("sysv-shm", mutant)),
    );
    let together = std::thread::scope(|s| {
        let a = s.spawn(|| outcome(&grade("sysv-shm", &lab.solution)));
        let b = s.spawn(|| outcome(&grade("sysv-shm", mutant)));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(alone, together);
    assert!(
        alone.0.iter().all(|(_, passed)| *passed),
        "the solution must pass everything: {:?}",
        alone.0
    );
}
