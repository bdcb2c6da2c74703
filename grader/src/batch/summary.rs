//! The class summary page: one self-contained HTML file (inline style and script, nothing
//! fetched) with the score histogram, a sortable table of the students with a link to each
//! one's report, the submissions that could not be graded and why, each item's pass rate and
//! its most common failure reasons, and the pairs of submissions that share the most code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Pair, Row, page_name};
use crate::labfile::Lab;
use crate::report::{Report, fmt_points, html_escape as html};

/// Failure reasons shown per item at most.
const REASONS: usize = 5;

/// The score range of histogram bin `i` (tenths of the maximum), in percent.
fn bin_label(i: usize) -> String {
    if i == 9 {
        "90-100%".into()
    } else {
        format!("{}-{}%", i * 10, i * 10 + 9)
    }
}

/// The first sentence of a failure message: what groups the same mistake made by several
/// students ("`cat` waits to read fd 0." whatever the pid or fd numbers after it).
pub fn first_sentence(message: &str) -> String {
    let first_line = message.trim().lines().next().unwrap_or_default();
    let end = first_line
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?')
                && first_line[i + 1..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(first_line.len());
    let s = first_line[..end].trim();
    if s.chars().count() > 200 {
        s.chars().take(200).collect::<String>() + "…"
    } else {
        s.to_owned()
    }
}

/// A file name as a relative URL: every byte but letters, digits and `-._~` percent-encoded
/// (a submission named `a#1` or `b?` still links to its page).
fn url_path(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The label of a row: the student's name when the roster gives one, with the submission.
fn who(row: &Row) -> String {
    match &row.student {
        Some(s) if !s.name.is_empty() => format!("{} ({})", s.name, row.name),
        _ => row.name.clone(),
    }
}

fn histogram(max: f64, gradable: &[&Report]) -> String {
    // Ten bins of the score as a fraction of the maximum; a full score lands in the last.
    let mut bins = [0usize; 10];
    for r in gradable {
        let f = if max > 0.0 { r.score / max } else { 0.0 };
        bins[((f * 10.0) as usize).min(9)] += 1;
    }
    let tallest = bins.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = String::from(
        r#"<svg id="histogram" role="img" aria-label="score histogram" viewBox="0 0 420 180" width="420" height="180">"#,
    );
    for (i, &count) in bins.iter().enumerate() {
        let h = 125.0 * count as f64 / tallest as f64;
        let x = 10 + i * 40;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x}" y="{:.1}" width="34" height="{h:.1}"><title>{}: {count}</title></rect><text x="{}" y="170" font-size="9" text-anchor="middle">{}</text><text x="{}" y="{:.1}" font-size="10" text-anchor="middle">{count}</text>"#,
            150.0 - h,
            bin_label(i),
            x + 17,
            bin_label(i),
            x + 17,
            145.0 - h
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The table of students: one row each, every column sortable (click its header).
fn students(lab: &Lab, rows: &[Row]) -> String {
    let mut o = String::from(
        r#"<table id="students" class="sortable"><thead><tr><th data-key="submission">submission</th><th data-key="score">score</th>"#,
    );
    for item in &lab.file.items {
        let _ = write!(
            o,
            r#"<th data-key="{id}" title="{title}"><code>{id}</code></th>"#,
            id = html(&item.id),
            title = html(&item.title)
        );
    }
    o.push_str(r#"<th data-key="time">time (s)</th><th>report</th></tr></thead><tbody>"#);
    for row in rows {
        let r = &row.report;
        let (score_v, score_text) = if !r.gradable {
            ("-1".to_owned(), "not gradable".to_owned())
        } else {
            (
                format!("{}", r.score),
                format!("{}/{}", fmt_points(r.score), fmt_points(r.max_score)),
            )
        };
        let _ = write!(
            o,
            r#"<tr class="student" data-name="{name}"><td data-v="{label}">{label}</td><td class="score" data-v="{score_v}">{score_text}</td>"#,
            name = html(&row.name),
            label = html(&who(row)),
        );
        for item in &lab.file.items {
            let cell = r.items.iter().find(|i| i.id == item.id);
            let (v, class, text) = match cell {
                _ if !r.gradable => ("", "na", "–"),
                Some(i) if i.passed => ("1", "pass", "✓"),
                Some(i) if i.not_gradable_here.is_some() || i.not_run => ("", "na", "–"),
                _ => ("0", "fail", "✗"),
            };
            let _ = write!(o, r#"<td class="{class}" data-v="{v}">{text}</td>"#);
        }
        let _ = write!(
            o,
            r#"<td data-v="{t:.1}">{t:.1}</td><td><a href="{href}">report</a></td></tr>"#,
            t = r.elapsed_s,
            href = html(&url_path(&page_name(&row.name))),
        );
    }
    o.push_str("</tbody></table>");
    o
}

/// Each item's pass rate, and its most common failure reasons among the submissions that
/// compiled, with how many and who.
fn items(lab: &Lab, rows: &[Row]) -> String {
    let gradable: Vec<&Row> = rows.iter().filter(|r| r.report.gradable).collect();
    let mut o = String::from(
        r#"<table id="items"><tr><th>item</th><th>what it grades</th><th>points</th><th>passed</th><th>most common reasons for failing</th></tr>"#,
    );
    for item in &lab.file.items {
        let passed = gradable
            .iter()
            .filter(|r| r.report.items.iter().any(|i| i.id == item.id && i.passed))
            .count();
        let rate = if gradable.is_empty() {
            0.0
        } else {
            100.0 * passed as f64 / gradable.len() as f64
        };
        let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in gradable.iter().filter(|r| r.report.compiled) {
            for i in row.report.items.iter().filter(|i| i.id == item.id) {
                if !i.passed && !i.not_run && i.not_gradable_here.is_none() {
                    reasons
                        .entry(first_sentence(&i.message))
                        .or_default()
                        .push(who(row));
                }
            }
        }
        let mut reasons: Vec<(String, Vec<String>)> = reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let mut list = String::new();
        if !reasons.is_empty() {
            list.push_str(r#"<ol class="reasons">"#);
            for (reason, who) in reasons.iter().take(REASONS) {
                let _ = write!(
                    list,
                    r#"<li><span class="count">{}</span> × {} <span class="who">({})</span></li>"#,
                    who.len(),
                    html(reason),
                    html(&who.join(", "))
                );
            }
            list.push_str("</ol>");
            if reasons.len() > REASONS {
                let _ = write!(list, "<p>and {} other reasons</p>", reasons.len() - REASONS);
            }
        }
        let _ = write!(
            o,
            r#"<tr class="item" data-item="{id}"><td><code>{id}</code></td><td>{}</td><td>{}</td><td class="rate" data-rate="{rate:.1}"><div class="track"><div class="fill" style="width:{rate:.1}%"></div></div> {rate:.0}% ({passed}/{})</td><td>{list}</td></tr>"#,
            html(&item.title),
            fmt_points(item.points),
            gradable.len(),
            id = html(&item.id),
        );
    }
    o.push_str("</table>");
    o
}

fn similarity(pairs: &[Pair], compared: usize) -> String {
    let mut o = format!(
        r#"<p class="caveat">A signal for a person to look at, never a verdict or a grade: pairs of submissions that share long runs of code once the skeleton's own code is left out (renamed variables and changed literals still match). Students who follow the handout closely can share a lot. {compared} submissions compared; nothing here reaches a student's report.</p>"#
    );
    if pairs.is_empty() {
        o.push_str(r#"<p id="no-pairs">No two submissions share enough code to show.</p>"#);
        return o;
    }
    for (n, p) in pairs.iter().enumerate() {
        let _ = write!(
            o,
            r#"<details class="pair"{open}><summary><strong>{a}</strong> and <strong>{b}</strong>: {shared} shared fingerprints ({pa:.0}% of {a}'s own code, {pb:.0}% of {b}'s)</summary>"#,
            open = if n == 0 { " open" } else { "" },
            a = html(&p.a),
            b = html(&p.b),
            shared = p.shared,
            pa = 100.0 * p.of_a,
            pb = 100.0 * p.of_b,
        );
        for f in &p.fragments {
            let _ = write!(
                o,
                r#"<div class="side"><div><p><code>{}</code> lines {}-{}</p><pre>{}</pre></div><div><p><code>{}</code> lines {}-{}</p><pre>{}</pre></div></div>"#,
                html(&f.a_file),
                f.a_lines.0,
                f.a_lines.1,
                html(&f.a_text),
                html(&f.b_file),
                f.b_lines.0,
                f.b_lines.1,
                html(&f.b_text),
            );
        }
        o.push_str("</details>");
    }
    o
}

/// Sorts the students' table by a column when its header is clicked (again: the other
/// way), and on load by `#sort=KEY` or `#sort=KEY-desc` in the page's address.
const SCRIPT: &str = r#"
function sortStudents(key, desc) {
  const table = document.getElementById('students');
  const heads = [...table.tHead.rows[0].cells];
  const col = heads.findIndex(h => h.dataset.key === key);
  if (col < 0) return;
  const body = table.tBodies[0];
  const rows = [...body.rows];
  rows.sort((a, b) => {
    const x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
    const nx = parseFloat(x), ny = parseFloat(y);
    const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : (x || '').localeCompare(y || '');
    return desc ? -c : c;
  });
  rows.forEach(r => body.appendChild(r));
  heads.forEach(h => h.removeAttribute('aria-sort'));
  heads[col].setAttribute('aria-sort', desc ? 'descending' : 'ascending');
}
document.querySelectorAll('#students th[data-key]').forEach(h => h.addEventListener('click', () => {
  sortStudents(h.dataset.key, h.getAttribute('aria-sort') === 'ascending');
}));
const wanted = /^#sort=([^&]+?)(-desc)?$/.exec(location.hash);
if (wanted) sortStudents(decodeURIComponent(wanted[1]), !!wanted[2]);
"#;

/// The summary page. `pairs` is [`super::similar_pairs`]' answer for `compared`
/// submissions (`None`: not computed).
pub fn summary_html(lab: &Lab, rows: &[Row], pairs: Option<(&[Pair], usize)>) -> String {
    let n = rows.len();
    let max = lab.file.max_score();
    let gradable: Vec<&Report> = rows
        .iter()
        .map(|r| &r.report)
        .filter(|r| r.gradable)
        .collect();
    let mean = if gradable.is_empty() {
        0.0
    } else {
        gradable.iter().map(|r| r.score).sum::<f64>() / gradable.len() as f64
    };
    let not_gradable: Vec<&Row> = rows.iter().filter(|r| !r.report.gradable).collect();
    let unreadable = gradable.iter().filter(|r| r.unreadable.is_some()).count();
    let no_compile = gradable.iter().filter(|r| !r.compiled).count() - unreadable;
    let mut broken = String::new();
    if not_gradable.is_empty() {
        broken.push_str(r#"<p id="not-gradable">Every submission was graded.</p>"#);
    } else {
        broken.push_str(r#"<p>The grader could not grade these (a problem of the grader or the machine, not the students': they have no score, and the next <code>grade-all</code> tries them again):</p><ul id="not-gradable">"#);
        for row in &not_gradable {
            let _ = write!(
                broken,
                "<li><strong>{}</strong>: {}</li>",
                html(&who(row)),
                html(row.report.error.as_deref().unwrap_or("unknown"))
            );
        }
        broken.push_str("</ul>");
    }
    let similar = match pairs {
        Some((pairs, compared)) => format!(
            "<h2>Code similarity</h2>\n<div id=\"similarity\">{}</div>",
            similarity(pairs, compared)
        ),
        None => String::new(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: class summary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }}
#students th[data-key] {{ cursor: pointer; }} #students th[aria-sort=ascending]::after {{ content: " ▲"; }} #students th[aria-sort=descending]::after {{ content: " ▼"; }}
td.pass {{ color: #217a3c; }} td.fail {{ color: #b3261e; font-weight: bold; }} td.na {{ color: #999; }}
.track {{ display: inline-block; width: 200px; height: 12px; background: #eee; vertical-align: middle; }}
.fill {{ height: 12px; background: #3a9a5b; }}
td.rate {{ white-space: nowrap; }}
ol.reasons {{ margin: 0; padding-left: 1.2em; }} .who {{ color: #666; }}
rect.bar {{ fill: #4a7bd0; }}
.caveat {{ background: #fff8e1; padding: 8px; }}
.side {{ display: flex; gap: 1em; }} .side > div {{ flex: 1; min-width: 0; }}
.side pre {{ background: #f6f6f6; padding: 6px; overflow-x: auto; }}
</style></head>
<body>
<h1>{title} (<code>{slug}</code>): class summary</h1>
<p id="counts">{n} submissions: {graded} graded ({no_compile} of them did not compile, {unreadable} could not be unpacked), {ng} not gradable. Mean score of the graded: {mean} / {max}.</p>
<h2>Score histogram</h2>
{svg}
<h2>Students</h2>
<p>Click a column's header to sort by it; each report is the page to send to its student.</p>
{students}
<h2>Not gradable</h2>
{broken}
<h2>Pass rate per rubric item</h2>
<p>The lowest rates show which concept the class missed; the reasons are the failure messages of the submissions that compiled, grouped by their first sentence.</p>
{items}
{similar}
<script>{SCRIPT}</script>
</body></html>
"#,
        title = html(&lab.file.title),
        slug = html(&lab.file.slug),
        graded = gradable.len(),
        ng = not_gradable.len(),
        mean = fmt_points((mean * 10.0).round() / 10.0),
        max = fmt_points(max),
        svg = histogram(max, &gradable),
        students = students(lab, rows),
        items = items(lab, rows),
    )
}

#[cfg(test)]
mod tests {
    use super::{first_sentence, url_path};

    /// A link to a page survives any submission name.
    #[test]
    fn links_are_percent_encoded() {
        assert_eq!(url_path("a b#1?.html"), "a%20b%231%3F.html");
        assert_eq!(url_path("José.html"), "Jos%C3%A9.html");
    }

    /// The same mistake groups whatever the numbers after its first sentence.
    #[test]
    fn reasons_group_by_their_first_sentence() {
        assert_eq!(
            first_sentence("`cat` waits to read fd 0. The write end is fd 4 in pid 123."),
            "`cat` waits to read fd 0."
        );
        assert_eq!(first_sentence("exit status 1\nmore"), "exit status 1");
        assert_eq!(first_sentence("v1.2 differs: x"), "v1.2 differs: x");
    }
}
