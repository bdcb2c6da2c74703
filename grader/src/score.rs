//! Step 5a, score: every rubric item gets pass or fail, its points, and a message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labfile::{Item, Kind, LabFile, Visibility};
use crate::run::{Outcome, TestResult};

/// The graded outcome of one rubric item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemResult {
    /// The item's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// test or check.
    pub kind: Kind,
    /// Who sees it.
    pub visibility: Visibility,
    /// Points awarded.
    pub score: f64,
    /// Points possible.
    pub max_score: f64,
    /// Whether it passed.
    pub passed: bool,
    /// What the student reads: why it failed, or what passed.
    pub message: String,
    /// The item's tests, for test items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestResult>,
    /// Milliseconds spent on it.
    pub elapsed_ms: u64,
    /// Set when this machine could not judge the item (a peer program missing, not root):
    /// why. Such an item is left out of the score and of the maximum, never failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_gradable_here: Option<String>,
    /// Set in a student's own grading (`cargo grade`) for an item only the course's grader
    /// grades (hidden, or kept server-side): left out of the score and of the maximum.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_submission: bool,
    /// Set for an item this grading left out (`--only` named others): no points.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_run: bool,
}

impl ItemResult {
    /// A result for `item`.
    pub fn new(item: &Item, passed: bool, message: String, elapsed_ms: u64) -> ItemResult {
        ItemResult {
            id: item.id.clone(),
            title: item.title.clone(),
            kind: item.kind,
            visibility: item.visibility,
            score: if passed { item.points } else { 0.0 },
            max_score: item.points,
            passed,
            message: plain_text(&message),
            tests: Vec::new(),
            elapsed_ms,
            not_gradable_here: None,
            after_submission: false,
            not_run: false,
        }
    }

    /// A result for `item`, which this grading left out (`--only` named others).
    pub fn not_run(item: &Item) -> ItemResult {
        let mut r = ItemResult::new(item, false, "not run (--only)".into(), 0);
        r.not_run = true;
        r
    }

    /// A result for `item` in a student's own grading, where only the course's grader grades
    /// it: no points, and its points (`max_score`) are left out of the report's maximum.
    pub fn after_submission(item: &Item) -> ItemResult {
        let mut r = ItemResult::new(
            item,
            false,
            "graded after you submit: the course's grader runs it (hidden tests, or a check \
             kept server-side)"
                .into(),
            0,
        );
        r.after_submission = true;
        r
    }

    /// A result for `item` that this machine could not judge, for `why`: no points either
    /// way, and the item's points are left out of the maximum.
    pub fn not_gradable_here(item: &Item, why: &str, elapsed_ms: u64) -> ItemResult {
        let mut r = ItemResult::new(
            item,
            false,
            format!(
                "not gradable here: {why}. This says nothing about your code: the item's {} \
                 points are left out of the total until it is graded on a machine that can.",
                fmt_points(item.points)
            ),
            elapsed_ms,
        );
        r.max_score = 0.0;
        r.not_gradable_here = Some(why.to_owned());
        r
    }

    /// The same failure for every item of `lab` (a compile error, an ungradable run).
    pub fn all_failed(lab: &LabFile, message: &str) -> Vec<ItemResult> {
        lab.items
            .iter()
            .map(|i| ItemResult::new(i, false, message.to_owned(), 0))
            .collect()
    }
}

/// Scores a test item from the results of its tests.
pub fn test_item(item: &Item, mut results: Vec<TestResult>) -> ItemResult {
    for r in &mut results {
        if let Outcome::Failed(why) | Outcome::Hung(why) | Outcome::OverMemory(why) = &mut r.outcome
        {
            *why = plain_text(why);
        }
    }
    let elapsed = results.iter().map(|r| r.elapsed_ms).sum();
    if results.is_empty() {
        let msg = format!(
            "no test matches `{}`: the lab is misconfigured (tell your course staff)",
            item.name
        );
        return ItemResult::new(item, false, msg, 0);
    }
    let not_run = |r: &&TestResult| matches!(r.outcome, Outcome::NotRun(_));
    let failed: Vec<&TestResult> = results
        .iter()
        .filter(|r| !r.passed())
        .filter(|r| !not_run(r))
        .collect();
    let skipped: Vec<&TestResult> = results.iter().filter(not_run).collect();
    let message = if failed.is_empty() {
        format!("all {} tests passed", results.len())
    } else {
        let mut m = format!("{} of {} tests failed", failed.len(), results.len());
        if !skipped.is_empty() {
            m.push_str(&format!(
                " and {} were not run because one of them was stopped",
                skipped.len()
            ));
        }
        m.push(':');
        for r in failed.iter().take(5) {
            m.push_str(&format!("\n\n[{}]\n{}", r.id, r.message().trim_end()));
        }
        if failed.len() > 5 {
            m.push_str(&format!(
                "\n\n... and {} more failing tests",
                failed.len() - 5
            ));
        }
        if !skipped.is_empty() {
            let names: Vec<&str> = skipped.iter().map(|r| r.id.as_str()).collect();
            m.push_str(&format!(
                "\n\n[not run: an earlier test of this item was stopped; fix that one first]\n{}",
                names.join("\n")
            ));
        }
        m
    };
    let mut r = ItemResult::new(item, failed.is_empty(), message, elapsed);
    r.tests = results;
    r
}

/// `text` as a student's terminal, a JSON report and Gradescope all show it the same way:
/// colour and other escape sequences removed (a test that ignored NO_COLOR), every other
/// control byte but newline and tab written as `\xNN`.
pub fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CSI: ESC [ parameters final-byte (0x40..=0x7e).
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                for f in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&f) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Points without a needless `.0`.
pub fn fmt_points(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p:.1}")
    }
}

/// Groups test results by the item they belong to (first matching item wins).
pub fn group_tests(lab: &LabFile, results: Vec<TestResult>) -> BTreeMap<String, Vec<TestResult>> {
    let mut by_item: BTreeMap<String, Vec<TestResult>> = BTreeMap::new();
    for r in results {
        if let Some(item) = lab.items.iter().find(|i| i.matches_test(&r.id)) {
            by_item.entry(item.id.clone()).or_default().push(r);
        }
    }
    by_item
}

#[cfg(test)]
mod tests {
    /// An item this machine cannot judge scores 0 of 0: it neither fails the student nor
    /// counts toward the maximum.
    #[test]
    fn not_gradable_here_is_out_of_the_total() {
        let item: super::Item = toml::from_str(
            "id = \"peer\"\ntitle = \"t\"\npoints = 7\nkind = \"check\"\nname = \"p\"",
        )
        .unwrap();
        let r = super::ItemResult::not_gradable_here(&item, "`socat` is not installed", 3);
        assert_eq!((r.score, r.max_score, r.passed), (0.0, 0.0, false));
        assert!(r.message.contains("7 points are left out"), "{}", r.message);
    }

    /// Colours go, other control bytes show as `\xNN`, newlines and tabs stay.
    #[test]
    fn messages_are_plain_text() {
        assert_eq!(
            super::plain_text("\u{1b}[1m\u{1b}[32mok\u{1b}[0m\tdone\n\u{7}"),
            "ok\tdone\n\\x07"
        );
    }
}
