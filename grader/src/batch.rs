//! `grader grade-all`: a folder of submissions graded N at a time, resumable, with a
//! gradebook (CSV) and a self-contained summary page for the instructor.
//!
//! Every submission is graded by a child `grader grade` process, so a submission that
//! crashes or hangs the grader costs only its own row ("not gradable"), never the batch.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::labfile::Lab;
use crate::report::{Report, fmt_points};
use crate::sandbox::{self, Ending, Spec};

/// One submission found in the batch folder.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name in the gradebook (file stem or folder name).
    pub name: String,
    /// Its path.
    pub path: PathBuf,
}

/// The submissions in `dir`: sub-folders, .zip and .tar.gz files, sorted by name; `out`
/// (where the grades go, possibly inside `dir`) is not one.
pub fn entries(dir: &Path, out: &Path) -> Result<Vec<Entry>> {
    let grades = out.canonicalize().unwrap_or_else(|_| out.to_owned());
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Submission {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        let file = e.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') || path.canonicalize().is_ok_and(|p| p == grades) {
            continue;
        }
        let name = if path.is_dir() {
            file
        } else if let Some(stem) = file
            .strip_suffix(".tar.gz")
            .or_else(|| file.strip_suffix(".tgz"))
            .or_else(|| file.strip_suffix(".zip"))
        {
            stem.to_owned()
        } else {
            continue;
        };
        out.push(Entry { name, path });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// How to run a batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Submissions graded at once.
    pub jobs: usize,
    /// Regrade submissions that already have a report.
    pub force: bool,
    /// Where reports, the gradebook and the summary go.
    pub out: PathBuf,
    /// The lab tree, passed to each child grader.
    pub root: PathBuf,
    /// Seed for every submission (each report records it).
    pub seed: Option<u64>,
    /// Longest time one submission may take before it is recorded as not gradable.
    pub per_submission: Duration,
}

/// The path of a submission's JSON report.
pub fn report_path(out: &Path, name: &str) -> PathBuf {
    out.join(format!("{name}.json"))
}

/// Grades every entry (skipping those already graded unless forced), calling `progress`
/// after each, and returns each entry's report by the entry's index. After a signal
/// ([`crate::interrupt`]) no entry starts, and those it cut short have no report here (their
/// saved "not gradable" report makes the next run grade them again).
pub fn run(
    lab: &Lab,
    entries: &[Entry],
    opts: &BatchOptions,
    progress: &(dyn Fn(&Entry, &Report) + Sync),
) -> Result<BTreeMap<usize, Report>> {
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    // This very binary, even if a rebuild has replaced the file since it started.
    let exe = PathBuf::from("/proc/self/exe");
    let queue = Mutex::new(entries.iter().enumerate());
    let results: Mutex<BTreeMap<usize, Report>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| {
                loop {
                    if crate::interrupt::signal().is_some() {
                        break;
                    }
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((i, entry)) = next else { break };
                    let report = grade_one(&exe, lab, entry, opts);
                    if crate::interrupt::signal().is_some() && !report.gradable {
                        break;
                    }
                    progress(entry, &report);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(i, report);
                }
            });
        }
    });
    Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
}

fn grade_one(exe: &Path, lab: &Lab, entry: &Entry, opts: &BatchOptions) -> Report {
    let json = report_path(&opts.out, &entry.name);
    if !opts.force {
        // A finished grading is kept; a "not gradable" one is tried again.
        let done = std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice::<Report>(&b).ok());
        if let Some(r) = done.filter(|r| r.gradable) {
            return r;
        }
    }
    let scratch = std::env::temp_dir();
    let mut spec = Spec::new(exe.as_os_str(), &scratch).args([
        "--root".as_ref(),
        opts.root.as_os_str(),
        "grade".as_ref(),
        lab.file.slug.as_ref(),
        entry.path.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
        "--quiet".as_ref(),
    ] as [&std::ffi::OsStr; 8]);
    if let Some(seed) = opts.seed {
        spec = spec.args(["--seed", &seed.to_string()]);
    }
    // The child grader needs cargo and its environment, like any grader.
    spec.env = std::env::vars_os().collect();
    let outcome = sandbox::spawn(&spec).map(|mut p| {
        let ending = p.wait_until(std::time::Instant::now() + opts.per_submission);
        let ending = ending.unwrap_or_else(|| {
            p.kill();
            Ending::TimedOut
        });
        (ending, String::from_utf8_lossy(&p.stderr().0).into_owned())
    });
    let read = || {
        std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice::<Report>(&b).ok())
    };
    match (outcome, read()) {
        (Ok((Ending::Exited(0 | 3), _)), Some(r)) => r,
        (Ok((ending, stderr)), _) => broken(
            lab,
            entry,
            &json,
            &format!("the grader {}: {}", ending.describe(), stderr.trim()),
        ),
        (Err(e), _) => broken(lab, entry, &json, &format!("cannot start the grader: {e}")),
    }
}

/// A "not gradable" report for a submission the child grader could not grade, saved so that
/// the gradebook has a row for it (a rerun tries it again).
fn broken(lab: &Lab, entry: &Entry, json: &Path, why: &str) -> Report {
    let r = Report::new(
        &lab.file.slug,
        &lab.file.title,
        &entry.path,
        lab.file.max_score(),
        0,
    )
    .not_gradable(Some(&lab.file), why);
    let _ = Report::write_atomic(json, &r.to_json());
    r
}

/// The gradebook: one row per submission, one column per item.
pub fn gradebook_csv(lab: &Lab, entries: &[Entry], reports: &[Report]) -> String {
    let mut o = String::from("submission,score,max_score,status");
    for item in &lab.file.items {
        let _ = write!(o, ",{}", item.id);
    }
    o.push('\n');
    for (e, r) in entries.iter().zip(reports) {
        let status = if !r.gradable {
            "not gradable"
        } else if !r.compiled {
            "does not compile"
        } else {
            "graded"
        };
        let _ = write!(
            o,
            "{},{},{},{status}",
            csv(&e.name),
            fmt_points(r.score),
            fmt_points(r.max_score)
        );
        for item in &lab.file.items {
            let s = r
                .items
                .iter()
                .find(|i| i.id == item.id)
                .map(|i| fmt_points(i.score))
                .unwrap_or_default();
            let _ = write!(o, ",{s}");
        }
        o.push('\n');
    }
    o
}

/// The score range of histogram bin `i` (tenths of the maximum), in percent.
fn bin_label(i: usize) -> String {
    if i == 9 {
        "90-100%".into()
    } else {
        format!("{}-{}%", i * 10, i * 10 + 9)
    }
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The summary page: score histogram and pass rate per item, one self-contained HTML file.
pub fn summary_html(lab: &Lab, reports: &[Report]) -> String {
    let n = reports.len();
    let max = lab.file.max_score();
    let gradable: Vec<&Report> = reports.iter().filter(|r| r.gradable).collect();
    let mean = if gradable.is_empty() {
        0.0
    } else {
        gradable.iter().map(|r| r.score).sum::<f64>() / gradable.len() as f64
    };
    // Ten bins of the score as a fraction of the maximum; a full score lands in the last.
    let mut bins = [0usize; 10];
    for r in &gradable {
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
    let mut rows = String::new();
    for item in &lab.file.items {
        let passed = gradable
            .iter()
            .filter(|r| r.items.iter().any(|i| i.id == item.id && i.passed))
            .count();
        let rate = if gradable.is_empty() {
            0.0
        } else {
            100.0 * passed as f64 / gradable.len() as f64
        };
        let _ = write!(
            rows,
            r#"<tr class="item"><td><code>{}</code></td><td>{}</td><td>{}</td><td class="rate" data-rate="{rate:.1}"><div class="track"><div class="fill" style="width:{rate:.1}%"></div></div> {rate:.0}% ({passed}/{})</td></tr>"#,
            html(&item.id),
            html(&item.title),
            fmt_points(item.points),
            gradable.len()
        );
    }
    let not_gradable = n - gradable.len();
    let no_compile = gradable.iter().filter(|r| !r.compiled).count();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: class summary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
.track {{ display: inline-block; width: 200px; height: 12px; background: #eee; vertical-align: middle; }}
.fill {{ height: 12px; background: #3a9a5b; }}
td.rate {{ white-space: nowrap; }}
rect.bar {{ fill: #4a7bd0; }}
</style></head>
<body>
<h1>{title} (<code>{slug}</code>): class summary</h1>
<p id="counts">{n} submissions: {graded} graded ({no_compile} of them did not compile), {not_gradable} not gradable. Mean score of the graded: {mean} / {max}.</p>
<h2>Score histogram</h2>
{svg}
<h2>Pass rate per rubric item</h2>
<p>The lowest rates show which concept the class missed.</p>
<table id="items"><tr><th>item</th><th>what it grades</th><th>points</th><th>passed</th></tr>{rows}</table>
</body></html>
"#,
        title = html(&lab.file.title),
        slug = html(&lab.file.slug),
        graded = gradable.len(),
        mean = fmt_points((mean * 10.0).round() / 10.0),
        max = fmt_points(max),
    )
}
