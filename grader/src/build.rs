//! Step 2, build: `cargo build --tests --bins --offline` on the staged crate with a target
//! folder shared by every grading of the lab, so dependencies compile once per machine; then
//! the hidden tests alone. Where the grader is root, cargo runs unprivileged in a jail.
//!
//! The built binaries are copied out under a lock, so that two graders building the same lab
//! at once never run each other's programs. A compile error is a graded outcome
//! ([`Built::CompileError`]); only a failure that is not the submission's fault is an `Error`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::sandbox::{self, Ending};

mod sweep;
mod toolchain;
use sweep::{Forget, RemoveOnDrop};
pub use sweep::{crates_dir, sync_tree};
pub use toolchain::cargo;
use toolchain::{Toolchain, cargo_spec};

/// The programs a build produced, copied into the run's folder.
#[derive(Debug, Clone, Default)]
pub struct Artifacts {
    /// Binary targets by name.
    pub bins: BTreeMap<String, PathBuf>,
    /// Integration-test executables by test file stem.
    pub tests: BTreeMap<String, PathBuf>,
    /// When the hidden tests did not compile against the submission (its public items
    /// differ from the skeleton's): which tests, and the compiler's headlines.
    pub hidden_error: Option<(Vec<String>, String)>,
}

/// What building a submission gave.
#[derive(Debug)]
pub enum Built {
    /// It compiled.
    Ok(Artifacts),
    /// It did not compile; the compiler's first errors.
    CompileError(String),
}

/// Builds the crate staged in `staged` with `target_dir`, copying the programs into `out`:
/// its binaries, and the integration tests (visible and hidden) whose file stem
/// `wanted_tests` accepts.
///
/// Under one lock of the target folder, the staged files are copied into the lab's build
/// folder ([`crates_dir`]`/<package>`), rewriting only the files whose content differs: cargo then
/// recompiles only what changed since the last grading of the lab, and nothing at all for a
/// submission graded before (a class of identical reference copies, a regrade). The build
/// goes in two halves: first the submission's own targets (library, binaries, their unit
/// tests and the visible tests) with no hidden test present, then `add_hidden` stages the
/// hidden tests into the build folder and only their test targets are built; they are
/// removed again before the lock is released. Code of the submission is never compiled while
/// a hidden test sits beside it.
pub fn build(
    staged: &Path,
    package: &str,
    target_dir: &Path,
    out: &Path,
    add_hidden: &dyn Fn(&Path) -> Result<Vec<String>>,
    wanted_tests: &dyn Fn(&str) -> bool,
) -> Result<Built> {
    let tc = Toolchain::find();
    let manifest = staged.join("Cargo.toml");
    let manifest = manifest.to_string_lossy();
    std::fs::create_dir_all(target_dir).map_err(|e| Error::io(target_dir, e))?;

    // Dependencies first, online if the network allows, else from the local cache: a fresh
    // machine (as CI starts) has downloaded nothing the labs need. This runs as the grader:
    // the manifest and lock file are the lab's, never the submission's.
    let fetch = |offline: bool| -> Result<sandbox::Outcome> {
        let mut args = vec!["fetch", "--quiet", "--manifest-path", &manifest];
        if offline {
            args.push("--offline");
        }
        sandbox::run(
            &cargo_spec(&tc, &args, staged, None),
            Duration::from_secs(900),
        )
        .map_err(|e| Error::Infrastructure(format!("cannot run cargo ({e}): is Rust installed?")))
    };
    let fetched = fetch(false)?;
    if fetched.ending != Ending::Exited(0) {
        let offline = fetch(true)?;
        if offline.ending != Ending::Exited(0) {
            return Err(Error::Infrastructure(format!(
                "cannot get the lab's dependencies (online: {}; offline: {}):\n{}",
                fetched.ending.describe(),
                offline.ending.describe(),
                String::from_utf8_lossy(&offline.stderr)
            )));
        }
    }

    let lock_path = target_dir.join(".grader.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    // Another grading of this machine may hold it for a whole build: wait for it, but not
    // past a signal that tells this grader to stop.
    let mut lock_file = lock_file;
    let _lock = loop {
        match nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err((file, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                crate::interrupt::check()?;
                std::thread::sleep(Duration::from_millis(50));
                lock_file = file;
            }
            Err((_, e)) => return Err(Error::io(&lock_path, e.into())),
        }
    };

    // Cargo judges freshness by mtimes: a file rewritten now, under the lock, is newer than
    // every output in the target folder, and a file left alone has the content it had when
    // the outputs that depend on it were built.
    // Beside the target folder, not in it: the build's jail shows this lab's build folder
    // and the target folder, never another lab's last submission.
    let crate_dir = crates_dir(target_dir).join(package);
    let changed = sync_tree(staged, &crate_dir).map_err(|e| Error::io(&crate_dir, e))?;
    // What earlier builds left where this one could name it (`include_bytes!` of their
    // programs, compiled libraries and tests, or of the compiler's cached messages, which
    // quote source lines) goes first: every other lab's, and this lab's unless this build
    // is of the very same files (then it is this submission's own code, and reusing it
    // makes a regrade cheap). A grader stopped in the middle of a grading may also have
    // left compiled hidden tests: the lab trees name them `hidden*.rs`.
    let crates = crates_dir(target_dir);
    for other in std::fs::read_dir(&crates).into_iter().flatten().flatten() {
        let name = other.file_name().to_string_lossy().into_owned();
        if name != package && other.file_type().is_ok_and(|t| t.is_dir()) {
            Forget::own(target_dir, &other.path(), &name).sweep();
        }
    }
    if changed {
        Forget::own(target_dir, &crate_dir, package).sweep();
    }
    Forget::sweep_deps(target_dir, |name| name.starts_with("hidden"));
    let staged = crate_dir.as_path();
    let manifest = staged.join("Cargo.toml");
    let manifest = manifest.to_string_lossy();

    let who = crate::sandbox::isolate::build_identity();
    let jail = who.map(|who| (target_dir, who));
    for dir in [target_dir, staged] {
        crate::sandbox::isolate::hand_over_tree(dir, who).map_err(|e| Error::io(dir, e))?;
    }
    let target = target_dir.to_string_lossy();
    let cargo_build = |targets: &[&str]| -> Result<sandbox::Outcome> {
        let mut args = vec![
            "build",
            "--offline",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
            &manifest,
            "--target-dir",
            &target,
        ];
        args.extend_from_slice(targets);
        let built = sandbox::run(
            &cargo_spec(&tc, &args, staged, jail),
            Duration::from_secs(900),
        )
        .map_err(|e| Error::Infrastructure(format!("cannot run cargo: {e}")))?;
        if built.ending == Ending::TimedOut {
            return Err(Error::Infrastructure(
                "cargo build did not finish in 15 minutes".into(),
            ));
        }
        Ok(built)
    };

    // The programs, and the integration tests the grading will run (not the crate's own
    // unit tests, which nothing grades): a grading of some items (`--only`) compiles less.
    let mut visible: Vec<String> = std::fs::read_dir(staged.join("tests"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".rs")?.to_owned();
            (e.path().is_file() && wanted_tests(&stem)).then_some(stem)
        })
        .collect();
    visible.sort();
    let mut own_targets = vec!["--bins"];
    for stem in &visible {
        own_targets.extend(["--test", stem.as_str()]);
    }
    let own = cargo_build(&own_targets)?;
    let stderr = String::from_utf8_lossy(&own.stderr);
    if own.ending != Ending::Exited(0) {
        if stderr.contains(&format!("could not compile `{package}`")) {
            return Ok(Built::CompileError(compiler_errors(&stderr)));
        }
        return Err(Error::Infrastructure(format!(
            "cargo build failed:\n{}",
            tail(&stderr, 40)
        )));
    }
    let mut artifacts = parse_artifacts(&String::from_utf8_lossy(&own.stdout), package);

    let hidden = add_hidden(staged)?;
    // What compiling them leaves in the shared target folder goes on every path out
    // (declared after the lock, so dropped before it is released): the next build of this
    // lab, even of the same files, compiles the submission's own targets in this folder.
    let _forget = Forget::hidden(target_dir, package, &hidden);
    // The hidden sources leave the build folder whatever happens next.
    let _remove_hidden = RemoveOnDrop(
        hidden
            .iter()
            .map(|stem| staged.join("tests").join(format!("{stem}.rs")))
            .collect(),
    );
    if !hidden.is_empty() {
        for stem in &hidden {
            let path = staged.join("tests").join(format!("{stem}.rs"));
            crate::sandbox::isolate::hand_over_tree(&path, who).map_err(|e| Error::io(&path, e))?;
        }
        let mut targets = Vec::new();
        for stem in hidden.iter().filter(|s| wanted_tests(s)) {
            targets.extend(["--test", stem.as_str()]);
        }
        let tests = if targets.is_empty() {
            None
        } else {
            Some(cargo_build(&targets)?)
        };
        if let Some(tests) = tests {
            if tests.ending == Ending::Exited(0) {
                let more = parse_artifacts(&String::from_utf8_lossy(&tests.stdout), package);
                artifacts.tests.extend(more.tests);
            } else {
                let stderr = String::from_utf8_lossy(&tests.stderr);
                artifacts.hidden_error = Some((hidden.clone(), headlines(&stderr)));
            }
        }
    }

    let mut copied = Artifacts {
        hidden_error: artifacts.hidden_error.clone(),
        ..Artifacts::default()
    };
    for (kind, map, into) in [
        ("bin", &artifacts.bins, &mut copied.bins),
        ("tests", &artifacts.tests, &mut copied.tests),
    ] {
        let dir = out.join(kind);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for (name, from) in map {
            let to = dir.join(name);
            std::fs::copy(from, &to).map_err(|e| Error::io(&to, e))?;
            into.insert(name.clone(), to);
        }
    }
    Ok(Built::Ok(copied))
}

/// The first line of each of rustc's errors, without the source lines it quotes: what a
/// student may read about code they must not see (the hidden tests).
fn headlines(stderr: &str) -> String {
    let mut out: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error") && !l.starts_with("error: could not compile"))
        .collect();
    out.dedup();
    out.truncate(10);
    if out.is_empty() {
        "(the compiler gave no error line)".into()
    } else {
        out.join("\n")
    }
}

/// The executables of `package` named in cargo's JSON messages.
fn parse_artifacts(json_lines: &str, package: &str) -> Artifacts {
    let mut a = Artifacts::default();
    for line in json_lines.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let pkg_ok = msg["package_id"].as_str().is_some_and(|id| {
            id.contains(&format!("#{package}@"))
                || id.starts_with(&format!("{package} "))
                || id.contains(&format!("/{package}#"))
        });
        if !pkg_ok {
            continue;
        }
        let name = msg["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let kinds: Vec<&str> = msg["target"]["kind"]
            .as_array()
            .map(|k| k.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let test = msg["profile"]["test"].as_bool().unwrap_or(false);
        if kinds.contains(&"bin") && !test {
            a.bins.insert(name, PathBuf::from(exe));
        } else if kinds.contains(&"test") && test {
            a.tests.insert(name, PathBuf::from(exe));
        }
    }
    a
}

/// The error blocks of rustc's output (warnings left out), at most ~60 lines.
pub fn compiler_errors(stderr: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    // An error runs from its `error` line to the next blank line; cargo's own status lines
    // ("Compiling ...") may stand right before it, with no blank line between.
    let mut inside = false;
    for line in stderr.lines() {
        if line.starts_with("error") {
            inside = !line.starts_with("error: could not compile");
        } else if line.trim().is_empty() || line.starts_with("warning") {
            if inside {
                out.push("");
            }
            inside = false;
        }
        if inside {
            out.push(line);
        }
        if out.len() > 60 {
            break;
        }
    }
    if out.is_empty() {
        return tail(stderr, 30);
    }
    let mut text = out[..out.len().min(60)].join("\n").trim_end().to_owned();
    if out.len() > 60 {
        text.push_str("\n... (more errors: run `cargo build` yourself to see them all)");
    }
    text
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only files whose content changed are rewritten; files the source lacks go.
    #[test]
    fn sync_rewrites_only_what_changed() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir_all(from.path().join("src")).unwrap();
        std::fs::write(from.path().join("src/a.rs"), "a").unwrap();
        std::fs::write(from.path().join("src/b.rs"), "b").unwrap();
        std::fs::create_dir_all(to.path().join("tests")).unwrap();
        std::fs::write(to.path().join("tests/hidden.rs"), "h").unwrap();
        assert!(sync_tree(from.path(), to.path()).unwrap());
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for f in ["src/a.rs", "src/b.rs"] {
            std::fs::File::options()
                .write(true)
                .open(to.path().join(f))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert!(
            !sync_tree(from.path(), to.path()).unwrap(),
            "the same files again: nothing changed"
        );
        std::fs::write(from.path().join("src/b.rs"), "b2").unwrap();
        assert!(sync_tree(from.path(), to.path()).unwrap(), "b.rs changed");
        let mtime = |f: &str| {
            std::fs::metadata(to.path().join(f))
                .unwrap()
                .modified()
                .unwrap()
        };
        assert_eq!(mtime("src/a.rs"), old, "an unchanged file was rewritten");
        assert!(mtime("src/b.rs") > old);
        assert_eq!(
            std::fs::read_to_string(to.path().join("src/b.rs")).unwrap(),
            "b2"
        );
        assert!(
            !to.path().join("tests").exists(),
            "a file the source lacks stayed"
        );
    }

    /// The first error stands right after cargo's "Compiling" line: it is kept.
    #[test]
    fn an_error_right_after_a_status_line_is_kept() {
        let stderr = "   Compiling pipes v0.1.0 (/tmp/s)\nerror: couldn't read `a.rs`\n --> src/lib.rs:1:1\n\n\
                      error: couldn't read `b.rs`\n --> src/lib.rs:2:1\n\n\
                      error: could not compile `pipes` (lib) due to 2 previous errors\n";
        let e = compiler_errors(stderr);
        assert_eq!(e.matches("couldn't read").count(), 2, "{e}");
        assert!(
            !e.contains("Compiling") && !e.contains("could not compile"),
            "{e}"
        );
    }

    #[test]
    fn errors_are_kept_and_warnings_dropped() {
        let stderr = "warning: unused variable: `x`\n --> src/lib.rs:1:5\n\n\
                      error[E0308]: mismatched types\n --> src/run.rs:3:9\n  |\n3 |     1u8\n\n\
                      error: could not compile `pipes` (lib) due to 1 previous error\n";
        let e = compiler_errors(stderr);
        assert!(e.starts_with("error[E0308]: mismatched types"), "{e}");
        assert!(
            !e.contains("unused variable") && !e.contains("could not compile"),
            "{e}"
        );
    }

    #[test]
    fn artifacts_of_the_package_are_found() {
        let lines = r#"{"reason":"compiler-artifact","package_id":"path+file:///tmp/x#pipes@0.1.0","target":{"kind":["bin"],"name":"pipeline"},"profile":{"test":false},"executable":"/t/debug/pipeline"}
{"reason":"compiler-artifact","package_id":"path+file:///tmp/x#pipes@0.1.0","target":{"kind":["test"],"name":"stages"},"profile":{"test":true},"executable":"/t/debug/deps/stages-1"}
{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#libc@0.2.1","target":{"kind":["lib"],"name":"libc"},"profile":{"test":false},"executable":null}"#;
        let a = parse_artifacts(lines, "pipes");
        assert_eq!(a.bins["pipeline"], PathBuf::from("/t/debug/pipeline"));
        assert_eq!(a.tests["stages"], PathBuf::from("/t/debug/deps/stages-1"));
    }
}
