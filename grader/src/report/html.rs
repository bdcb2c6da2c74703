//! One report as a self-contained HTML page (no script, no external resource), ready to send
//! to the student it is about: the same facts and messages as [`Report::to_text`].

use std::fmt::Write as _;

use super::{Report, capitalised, fmt_points};

/// `s` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Report {
    /// The report as one HTML page.
    pub fn to_html(&self) -> String {
        let mut body = String::new();
        if let Some(e) = &self.error {
            let _ = write!(
                body,
                r#"<p class="alert" id="not-gradable"><strong>Not gradable:</strong> {}. This is a problem with the grader or the machine, not with the submission.</p>"#,
                escape(e)
            );
        }
        if let Some(why) = &self.unreadable {
            let _ = write!(
                body,
                r#"<p class="alert" id="unreadable">{}, so no item can pass. Upload it again as a .zip or .tar.gz that opens.</p>"#,
                escape(&capitalised(why))
            );
        }
        if let Some(errors) = &self.compile_errors {
            let _ = write!(
                body,
                r#"<p class="alert">The submission does not compile, so no item can pass. The compiler says:</p><pre id="compile-errors">{}</pre>"#,
                escape(errors)
            );
        }
        let _ = write!(
            body,
            r#"<table id="items"><tr><th>result</th><th>points</th><th>item</th><th>what it grades</th></tr>"#
        );
        let explain =
            self.compile_errors.is_none() && self.unreadable.is_none() && self.error.is_none();
        for item in &self.items {
            let (class, word) = if item.after_submission {
                ("later", "LATER")
            } else if item.passed {
                ("pass", "PASS")
            } else if item.not_gradable_here.is_some() {
                ("na", "N/A")
            } else if item.not_run {
                ("skip", "SKIP")
            } else {
                ("fail", "FAIL")
            };
            let _ = write!(
                body,
                r#"<tr class="{class}"><td class="verdict">{word}</td><td>{}/{}</td><td><code>{}</code></td><td>{}"#,
                fmt_points(item.score),
                fmt_points(item.max_score),
                escape(&item.id),
                escape(&item.title)
            );
            let figures =
                item.passed && item.kind == crate::labfile::Kind::Check && item.message != "passed";
            if explain && (!item.passed || figures) && !item.not_run && !item.after_submission {
                let _ = write!(body, "<pre>{}</pre>", escape(&item.message));
            }
            body.push_str("</td></tr>");
        }
        body.push_str("</table>");
        if !self.ignored.is_empty() {
            body.push_str("<h2>Not graded (ignored) from the submission</h2><ul>");
            for s in &self.ignored {
                let _ = write!(
                    body,
                    "<li><code>{}</code>: {}</li>",
                    escape(&s.entry),
                    escape(&s.reason)
                );
            }
            body.push_str("</ul>");
        }
        if !self.notes.is_empty() {
            body.push_str("<h2>Notes</h2><ul>");
            for n in &self.notes {
                let _ = write!(body, "<li>{}</li>", escape(n));
            }
            body.push_str("</ul>");
        }
        format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: {submission}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }}
pre {{ white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6; padding: 6px; margin: 4px 0; }}
tr.pass .verdict {{ color: #217a3c; font-weight: bold; }} tr.fail .verdict {{ color: #b3261e; font-weight: bold; }}
.alert {{ background: #fdecea; padding: 8px; }}
</style></head>
<body>
<h1>{title} (<code>{lab}</code>)</h1>
<p>Submission: <code>{submission}</code></p>
<p id="score">Score: <strong>{score}/{max}</strong> ({passed} of {graded} items passed)</p>
{body}
<p class="seed">Seed: {seed} (replay with <code>--seed {seed}</code>); graded in {elapsed:.1} s</p>
</body></html>
"#,
            title = escape(&self.title),
            lab = escape(&self.lab),
            // The folder's or archive's name: where the course keeps it is not the student's.
            submission = escape(
                &std::path::Path::new(&self.submission)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| self.submission.clone())
            ),
            passed = self.items.iter().filter(|i| i.passed).count(),
            graded = self
                .items
                .iter()
                .filter(|i| !i.after_submission && !i.not_run && i.not_gradable_here.is_none())
                .count(),
            score = fmt_points(self.score),
            max = fmt_points(self.max_score),
            seed = self.seed,
            elapsed = self.elapsed_s,
        )
    }
}
