//! `grader grade-all` on a folder of mixed submissions: every one graded (a broken one never
//! stops the batch), resumable, with a gradebook and a summary page that renders.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{copy_dir, root};
use predicates::prelude::*;

fn grade_all(dir: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("grader")
        .unwrap()
        .arg("--root")
        .arg(root())
        .args(["grade-all", "pipes"])
        .arg(dir)
        .args(["--jobs", "2", "--seed", "7"])
        .args(extra)
        .timeout(std::time::Duration::from_secs(900))
        .assert()
}

/// A class of four: a correct solution (as a .tar.gz), the untouched skeleton, one that does
/// not compile, and one that is not a submission at all. All get a row; a second run grades
/// nothing again; the summary page shows the histogram and every item's pass rate.
#[test]
fn a_class_is_graded_into_a_gradebook_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    std::fs::create_dir_all(&class).unwrap();
    let sol = dir.path().join("sol");
    copy_dir(&root().join("solutions/pipes/src"), &sol.join("src"));
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(class.join("alice.tar.gz")).unwrap(),
        Default::default(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("src", sol.join("src")).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    copy_dir(&root().join("labs/pipes/src"), &class.join("bob/src"));
    copy_dir(
        &root().join("solutions/pipes/src"),
        &class.join("carol/src"),
    );
    std::fs::write(class.join("carol/src/lib.rs"), "this is not rust").unwrap();
    std::fs::write(class.join("dave.zip"), b"not a zip file").unwrap();

    grade_all(
        &class,
        &["--junit", dir.path().join("class.xml").to_str().unwrap()],
    )
    .success()
    .stdout(predicate::str::contains("4 submissions graded"));
    let grades = class.join("grades");
    let csv = std::fs::read_to_string(grades.join("gradebook.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(
        rows[0].starts_with("submission,score,max_score,status,parse-and-status"),
        "{csv}"
    );
    assert!(rows[1].starts_with("alice,100,100,graded,"), "{csv}");
    assert!(rows[2].starts_with("bob,0,100,graded,"), "{csv}");
    assert!(
        rows[3].starts_with("carol,0,100,does not compile,"),
        "{csv}"
    );
    assert!(rows[4].starts_with("dave,0,100,not gradable,"), "{csv}");
    let junit = std::fs::read_to_string(dir.path().join("class.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 4, "{junit}");

    // Resumable: what is graded stays graded (its report is not rewritten).
    let before = std::fs::metadata(grades.join("alice.json"))
        .unwrap()
        .modified()
        .unwrap();
    grade_all(&class, &[]).success();
    let after = std::fs::metadata(grades.join("alice.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        before, after,
        "a graded submission was graded again without --force"
    );

    let html = std::fs::read_to_string(grades.join("summary.html")).unwrap();
    assert!(
        html.contains("4 submissions: 3 graded (1 of them did not compile), 1 not gradable"),
        "{html}"
    );
    let items = grader::labfile::Tree::locate(Some(&root()))
        .and_then(|t| t.lab("pipes"))
        .unwrap()
        .file
        .items
        .len();
    assert_eq!(
        html.matches(r#"<tr class="item">"#).count(),
        items,
        "one row per rubric item"
    );
    assert!(
        html.contains(r#"data-rate="33.3""#),
        "alice passes 1 of the 3 graded: {html}"
    );
    rendered_in_chromium(&grades.join("summary.html"));
}

/// Opens the page in headless Chromium and checks what it rendered: the DOM after layout,
/// with the histogram's bars and the item table. CI installs Chromium and sets
/// REQUIRE_CHROMIUM=1; elsewhere a machine without Chromium skips only this part, saying so.
fn rendered_in_chromium(page: &Path) {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        assert!(
            std::env::var_os("REQUIRE_CHROMIUM").is_none(),
            "REQUIRE_CHROMIUM is set but no Chromium is installed"
        );
        eprintln!(
            "note: no Chromium here: the summary page was checked as HTML only (apt-get install chromium)"
        );
        return;
    };
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
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        dom.matches(r#"class="bar""#).count(),
        10,
        "the histogram has ten bars: {dom}"
    );
    assert!(
        dom.contains("Pass rate per rubric item") && dom.contains("matches-bash"),
        "{dom}"
    );
}
