//! Step 5a, score: every rubric item gets pass or fail, its points, and a message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labfile::{Item, Kind, LabFile, Visibility};
use crate::run::TestResult;

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
        }
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
        r.message = plain_text(&r.message);
    }
    let elapsed = results.iter().map(|r| r.elapsed_ms).sum();
    if results.is_empty() {
        let msg = format!(
            "no test matches `{}`: the lab is misconfigured (tell your course staff)",
            item.name
        );
        return ItemResult::new(item, false, msg, 0);
    }
    let not_run = |r: &&TestResult| r.message.starts_with(crate::grade::NOT_RUN);
    let failed: Vec<&TestResult> = results
        .iter()
        .filter(|r| !r.passed)
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
            m.push_str(&format!("\n\n[{}]\n{}", r.id, r.message.trim_end()));
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
    /// Colours go, other control bytes show as `\xNN`, newlines and tabs stay.
    #[test]
    fn messages_are_plain_text() {
        assert_eq!(
            super::plain_text("\u{1b}[1m\u{1b}[32mok\u{1b}[0m\tdone\n\u{7}"),
            "ok\tdone\n\\x07"
        );
    }
}
