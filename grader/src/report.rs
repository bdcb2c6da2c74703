//! Step 5b, report: one [`Report`] per grading, rendered as a terminal table, as our own
//! JSON (versioned by `schema`), as Gradescope's results.json, or as JUnit XML.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::labfile::Visibility;
use crate::score::ItemResult;
pub use crate::score::fmt_points;
use crate::submission::Skipped;

mod html;
pub use html::escape as html_escape;

/// The version of the JSON report's layout.
pub const SCHEMA: u32 = 2;

/// Everything a grading produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The lab's slug.
    pub lab: String,
    /// The lab's title.
    pub title: String,
    /// The submission as given on the command line.
    pub submission: String,
    /// False when the grader itself failed: the score then means nothing.
    pub gradable: bool,
    /// Why it was not gradable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Points awarded.
    pub score: f64,
    /// Points possible.
    pub max_score: f64,
    /// Whether the submission compiled.
    pub compiled: bool,
    /// The compiler's errors when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_errors: Option<String>,
    /// Why the uploaded archive cannot be read, when it cannot: the student's doing, graded
    /// (every item fails with this reason), never "not gradable".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// [`crate::submission::content_hash`] of what was graded, when `grade-all` graded it:
    /// a rerun regrades the submission only when its content has changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Per rubric item.
    pub items: Vec<ItemResult>,
    /// Submission files that were not used, with why.
    pub ignored: Vec<Skipped>,
    /// Other remarks.
    pub notes: Vec<String>,
    /// Tests that no rubric item claims (a lab configuration error; they are not run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unassigned_tests: Vec<String>,
    /// The seed of every random choice (replay with `--seed`).
    pub seed: u64,
    /// Wall time of the whole grading, seconds.
    pub elapsed_s: f64,
    /// Where that time went, step by step.
    #[serde(default)]
    pub timing: Timing,
}

/// Milliseconds spent in each step of one grading.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    /// Staging the submission over the template.
    pub stage_ms: u64,
    /// Fetching dependencies and compiling (both halves).
    pub build_ms: u64,
    /// Running the tests, one process each.
    pub tests_ms: u64,
    /// Running the checks.
    pub checks_ms: u64,
}

impl Report {
    /// An empty, gradable report for `submission` of a lab, before any step has run.
    pub fn new(
        lab: &str,
        title: &str,
        submission: &std::path::Path,
        max_score: f64,
        seed: u64,
    ) -> Report {
        Report {
            schema: SCHEMA,
            lab: lab.to_owned(),
            title: title.to_owned(),
            submission: submission.display().to_string(),
            gradable: true,
            error: None,
            score: 0.0,
            max_score,
            compiled: false,
            compile_errors: None,
            unreadable: None,
            content_hash: None,
            items: Vec::new(),
            ignored: Vec::new(),
            notes: Vec::new(),
            unassigned_tests: Vec::new(),
            seed,
            elapsed_s: 0.0,
            timing: Timing::default(),
        }
    }

    /// Marks the report "not gradable" for `why`: every item fails with that reason.
    pub fn not_gradable(mut self, lab: Option<&crate::labfile::LabFile>, why: &str) -> Report {
        self.gradable = false;
        self.error = Some(why.to_owned());
        self.items = lab
            .map(|l| crate::score::ItemResult::all_failed(l, &format!("not graded: {why}")))
            .unwrap_or_default();
        self.score = 0.0;
        self
    }

    /// Marks the report graded with every item failed because the upload cannot be read
    /// (`why`, e.g. "the upload is not a valid zip: ..."): the student's 0, with the reason.
    pub fn unreadable_upload(mut self, lab: &crate::labfile::LabFile, why: &str) -> Report {
        self.compiled = false;
        self.unreadable = Some(why.to_owned());
        self.items = crate::score::ItemResult::all_failed(
            lab,
            &format!("{why}: nothing could be built, so no item can pass"),
        );
        self.score = 0.0;
        self
    }

    /// Writes `contents` to `path` atomically: a reader never sees half a file.
    pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
        let tmp = path.with_file_name(format!(
            ".{}.tmp{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::write(&tmp, contents)?;
        std::fs::rename(&tmp, path)
    }

    /// Our JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The text a person reads in a terminal.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "{} ({}): {}", self.title, self.lab, self.submission);
        if let Some(e) = &self.error {
            let _ = writeln!(
                o,
                "\nNOT GRADABLE: {e}\nThis is a problem with the grader or the machine, not with the submission."
            );
        }
        if let Some(why) = &self.unreadable {
            let _ = writeln!(
                o,
                "\n{}, so no item can pass. Upload it again as a .zip or .tar.gz that opens.",
                capitalised(why)
            );
        }
        if let Some(errors) = &self.compile_errors {
            let _ = writeln!(
                o,
                "\nThe submission does not compile, so no item can pass. The compiler says:\n"
            );
            let _ = writeln!(o, "{}", indent(errors, "    "));
        }
        let _ = writeln!(o);
        let width = self.items.iter().map(|i| i.id.len()).max().unwrap_or(0);
        let mut later = Vec::new();
        for item in &self.items {
            // Graded after submission: listed once, below, not as a failure.
            if item.after_submission {
                later.push(item);
                continue;
            }
            let _ = writeln!(
                o,
                "  {}  {:>5}/{:<5} {:width$}  {}",
                if item.passed {
                    "PASS"
                } else if item.not_gradable_here.is_some() {
                    "N/A "
                } else if item.not_run {
                    "SKIP"
                } else {
                    "FAIL"
                },
                fmt_points(item.score),
                fmt_points(item.max_score),
                item.id,
                item.title,
            );
            // A failure says why; a passing check may carry figures (a performance item).
            let figures =
                item.passed && item.kind == crate::labfile::Kind::Check && item.message != "passed";
            if (!item.passed || figures)
                && !item.not_run
                && self.compile_errors.is_none()
                && self.unreadable.is_none()
                && self.error.is_none()
            {
                let _ = writeln!(o, "{}", indent(&item.message, "          "));
            }
        }
        if !later.is_empty() {
            let _ = writeln!(
                o,
                "\n  Graded after you submit (the course's grader runs them):"
            );
            for item in &later {
                let _ = writeln!(
                    o,
                    "  LATER  {:>5}      {:width$}  {}",
                    fmt_points(item.max_score),
                    item.id,
                    item.title
                );
            }
        }
        let _ = write!(
            o,
            "\nScore: {}/{}",
            fmt_points(self.score),
            fmt_points(self.max_score)
        );
        let later_points: f64 = later.iter().map(|i| i.max_score).sum();
        if later_points > 0.0 {
            let _ = write!(
                o,
                " of the points graded here; the lab's total is {}, {} of them graded after \
                 you submit",
                fmt_points(self.max_score + later_points),
                fmt_points(later_points)
            );
        }
        let _ = writeln!(o);
        if !self.ignored.is_empty() {
            let _ = writeln!(o, "\nNot graded (ignored) from the submission:");
            for s in &self.ignored {
                let _ = writeln!(o, "  {}: {}", s.entry, s.reason);
            }
        }
        for n in &self.notes {
            let _ = writeln!(o, "Note: {n}");
        }
        let _ = writeln!(
            o,
            "Seed: {} (replay with --seed {}); graded in {:.1} s",
            self.seed, self.seed, self.elapsed_s
        );
        o
    }

    /// Gradescope's results.json.
    pub fn to_gradescope(&self) -> String {
        let mut tests = Vec::new();
        let mut header = String::new();
        if let Some(e) = &self.error {
            let _ = writeln!(
                header,
                "NOT GRADABLE: {e}. This is the grader's problem, not yours: tell your course staff."
            );
        }
        if let Some(why) = &self.unreadable {
            let _ = writeln!(
                header,
                "{}: upload it again as a .zip or .tar.gz that opens.",
                capitalised(why)
            );
        }
        if let Some(errors) = &self.compile_errors {
            let _ = writeln!(header, "Your submission does not compile:\n\n{errors}");
        }
        if !self.ignored.is_empty() {
            let _ = writeln!(header, "Ignored files:");
            for s in &self.ignored {
                let _ = writeln!(header, "- {}: {}", s.entry, s.reason);
            }
        }
        for (n, item) in self.items.iter().enumerate() {
            tests.push(serde_json::json!({
                "name": format!("{} ({})", item.title, item.id),
                "number": (n + 1).to_string(),
                "score": item.score,
                "max_score": item.max_score,
                "status": if item.passed { "passed" } else { "failed" },
                "output": item.message,
                "visibility": gradescope_visibility(item.visibility),
            }));
        }
        let doc = serde_json::json!({
            "score": self.score,
            "execution_time": self.elapsed_s.round() as u64,
            "output": header,
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": tests,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    /// JUnit XML, one test case per item.
    pub fn to_junit(&self) -> String {
        junit_document(std::slice::from_ref(self))
    }

    /// This report as one JUnit `<testsuite>`, named after the submission.
    fn junit_suite(&self, o: &mut String) {
        let failures = self.items.iter().filter(|i| !i.passed).count();
        let _ = writeln!(
            o,
            r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="{}" time="{:.3}">"#,
            xml(&format!("{}: {}", self.lab, self.submission)),
            self.items.len(),
            u8::from(!self.gradable),
            self.elapsed_s
        );
        if let Some(e) = &self.error {
            let _ = writeln!(o, "    <system-err>not gradable: {}</system-err>", xml(e));
        }
        for item in &self.items {
            let _ = write!(
                o,
                r#"    <testcase classname="{}" name="{}" time="{:.3}""#,
                xml(&self.lab),
                xml(&item.id),
                item.elapsed_ms as f64 / 1000.0
            );
            if item.passed {
                let _ = writeln!(o, "/>");
            } else {
                let _ = writeln!(
                    o,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(&item.title),
                    xml(&item.message)
                );
            }
        }
        let _ = writeln!(o, "  </testsuite>");
    }
}

/// One JUnit document with a suite per report (a batch writes one for the whole class).
pub fn junit_document(reports: &[Report]) -> String {
    let tests: usize = reports.iter().map(|r| r.items.len()).sum();
    let failures: usize = reports
        .iter()
        .map(|r| r.items.iter().filter(|i| !i.passed).count())
        .sum();
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(o, r#"<testsuites tests="{tests}" failures="{failures}">"#);
    for r in reports {
        r.junit_suite(&mut o);
    }
    let _ = writeln!(o, "</testsuites>");
    o
}

fn gradescope_visibility(v: Visibility) -> &'static str {
    match v {
        Visibility::Visible => "visible",
        Visibility::Hidden => "hidden",
        Visibility::AfterDueDate => "after_due_date",
        Visibility::AfterPublished => "after_published",
    }
}

/// `s` with its first letter in upper case.
pub(crate) fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn indent(s: &str, pad: &str) -> String {
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || (*c as u32) >= 0x20)
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_and_drops_control_characters() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn points_print_without_noise() {
        assert_eq!(fmt_points(10.0), "10");
        assert_eq!(fmt_points(2.5), "2.5");
    }
}
