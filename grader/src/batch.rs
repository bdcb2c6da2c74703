//! `grader grade-all`: a folder of submissions graded N at a time, resumable by content,
//! with each student's report (JSON, HTML, text), a gradebook (CSV, and Canvas's import
//! format with a roster) and a self-contained summary page for the instructor.
//!
//! Every submission is graded by a child `grader grade` process, so a submission that
//! crashes or hangs the grader costs only its own row ("not gradable"), never the batch.
//!
//! # Layout
//!
//! - this file: finding the submissions, grading them (or skipping the unchanged ones), and
//!   writing each one's report files;
//! - `progress.rs`: what a person watching sees (a bar on a terminal, lines otherwise);
//! - `gradebook.rs`: the gradebook, the roster, and the exports an LMS imports;
//! - `summary.rs`: the class summary page;
//! - `similarity.rs`: code similarity across the class (winnowed fingerprints), a signal for
//!   a person to look at, shown only on the summary page.

mod gradebook;
mod progress;
mod similarity;
mod summary;

pub use gradebook::{Roster, Student, canvas_csv, gradebook_csv, grades_csv};
pub use progress::{Lines, Progress, for_stderr};
pub use similarity::{Fragment, Pair, similar_pairs};
pub use summary::summary_html;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::labfile::Lab;
use crate::report::Report;
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

/// Which submissions to grade again although their content has not changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Force {
    /// None: an unchanged, graded submission keeps its report.
    #[default]
    None,
    /// Every one.
    All,
    /// These, by name.
    Some(Vec<String>),
}

impl Force {
    fn covers(&self, name: &str) -> bool {
        match self {
            Force::None => false,
            Force::All => true,
            Force::Some(names) => names.iter().any(|n| n == name),
        }
    }
}

/// How to run a batch.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Submissions graded at once.
    pub jobs: usize,
    /// Regrade these even when unchanged.
    pub force: Force,
    /// Where reports, the gradebook and the summary go.
    pub out: PathBuf,
    /// The lab tree, passed to each child grader.
    pub root: PathBuf,
    /// Seed for every submission (each report records it).
    pub seed: Option<u64>,
    /// Longest time one submission may take before it is recorded as not gradable.
    pub per_submission: Duration,
    /// Who each submission is, for the gradebook, the exports and the summary page.
    pub roster: Option<Roster>,
    /// The assignment's column in `canvas.csv` (written with a roster); default: the lab's
    /// title.
    pub canvas_assignment: Option<String>,
    /// Also write JUnit XML (one suite per submission) here.
    pub junit: Option<PathBuf>,
    /// Compare the submissions' code for the summary page.
    pub similarity: bool,
    /// Grade only these items (all when empty), as `grade --only`.
    pub only: Vec<String>,
}

/// What a whole `grade-all` did.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Submissions found.
    pub total: usize,
    /// Graded in this run.
    pub graded: usize,
    /// Kept from an earlier run: unchanged since.
    pub skipped: usize,
    /// Not gradable in this run.
    pub not_gradable: usize,
    /// The files written in the output folder (besides each submission's reports).
    pub files: Vec<String>,
    /// Submissions the roster does not name.
    pub unknown: Vec<String>,
    /// Students of the roster with no submission.
    pub missing: Vec<String>,
}

/// `grade-all`: grades the submissions in `dir` ([`run`]), writes each one's report as JSON,
/// HTML and text, then the gradebook, the exports and the summary page, and says what it did.
pub fn grade_class(lab: &Lab, dir: &Path, opts: &BatchOptions) -> Result<Tally> {
    let list = entries(dir, &opts.out)?;
    if let Force::Some(names) = &opts.force {
        // A misspelt name would otherwise regrade nothing, silently.
        if let Some(name) = names.iter().find(|n| !list.iter().any(|e| &e.name == *n)) {
            return Err(Error::Submission {
                path: dir.join(name),
                message: format!(
                    "--force names no submission of the folder (its submissions: {})",
                    list.iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    let progress = for_stderr(list.len());
    let results = run(lab, &list, opts, progress.as_ref());
    progress.done();
    let results = results?;
    let mut tally = Tally {
        total: list.len(),
        ..Tally::default()
    };
    let mut rows = Vec::new();
    for (i, (report, fate)) in results {
        match fate {
            Fate::Graded => tally.graded += 1,
            Fate::Skipped => tally.skipped += 1,
            Fate::NotGradable => tally.not_gradable += 1,
        }
        let name = list[i].name.clone();
        write_pages(&opts.out, &name, &report)?;
        let student = opts.roster.as_ref().and_then(|r| r.find(&name)).cloned();
        if opts.roster.is_some() && student.is_none() {
            tally.unknown.push(name.clone());
        }
        rows.push(Row {
            name,
            student,
            report,
            fate,
        });
    }
    if let Some(roster) = &opts.roster {
        tally.missing = roster
            .students
            .iter()
            .filter(|s| !list.iter().any(|e| e.name == s.submission))
            .map(|s| s.submission.clone())
            .collect();
    }
    let write = |tally: &mut Tally, name: &str, text: &str| {
        let p = opts.out.join(name);
        Report::write_atomic(&p, text).map_err(|e| Error::io(&p, e))?;
        tally.files.push(name.to_owned());
        Ok::<(), Error>(())
    };
    write(&mut tally, "gradebook.csv", &gradebook_csv(lab, &rows))?;
    write(
        &mut tally,
        "grades.csv",
        &grades_csv(&rows, opts.roster.as_ref()),
    )?;
    if let Some(roster) = &opts.roster {
        let column = opts
            .canvas_assignment
            .clone()
            .unwrap_or_else(|| lab.file.title.clone());
        write(
            &mut tally,
            "canvas.csv",
            &canvas_csv(&rows, roster, &column),
        )?;
    }
    let pairs = if opts.similarity {
        let editable = lab.file.editable_set()?;
        let skeleton = similarity::code_of(&lab.dir, &editable);
        let class: Vec<(String, similarity::Code)> = rows
            .iter()
            .filter_map(|row| {
                let e = list.iter().find(|e| e.name == row.name)?;
                Some((row.name.clone(), similarity::code_of(&e.path, &editable)))
            })
            .filter(|(_, code)| !code.is_empty())
            .collect();
        Some((similar_pairs(&skeleton, &class), class.len()))
    } else {
        None
    };
    let pairs_ref = pairs.as_ref().map(|(p, n)| (p.as_slice(), *n));
    write(
        &mut tally,
        "summary.html",
        &summary_html(lab, &rows, pairs_ref),
    )?;
    if let Some(j) = &opts.junit {
        let reports: Vec<Report> = rows.iter().map(|r| r.report.clone()).collect();
        let xml = crate::report::junit_document(&reports);
        Report::write_atomic(j, &xml).map_err(|e| Error::io(j, e))?;
    }
    Ok(tally)
}

/// What became of one submission in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Graded now (whatever the score).
    Graded,
    /// Its report was kept: graded before, and its content has not changed since.
    Skipped,
    /// The grader could not grade it (tried again on the next run).
    NotGradable,
}

/// One submission's line in the gradebook and on the summary page.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its name in the class folder.
    pub name: String,
    /// The student it is, when a roster names them.
    pub student: Option<Student>,
    /// Its report.
    pub report: Report,
    /// What became of it in this run.
    pub fate: Fate,
}

/// The path of a submission's JSON report.
pub fn report_path(out: &Path, name: &str) -> PathBuf {
    out.join(format!("{name}.json"))
}

/// The file name of a submission's HTML report (the summary page links to it).
pub fn page_name(name: &str) -> String {
    format!("{name}.html")
}

/// Writes a submission's report beside its JSON as a page (`NAME.html`) and as text
/// (`NAME.txt`), ready to send to the student.
pub fn write_pages(out: &Path, name: &str, report: &Report) -> Result<()> {
    for (file, text) in [
        (page_name(name), report.to_html()),
        (format!("{name}.txt"), report.to_text()),
    ] {
        let p = out.join(file);
        Report::write_atomic(&p, &text).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// The content hash of a submission as it is now ([`crate::submission::content_hash`]), or
/// `None` when it cannot be read at all (then it is graded, and the grader says why).
pub fn content_hash(path: &Path) -> Option<String> {
    crate::submission::load(path)
        .ok()
        .map(|s| crate::submission::content_hash(&s))
}

/// Grades every entry (skipping those graded before whose content has not changed, unless
/// forced), telling `progress` as each starts and ends, and returns each entry's report and
/// fate by the entry's index. After a signal ([`crate::interrupt`]) no entry starts, and
/// those it cut short have no report here (their saved "not gradable" report makes the next
/// run grade them again).
pub fn run(
    lab: &Lab,
    entries: &[Entry],
    opts: &BatchOptions,
    progress: &dyn Progress,
) -> Result<BTreeMap<usize, (Report, Fate)>> {
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    // This very binary, even if a rebuild has replaced the file since it started.
    let exe = PathBuf::from("/proc/self/exe");
    let queue = Mutex::new(entries.iter().enumerate());
    let results: Mutex<BTreeMap<usize, (Report, Fate)>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| {
                loop {
                    if crate::interrupt::signal().is_some() {
                        break;
                    }
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((i, entry)) = next else { break };
                    // What was graded and how: a report graded with other `--only` items
                    // is not this run's.
                    let hash = content_hash(&entry.path).map(|h| match opts.only.as_slice() {
                        [] => h,
                        only => format!("{h} only={}", only.join(",")),
                    });
                    let (report, fate) = match kept(opts, entry, hash.as_deref()) {
                        Some(r) => (r, Fate::Skipped),
                        None => {
                            progress.started(entry);
                            let mut r = grade_one(&exe, lab, entry, opts);
                            if crate::interrupt::signal().is_some() && !r.gradable {
                                progress.stopped(entry);
                                break;
                            }
                            if r.gradable {
                                r.content_hash = hash;
                                let json = report_path(&opts.out, &entry.name);
                                let _ = Report::write_atomic(&json, &r.to_json());
                            }
                            let fate = if r.gradable {
                                Fate::Graded
                            } else {
                                Fate::NotGradable
                            };
                            (r, fate)
                        }
                    };
                    progress.finished(entry, &report, fate);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(i, (report, fate));
                }
            });
        }
    });
    Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// The saved report of `entry` when it stands: graded (not "not gradable"), of the content
/// the submission has now, and not forced.
fn kept(opts: &BatchOptions, entry: &Entry, hash: Option<&str>) -> Option<Report> {
    if opts.force.covers(&entry.name) {
        return None;
    }
    let saved = std::fs::read(report_path(&opts.out, &entry.name))
        .ok()
        .and_then(|b| serde_json::from_slice::<Report>(&b).ok())?;
    (saved.gradable && hash.is_some() && saved.content_hash.as_deref() == hash).then_some(saved)
}

fn grade_one(exe: &Path, lab: &Lab, entry: &Entry, opts: &BatchOptions) -> Report {
    let json = report_path(&opts.out, &entry.name);
    // A report from an earlier run must not pass for this run's.
    let _ = std::fs::remove_file(&json);
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
    for item in &opts.only {
        spec = spec.args(["--only", item]);
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
        (Ok((ending, stderr)), _) => {
            let said = match stderr.trim() {
                "" => "it printed nothing".to_owned(),
                s => format!("it printed: {s}"),
            };
            broken(
                lab,
                entry,
                &json,
                &format!("the grader {} without a report; {said}", ending.describe()),
            )
        }
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
