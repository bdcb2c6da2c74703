//! `grader grade-all` on a folder of mixed submissions: every one graded (a broken one never
//! stops the batch), resumable by content, with each student's report as a page and as text,
//! a gradebook and an LMS export from a roster, and a summary page that renders.
//!
//! Its length is one class folder graded twice and asserted on at length: grading is what
//! costs, so one class serves every file `grade-all` writes.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{copy_dir, root};

/// The items the class is graded on: one test item and one check, cheap on the reference.
const ONLY: [&str; 4] = ["--only", "parse-and-status", "--only", "matches-bash"];
/// Their points, and the lab's total.
const POINTS: &str = "25/100";

fn grade_all(dir: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("grader")
        .unwrap()
        .arg("--root")
        .arg(root())
        .args(["grade-all", "pipes"])
        .arg(dir)
        .args(["--jobs", "2", "--seed", "7"])
        .args(ONLY)
        .args(extra)
        .timeout(std::time::Duration::from_secs(900))
        .assert()
}

fn tar_gz(path: &Path, src: &Path) {
    let gz =
        flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), Default::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("src", src).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn out(a: &assert_cmd::assert::Assert) -> (String, String) {
    let o = a.get_output();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A class of six: the reference (a .tar.gz), the skeleton, one that does not compile, a
/// .zip that is not one, the reference again as a folder holding one archive, and a
/// dangling link the grader cannot read. Every one gets a row and a report; the corrupt
/// upload is the student's 0 with the reason, the dangling link is "not gradable" (blank,
/// exit 3); a second run grades only what changed and what is forced.
#[test]
fn a_class_is_graded_into_reports_a_gradebook_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    std::fs::create_dir_all(&class).unwrap();
    let solution = root().join("solutions/pipes/src");
    tar_gz(&class.join("alice.tar.gz"), &solution);
    copy_dir(&root().join("labs/pipes/src"), &class.join("bob/src"));
    copy_dir(&solution, &class.join("carol/src"));
    std::fs::write(class.join("carol/src/lib.rs"), "this is not rust").unwrap();
    std::fs::write(class.join("dave.zip"), b"not a zip file").unwrap();
    std::fs::create_dir_all(class.join("erin")).unwrap();
    tar_gz(&class.join("erin/submission.tar.gz"), &solution);
    std::os::unix::fs::symlink(dir.path().join("nowhere.zip"), class.join("frank.zip")).unwrap();
    let roster = dir.path().join("roster.csv");
    std::fs::write(
        &roster,
        "submission,id,name,sis_user_id,sis_login_id,section\n\
         alice,101,\"Doe, Alice\",S101,alice@uni,A\nbob,102,Bob Roe,S102,bob@uni,A\n\
         carol,103,Carol,,,B\ndave,104,Dave,,,B\nerin,105,Erin,,,B\ngus,107,Gus,,,B\n",
    )
    .unwrap();

    let first = grade_all(
        &class,
        &[
            "--roster",
            roster.to_str().unwrap(),
            "--canvas-assignment",
            "Lab 1: pipes (77)",
            "--junit",
            dir.path().join("class.xml").to_str().unwrap(),
        ],
    )
    .code(3);
    let (stdout, stderr) = out(&first);
    assert!(
        stdout.contains("6 submissions: 5 graded, 0 skipped (unchanged), 1 not gradable"),
        "{stdout}"
    );
    // Not a terminal: one plain line per finished submission.
    assert_eq!(stderr.matches("/6] ").count(), 6, "{stderr}");
    assert!(
        stderr.contains(&format!("] alice: {POINTS} in ")),
        "{stderr}"
    );
    assert!(stderr.contains("] frank: not gradable: "), "{stderr}");
    assert!(
        stderr.contains("no submission from 1 student(s) of the roster: gus")
            && stderr.contains("the roster names no student for 1 submission(s): frank"),
        "{stderr}"
    );

    let grades = class.join("grades");
    // The gradebook: blank, never 0, for the submission the grader could not grade.
    let csv = read(&grades.join("gradebook.csv"));
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("submission,student_id,name,score,max_score,status,parse-and-status"),
        "{csv}"
    );
    assert!(
        rows[1].starts_with("alice,101,\"Doe, Alice\",25,100,graded,10,"),
        "{csv}"
    );
    assert!(
        rows[2].starts_with("bob,102,Bob Roe,0,100,graded,0,"),
        "{csv}"
    );
    assert!(
        rows[3].starts_with("carol,103,Carol,0,100,does not compile,"),
        "{csv}"
    );
    assert!(
        rows[4].starts_with("dave,104,Dave,0,100,upload unreadable,0,"),
        "{csv}"
    );
    assert!(rows[5].starts_with("erin,105,Erin,25,100,graded,"), "{csv}");
    assert!(rows[6].starts_with("frank,,,,100,not gradable,,"), "{csv}");
    assert!(
        !rows[6].contains(",0"),
        "a not gradable row has no 0: {csv}"
    );
    // Canvas's import and the plain export.
    let canvas = read(&grades.join("canvas.csv"));
    assert!(
        canvas.starts_with(
            "Student,ID,SIS User ID,SIS Login ID,Section,Lab 1: pipes (77)\n    Points Possible,,,,,100\n\"Doe, Alice\",101,S101,alice@uni,A,25\n"
        ),
        "{canvas}"
    );
    assert_eq!(
        canvas.lines().count(),
        7,
        "five students handed in: {canvas}"
    );
    let plain = read(&grades.join("grades.csv"));
    assert!(plain.contains("107,Gus,,,,no submission\n"), "{plain}");
    assert!(plain.contains(",,frank,,100,not gradable\n"), "{plain}");
    let junit = read(&dir.path().join("class.xml"));
    assert_eq!(junit.matches("<testsuite ").count(), 6, "{junit}");

    // The corrupt upload: the student's 0 with the reason, in every form of the report.
    let dave: grader::report::Report =
        serde_json::from_str(&read(&grades.join("dave.json"))).unwrap();
    assert!(dave.gradable && !dave.compiled, "{dave:?}");
    let why = dave.unreadable.clone().unwrap_or_default();
    assert!(why.starts_with("the upload is not a valid zip: "), "{why}");
    assert!(read(&grades.join("dave.txt")).contains("The upload is not a valid zip: "));
    assert!(read(&grades.join("dave.html")).contains(r#"id="unreadable""#));
    // A folder holding one archive is that archive: the reference's score.
    let alice_text = read(&grades.join("alice.txt"));
    assert!(alice_text.contains("PASS") && alice_text.contains(&format!("Score: {POINTS}")));
    let alice_page = read(&grades.join("alice.html"));
    assert!(alice_page.contains(r#"<tr class="pass"><td class="verdict">PASS</td>"#));
    assert!(
        !alice_page.contains("similar"),
        "similarity is never in a report"
    );

    // The summary page.
    let page = grades.join("summary.html");
    let html = read(&page);
    assert!(
        html.contains("6 submissions: 5 graded (1 of them did not compile, 1 could not be unpacked), 1 not gradable"),
        "{html}"
    );
    assert_eq!(html.matches(r#"<tr class="student""#).count(), 6, "{html}");
    assert!(
        html.contains(r#"<a href="alice.html">report</a>"#),
        "{html}"
    );
    assert!(
        html.contains("Doe, Alice (alice)"),
        "the roster's names: {html}"
    );
    let broken = html
        .split(r#"<ul id="not-gradable">"#)
        .nth(1)
        .unwrap_or_default();
    assert!(
        broken.starts_with("<li><strong>frank</strong>: the grader exited with status 2"),
        "{html}"
    );
    let items = grader::labfile::Tree::locate(Some(&root()))
        .and_then(|t| t.lab("pipes"))
        .unwrap()
        .file
        .items
        .len();
    assert_eq!(html.matches(r#"<tr class="item""#).count(), items, "{html}");
    assert!(
        html.contains(r#"data-rate="40.0""#),
        "alice and erin pass 2 of the 5 graded: {html}"
    );
    // The skeleton's failure of matches-bash, grouped with who made it.
    let bash_row = html
        .split(r#"<tr class="item" data-item="matches-bash">"#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_default();
    assert!(
        bash_row.contains(r#"<span class="count">1</span> × `pipeline echo"#)
            && bash_row.contains("(Bob Roe (bob))"),
        "{bash_row}"
    );
    // Similarity: the two copies of the reference, side by side; never the skeleton.
    let similar = html
        .split(r#"<div id="similarity">"#)
        .nth(1)
        .unwrap_or_default();
    assert!(similar.contains("A signal for a person to look at, never a verdict or a grade"));
    assert!(
        similar.contains("<summary><strong>alice</strong> and <strong>erin</strong>"),
        "{similar}"
    );
    assert!(similar.contains(r#"<div class="side">"#), "{similar}");
    assert!(!similar.contains("<strong>bob</strong>"), "{similar}");
    rendered_in_chromium(&page);

    // A second run: bob resubmits (new content), carol is forced; alice, dave and erin are
    // unchanged and kept, frank is tried again.
    let before = std::fs::metadata(grades.join("alice.json"))
        .unwrap()
        .modified()
        .unwrap();
    let lib = class.join("bob/src/lib.rs");
    std::fs::write(&lib, read(&lib) + "\n// resubmitted\n").unwrap();
    let second = grade_all(&class, &["--force", "carol"]).code(3);
    let (stdout, stderr) = out(&second);
    assert!(
        stdout.contains("6 submissions: 2 graded, 3 skipped (unchanged), 1 not gradable"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("] alice: 25/100 (unchanged, kept)"),
        "{stderr}"
    );
    let after = std::fs::metadata(grades.join("alice.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "an unchanged submission was graded again");
    // A misspelt name is refused before anything is graded.
    let typo = grade_all(&class, &["--force", "carl"]).code(2);
    let (_, stderr) = out(&typo);
    assert!(
        stderr.contains("--force names no submission of the folder"),
        "{stderr}"
    );
}

/// A single `grade` of an upload that is not a valid zip: graded (exit 0), a score of 0 with
/// the reason, and every result file written.
#[test]
fn a_corrupt_upload_is_graded_zero_with_every_file_written() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("upload.zip");
    std::fs::write(&zip, b"PK\x03\x04 truncated").unwrap();
    let (json, gs, junit) = (
        dir.path().join("r.json"),
        dir.path().join("results.json"),
        dir.path().join("r.xml"),
    );
    let a = Command::cargo_bin("grader")
        .unwrap()
        .arg("--root")
        .arg(root())
        .args(["grade", "pipes"])
        .arg(&zip)
        .arg("--json")
        .arg(&json)
        .arg("--gradescope")
        .arg(&gs)
        .arg("--junit")
        .arg(&junit)
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    let (stdout, _) = out(&a);
    assert!(
        stdout.contains("The upload is not a valid zip: "),
        "{stdout}"
    );
    let report: grader::report::Report = serde_json::from_str(&read(&json)).unwrap();
    assert!(report.gradable && report.score == 0.0 && report.unreadable.is_some());
    let gradescope: serde_json::Value = serde_json::from_str(&read(&gs)).unwrap();
    assert_eq!(gradescope["score"], 0.0);
    assert!(
        gradescope["output"]
            .as_str()
            .unwrap_or_default()
            .starts_with("The upload is not a valid zip: "),
        "{gradescope}"
    );
    assert!(read(&junit).contains("<testsuite "));
}

/// Finds Chromium, or says why not: CI installs it and sets REQUIRE_CHROMIUM=1; elsewhere a
/// machine without it skips only the rendered checks, saying so.
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("REQUIRE_CHROMIUM").is_none(),
            "REQUIRE_CHROMIUM is set but no Chromium is installed"
        );
        eprintln!(
            "note: no Chromium here: the summary page was checked as HTML only (apt-get install chromium)"
        );
    }
    found
}

/// Runs headless Chromium on `url` with `args` and returns its stdout.
fn headless(chromium: &str, url: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .args(args)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens the page in headless Chromium and checks what it rendered: the DOM after layout and
/// after its script sorted the students by score (`#sort=score-desc`), and a screenshot.
fn rendered_in_chromium(page: &Path) {
    let Some(chromium) = chromium() else { return };
    let url = format!("file://{}#sort=score-desc", page.display());
    let dom = headless(chromium, &url, &["--dump-dom".into()]);
    assert_eq!(
        dom.matches(r#"class="bar""#).count(),
        10,
        "the histogram has ten bars: {dom}"
    );
    assert!(
        dom.contains("Pass rate per rubric item") && dom.contains("matches-bash"),
        "{dom}"
    );
    // Sorted by the script: the best first, the not gradable (no score) last.
    let order: Vec<&str> = dom
        .split(r#"<tr class="student" data-name=""#)
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    assert_eq!(order.len(), 6, "{dom}");
    assert!(
        matches!(order[..2], ["alice", "erin"] | ["erin", "alice"]),
        "sorted by score, descending: {order:?}"
    );
    assert_eq!(order[5], "frank", "{order:?}");
    assert!(
        dom.contains(r#"data-key="score" aria-sort="descending""#),
        "{dom}"
    );
    // A screenshot: a PNG of the size asked for, kept beside the page for a person to see.
    let shot = page.with_file_name("summary.png");
    headless(
        chromium,
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400".into(),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1280, 2400), "the screenshot's size");
    assert!(
        png.len() > 20_000,
        "a blank page compresses to little: {} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("SUMMARY_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

/// On a terminal, progress is a bar that shows done/total, the time left and the submission
/// being graded (here stderr is a pseudo-terminal; elsewhere it is plain lines, above).
#[test]
fn a_terminal_sees_a_bar_with_the_submissions_being_graded() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    copy_dir(&root().join("labs/pipes/src"), &class.join("skel/src"));
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut master = std::fs::File::from(pty.master);
    // Everything the bar draws, read as it comes (a full terminal would stop the grader).
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once the grader, the last holder of the terminal, has exited.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("grader"))
        .arg("--root")
        .arg(root())
        .args(["grade-all", "pipes"])
        .arg(&class)
        .args(["--only", "parse-and-status", "--seed", "7"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(pty.slave))
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let drawn = reader.join().unwrap();
    assert!(
        drawn.contains(" 0/1 ") && drawn.contains("grading: skel"),
        "the bar while grading: {drawn:?}"
    );
    assert!(
        drawn.contains(" 1/1 ") && drawn.contains(" left ~"),
        "{drawn:?}"
    );
    assert!(
        !drawn.contains("[1/1]"),
        "no plain lines on a terminal: {drawn:?}"
    );
}
