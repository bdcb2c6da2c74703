//! A lab's surfaces agree: `labs/`, `solutions/` and the grader's registry name the same labs,
//! every check item of every lab.toml names a check the registry has, and every check of the
//! registry is graded by an item. Nothing here runs a submission.

mod common;

use std::collections::BTreeSet;

use grader::labfile::{Kind, Tree};

#[test]
fn registry_matches_the_tree() {
    let tree = Tree::locate(Some(&common::root())).unwrap();
    let labs: BTreeSet<String> = tree.slugs().unwrap().into_iter().collect();
    let solutions: BTreeSet<String> = std::fs::read_dir(tree.root.join("solutions"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let registry: BTreeSet<String> = grader::labs::LABS
        .iter()
        .map(|(s, _)| s.to_string())
        .collect();
    assert_eq!(labs, solutions, "labs/ and solutions/ name other labs");
    assert_eq!(
        labs, registry,
        "labs/ and grader::labs::LABS name other labs"
    );
    let mut problems = Vec::new();
    for (slug, checks) in grader::labs::LABS {
        let lab = tree.lab(slug).unwrap();
        let used: BTreeSet<&str> = lab
            .file
            .items
            .iter()
            .filter(|i| i.kind == Kind::Check)
            .map(|i| i.name.as_str())
            .collect();
        for name in &used {
            if grader::labs::find(slug, name).is_none() {
                problems.push(format!(
                    "{slug}: lab.toml names the check `{name}`, which does not exist"
                ));
            }
        }
        for c in checks.iter() {
            if !used.contains(c.name) {
                problems.push(format!(
                    "{slug}: the check `{}` is graded by no item",
                    c.name
                ));
            }
        }
        let names: BTreeSet<&str> = checks.iter().map(|c| c.name).collect();
        if names.len() != checks.len() {
            problems.push(format!("{slug}: two checks share a name"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A skeleton's doc examples are compiled, never run (`no_run`): they call functions that are
/// still `todo!()`, and a fresh handout's `cargo test` must report the lab's own tests, not
/// examples that cannot pass yet.
#[test]
fn skeleton_doc_examples_do_not_run() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let tree = Tree::locate(Some(&common::root())).unwrap();
    let mut runnable = Vec::new();
    for slug in tree.slugs().unwrap() {
        let mut files = Vec::new();
        walk(&tree.root.join("labs").join(&slug).join("src"), &mut files);
        for f in files {
            let mut inside = false;
            for (n, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
                let t = line.trim_start();
                let Some(fence) = t
                    .strip_prefix("///")
                    .or_else(|| t.strip_prefix("//!"))
                    .map(str::trim)
                    .and_then(|c| c.strip_prefix("```"))
                else {
                    continue;
                };
                if !inside && matches!(fence.trim(), "" | "rust") {
                    runnable.push(format!("{}:{}", f.display(), n + 1));
                }
                inside = !inside;
            }
        }
    }
    assert!(
        runnable.is_empty(),
        "doc examples a skeleton runs (write ```no_run): {runnable:#?}"
    );
}

/// Every lab has its contract table (`solutions/<slug>/CONTRACT.md`) and every row names an
/// item of its lab.toml that exists and a mutant that exists and loses one of the row's items.
#[test]
fn every_lab_has_a_complete_contract_table() {
    let tree = Tree::locate(Some(&common::root())).unwrap();
    let mut problems = Vec::new();
    for slug in tree.slugs().unwrap() {
        let lab = tree.lab(&slug).unwrap();
        match grader::contract::check(&lab) {
            Ok(rows) if rows.len() >= 5 => {}
            Ok(rows) => problems.push(format!("{slug}: only {} rows", rows.len())),
            Err(e) => problems.extend(e.into_iter().map(|p| format!("{slug}: {p}"))),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Every mutant applies to its lab's solution as it is now (an edit of a solution that moves
/// a mutant's context fails here, in a second, not at the end of the mutant gradings).
#[test]
fn every_mutant_applies_to_its_solution() {
    let tree = Tree::locate(Some(&common::root())).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for slug in tree.slugs().unwrap() {
        let lab = tree.lab(&slug).unwrap();
        if let Err(e) = grader::verify::materialise_mutants(&lab, &scratch.path().join(&slug)) {
            problems.push(format!("{slug}: {e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
