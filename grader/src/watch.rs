//! `cargo grade --watch`: the student's loop. Grades, then waits for a saved change of the
//! submission's files and grades again, showing each time the first failing item whole and,
//! for the others, only what changed since the last grading (rustlings' watch mode is the
//! model). Ctrl-C ends it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::grade::{self, Options};
use crate::labfile::Tree;
use crate::report::{Report, fmt_points};

/// How often the files are looked at.
const EVERY: Duration = Duration::from_millis(300);

/// Grades `submission` for `slug` again whenever its files change, until a signal stops it.
pub fn run(tree: &Tree, slug: &str, submission: &Path, opts: &Options) -> crate::Result<()> {
    let mut last: Option<Report> = None;
    loop {
        let seen = fingerprint(submission);
        let report = grade::grade(tree, slug, submission, opts)?;
        if crate::interrupt::signal().is_some() {
            return Ok(());
        }
        crate::console::out(&summary(last.as_ref(), &report));
        last = Some(report);
        crate::console::out("\nwaiting for a change of your files (Ctrl-C to stop)...\n");
        // Saved files land in a burst: wait for a change, then for the burst to settle.
        while fingerprint(submission) == seen {
            if crate::interrupt::signal().is_some() {
                return Ok(());
            }
            std::thread::sleep(EVERY);
        }
        loop {
            let now = fingerprint(submission);
            std::thread::sleep(EVERY);
            if fingerprint(submission) == now {
                break;
            }
        }
    }
}

/// Every file under `root` (but `target/`) with its length and modification time.
fn fingerprint(root: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                if e.file_name() != "target" && e.file_name() != ".git" {
                    stack.push(path);
                }
            } else {
                out.insert(path, (meta.len(), meta.modified().ok()));
            }
        }
    }
    out
}

/// What a student reads after a grading: the score, what changed since `before`, and the
/// first failing item whole.
pub fn summary(before: Option<&Report>, now: &Report) -> String {
    if !now.gradable || now.compile_errors.is_some() {
        return now.to_text();
    }
    let mut o = String::new();
    o.push_str(&format!(
        "\n{}: {}/{}\n",
        now.lab,
        fmt_points(now.score),
        fmt_points(now.max_score)
    ));
    let graded = || {
        now.items
            .iter()
            .filter(|i| !i.after_submission && !i.not_run)
    };
    if let Some(before) = before {
        for item in graded() {
            let was = before
                .items
                .iter()
                .find(|b| b.id == item.id)
                .map(|b| b.passed);
            match (was, item.passed) {
                (Some(false), true) => o.push_str(&format!("  now passes: {}\n", item.id)),
                (Some(true), false) => o.push_str(&format!("  now FAILS:  {}\n", item.id)),
                _ => {}
            }
        }
    } else {
        for item in graded() {
            let mark = if item.passed {
                "PASS"
            } else if item.not_gradable_here.is_some() {
                "N/A "
            } else {
                "FAIL"
            };
            o.push_str(&format!("  {mark}  {}\n", item.id));
        }
    }
    match graded().find(|i| !i.passed && i.not_gradable_here.is_none()) {
        Some(first) => o.push_str(&format!(
            "\nFirst to fix: {} ({})\n{}\n",
            first.id, first.title, first.message
        )),
        None => o.push_str("\nEvery item graded here passes.\n"),
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::ItemResult;

    fn report(passed: &[(&str, bool)]) -> Report {
        let mut r = Report::new("pipes", "t", Path::new("src"), 20.0, 1);
        for (id, p) in passed {
            let item: crate::labfile::Item = toml::from_str(&format!(
                "id = \"{id}\"\ntitle = \"t\"\npoints = 10\nkind = \"check\"\nname = \"x\""
            ))
            .unwrap();
            r.items
                .push(ItemResult::new(&item, *p, format!("why {id}"), 0));
        }
        r.compiled = true;
        r
    }

    /// After the first grading, only the items whose verdict changed are listed, and the
    /// first failing one is shown whole.
    #[test]
    fn only_changes_and_the_first_failure_are_shown() {
        let a = report(&[("one", false), ("two", true)]);
        let b = report(&[("one", true), ("two", false)]);
        let text = summary(Some(&a), &b);
        assert!(text.contains("now passes: one"), "{text}");
        assert!(text.contains("now FAILS:  two"), "{text}");
        assert!(
            text.contains("First to fix: two") && text.contains("why two"),
            "{text}"
        );
        let same = summary(Some(&b), &b);
        assert!(!same.contains("now "), "{same}");
    }
}
