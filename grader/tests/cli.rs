//! The `grader` command on bad input, broken submissions and a broken machine: a clear
//! message, a normal report or exit status 2, and never a panic or a half-written file.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::{copy_dir, root};
use grader::report::Report;
use predicates::prelude::*;

fn grader() -> Command {
    let mut cmd = Command::cargo_bin("grader").unwrap();
    cmd.arg("--root")
        .arg(root())
        .timeout(std::time::Duration::from_secs(600));
    cmd
}

/// A copy of the pipes solution with `edit` applied to it.
fn solution_copy(dir: &Path, edit: impl FnOnce(&Path)) -> PathBuf {
    let sub = dir.join("sub");
    copy_dir(&root().join("solutions/pipes/src"), &sub.join("src"));
    edit(&sub);
    sub
}

/// The pipes solution with a `filter` that never returns.
fn hanging_filter(dir: &Path) -> PathBuf {
    solution_copy(dir, |s| {
        let f = s.join("src/filter.rs");
        let text = std::fs::read_to_string(&f).unwrap();
        let sig = "-> io::Result<Filtered> {";
        assert!(
            text.contains(sig),
            "the solution's filter signature changed"
        );
        let hung = text.replacen(sig, &format!("{sig}\n    #[allow(clippy::empty_loop)]\n    loop {{ std::thread::park(); }}\n    #[allow(unreachable_code)]"), 1);
        std::fs::write(&f, hung).unwrap();
    })
}

fn read_report(path: &Path) -> Report {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// An unknown lab is a usage error that names the labs there are.
#[test]
fn unknown_lab_is_a_usage_error() {
    grader()
        .args(["grade", "no-such-lab", "."])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown lab `no-such-lab`")
                .and(predicate::str::contains("pipes")),
        );
}

/// A missing submission is a usage error, and no result file is half-written.
#[test]
fn missing_submission_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    grader()
        .args(["grade", "pipes", "/no/such/submission", "--json"])
        .arg(&json)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read submission /no/such/submission",
        ));
    assert!(!json.exists());
}

/// A bare word where a flag belongs gets clap's usage and status 2.
#[test]
fn bad_arguments_get_usage() {
    grader()
        .args(["grade"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage"));
}

/// `list` shows every lab with its rubric.
#[test]
fn list_shows_the_rubrics() {
    grader().arg("list").assert().success().stdout(
        predicate::str::contains("pipes: Anonymous pipes (100 points)")
            .and(predicate::str::contains("matches-bash")),
    );
}

/// An empty submission is graded as the skeleton: 0 points, and the report says why.
#[test]
fn empty_submission_scores_zero_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let json = dir.path().join("r.json");
    grader()
        .args(["grade", "pipes"])
        .arg(&empty)
        .args(["--only", "parse-and-status", "--json"])
        .arg(&json)
        .assert()
        .success()
        .stdout(predicate::str::contains("the skeleton was graded"));
    let r = read_report(&json);
    assert_eq!(r.score, 0.0);
}

/// A .tar.gz with a top folder, `..` and absolute entries, and extra files: the safe editable
/// files are graded, everything else is listed as ignored with the reason.
#[test]
fn archive_with_unsafe_and_extra_entries_is_graded_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let sub = solution_copy(dir.path(), |_| {});
    let archive = dir.path().join("sub.tar.gz");
    let gz =
        flate2::write::GzEncoder::new(std::fs::File::create(&archive).unwrap(), Default::default());
    let mut b = tar::Builder::new(gz);
    b.append_dir_all("alice-hw1/src", sub.join("src")).unwrap();
    for (name, data) in [
        ("alice-hw1/../../escape.rs", "x"),
        ("/etc/evil.rs", "x"),
        ("alice-hw1/notes.txt", "hi"),
        ("alice-hw1/build.rs", "fn main(){}"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    let json = dir.path().join("r.json");
    grader()
        .args(["grade", "pipes"])
        .arg(&archive)
        .args(["--only", "parse-and-status", "--json"])
        .arg(&json)
        .assert()
        .success();
    let r = read_report(&json);
    assert!(
        r.items
            .iter()
            .find(|i| i.id == "parse-and-status")
            .unwrap()
            .passed,
        "{}",
        r.to_text()
    );
    let ignored: Vec<String> = r
        .ignored
        .iter()
        .map(|s| format!("{}: {}", s.entry, s.reason))
        .collect();
    let has = |needle: &str| ignored.iter().any(|s| s.contains(needle));
    assert!(has("escape.rs: `..` in path"), "{ignored:?}");
    assert!(has("/etc/evil.rs: absolute path"), "{ignored:?}");
    assert!(has("notes.txt: not an editable file"), "{ignored:?}");
    assert!(has("build.rs: not an editable file"), "{ignored:?}");
}

/// A submission that does not compile scores 0 and the report carries the compiler's error.
#[test]
fn compile_error_scores_zero_with_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sub = solution_copy(dir.path(), |s| {
        let lib = s.join("src/lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap();
        std::fs::write(
            &lib,
            format!("{text}\npub fn broken() -> u32 {{ \"not a number\" }}\n"),
        )
        .unwrap();
    });
    let json = dir.path().join("r.json");
    let gs = dir.path().join("results.json");
    grader()
        .args(["grade", "pipes"])
        .arg(&sub)
        .arg("--json")
        .arg(&json)
        .arg("--gradescope")
        .arg(&gs)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("does not compile")
                .and(predicate::str::contains("mismatched types")),
        );
    let r = read_report(&json);
    assert_eq!(r.score, 0.0);
    assert!(!r.compiled && r.gradable);
    assert!(r.compile_errors.unwrap().contains("error[E0308]"));
    let gs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&gs).unwrap()).unwrap();
    assert_eq!(gs["score"], 0.0);
    assert!(gs["output"].as_str().unwrap().contains("mismatched types"));
}

/// When cargo is missing the grader says "not gradable", still writes its result files,
/// and exits 3: never a silent 0 for the student.
#[test]
fn missing_cargo_is_not_gradable() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let gs = dir.path().join("results.json");
    let junit = dir.path().join("r.xml");
    grader()
        .env("CARGO", "/nonexistent/cargo")
        .args(["grade", "pipes"])
        .arg(root().join("solutions/pipes"))
        .arg("--json")
        .arg(&json)
        .arg("--gradescope")
        .arg(&gs)
        .arg("--junit")
        .arg(&junit)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("NOT GRADABLE"));
    let r = read_report(&json);
    assert!(!r.gradable);
    assert!(r.error.unwrap().contains("cannot run cargo"));
    assert!(
        std::fs::read_to_string(&gs)
            .unwrap()
            .contains("NOT GRADABLE")
    );
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<failure")
    );
}

/// A submission whose `filter` never returns is cut at the item's timeout, the report says
/// what the stuck process waited for, and the run still finishes.
#[test]
fn hanging_submission_is_cut_and_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let sub = hanging_filter(dir.path());
    let json = dir.path().join("r.json");
    grader()
        .args(["grade", "pipes"])
        .arg(&sub)
        .args(["--only", "filter-basics", "--timeout", "2", "--json"])
        .arg(&json)
        .assert()
        .success();
    let r = read_report(&json);
    let item = r.items.iter().find(|i| i.id == "filter-basics").unwrap();
    assert!(!item.passed);
    assert!(
        item.message.contains("did not finish within 2 s"),
        "{}",
        item.message
    );
    assert!(
        item.message.contains("futex"),
        "the diagnosis should say where it waits: {}",
        item.message
    );
}

/// A test that gives up at a deadline of its own (the lab's helpers: "did not return within
/// N s") hung as surely as one the grader cut: the item's other tests are reported as not
/// run instead of each waiting out its own deadline, so a deadlocked submission is graded in
/// seconds, not minutes.
#[test]
fn a_test_that_hits_its_own_deadline_stops_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let sub = hanging_filter(dir.path());
    let json = dir.path().join("r.json");
    grader()
        .args(["grade", "pipes"])
        .arg(&sub)
        .args(["--only", "filter-basics", "--json"])
        .arg(&json)
        .assert()
        .success();
    let r = read_report(&json);
    let item = r.items.iter().find(|i| i.id == "filter-basics").unwrap();
    let ran: Vec<_> = item
        .tests
        .iter()
        .filter(|t| !matches!(t.outcome, grader::run::Outcome::NotRun(_)))
        .collect();
    // Tests run two at a time: the first one of the item, and at most one that had started
    // beside it before it hung.
    assert!(
        (1..=2).contains(&ran.len()),
        "only the tests started before the first hang should run: {:#?}",
        item.tests
    );
    for t in &ran {
        assert!(t.stopped(), "{:?}", t.outcome);
    }
    assert!(item.tests.len() > 5, "{:#?}", item.tests);
    assert!(
        item.message
            .contains("were not run because one of them was stopped"),
        "{}",
        item.message
    );
}

/// Nothing compiled from a hidden test outlives its grading, and nothing compiled from a
/// submission is there for the next build of other files: no compiled hidden test in
/// `deps/` and no cached compiler messages of one in `.fingerprint/` once a grading ends,
/// and a later submission's `include_bytes!` of the program the earlier one built (at a
/// fixed path, `debug/pipeline`) does not compile.
#[test]
fn compiled_code_does_not_outlive_its_grading() {
    let dir = tempfile::tempdir().unwrap();
    let sub = solution_copy(dir.path(), |_| {});
    grader()
        .args(["grade", "pipes", "--only", "filter-no-leaks", "-q"])
        .arg(&sub)
        .assert()
        .success();
    let tree = grader::labfile::Tree::locate(Some(&root())).unwrap();
    let target = grader::grade::default_target_dir(&tree);
    {
        // Under the build lock: no grading of another test is halfway through its build.
        let lock = std::fs::File::open(target.join(".grader.lock")).unwrap();
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
        let names = |sub: &Path| -> Vec<String> {
            std::fs::read_dir(sub)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        let fingerprints = target.join("debug/.fingerprint");
        let left: Vec<String> = names(&target.join("debug/deps"))
            .into_iter()
            .filter(|n| n.starts_with("hidden"))
            .chain(
                names(&fingerprints)
                    .into_iter()
                    .filter(|d| d.starts_with("pipes-"))
                    .flat_map(|d| names(&fingerprints.join(d)))
                    .filter(|f| f.contains("-test-hidden")),
            )
            .collect();
        assert!(left.is_empty(), "compiled hidden tests left: {left:?}");
    }
    let thief = dir.path().join("thief");
    copy_dir(&sub, &thief);
    let f = thief.join("src/filter.rs");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        format!(
            "{text}\npub static EARLIER: &[u8] = include_bytes!(\"../../../labs/debug/pipeline\");\n"
        ),
    )
    .unwrap();
    let report = dir.path().join("thief.json");
    // The exit status says whether the grading ran, not the score: the report tells.
    let _ = grader()
        .args(["grade", "pipes", "--only", "filter-basics", "-q", "--json"])
        .arg(&report)
        .arg(&thief)
        .output()
        .unwrap();
    let r = read_report(&report);
    let errors = r.compile_errors.unwrap_or_default();
    assert!(
        !r.compiled && errors.contains("couldn't read") && errors.contains("labs/debug/pipeline"),
        "{errors}"
    );
}

/// A hidden test whose file name does not start with `hidden` is a broken lab, said at
/// staging: the build sweeps compiled hidden tests from the shared target by that prefix.
#[test]
fn a_hidden_test_must_be_named_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let lab_dir = dir.path().join("tree/labs/pipes");
    copy_dir(&root().join("labs/pipes"), &lab_dir);
    std::fs::rename(
        lab_dir.join("hidden/hidden_leaks.rs"),
        lab_dir.join("hidden/secret_leaks.rs"),
    )
    .unwrap();
    let tree = grader::labfile::Tree::locate(Some(&dir.path().join("tree"))).unwrap();
    let lab = tree.lab("pipes").unwrap();
    let staged = dir.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    let err = grader::stage::add_hidden(&lab, &staged).unwrap_err();
    assert!(
        err.to_string().contains("secret_leaks.rs")
            && err.to_string().contains("must start with `hidden`"),
        "{err}"
    );
}
