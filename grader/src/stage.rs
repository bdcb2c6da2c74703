//! Step 1, stage: the lab's template, the submission's editable files laid over it, and a
//! standalone manifest and lock file; the hidden tests are added between the two halves of
//! the build ([`add_hidden`]).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::labfile::{Lab, Tree};
use crate::submission::{Skipped, Submission};

/// What staging did with a submission.
#[derive(Debug, Default, serde::Serialize)]
pub struct Staged {
    /// Files taken from the submission (relative paths).
    pub taken: Vec<PathBuf>,
    /// Files of the submission that were not used, with the reason.
    pub ignored: Vec<Skipped>,
    /// Remarks for the report (e.g. files moved under `src/`).
    pub notes: Vec<String>,
}

/// Stages `sub` for `lab` into the empty folder `dir`: the crate a student has, with the
/// submission's files. With `grading`, every test file gets the grader's canary. The hidden
/// tests come later ([`add_hidden`]), once the submission's own code has compiled without
/// them.
pub fn stage(
    tree: &Tree,
    lab: &Lab,
    sub: &Submission,
    dir: &Path,
    grading: bool,
) -> Result<Staged> {
    copy_template(&lab.dir, dir)?;
    let editable = lab.file.editable_set()?;
    let mut staged = Staged {
        ignored: sub.skipped.clone(),
        ..Staged::default()
    };

    // A student who zipped the *contents* of src/ gets them put back where they belong.
    let none_match = !sub.files.iter().any(|f| editable.is_match(&f.path));
    let under_src = sub
        .files
        .iter()
        .any(|f| editable.is_match(Path::new("src").join(&f.path)));
    let prefix = if none_match && under_src {
        staged
            .notes
            .push("no file sat under src/; the submission's files were taken as src/".into());
        Some(PathBuf::from("src"))
    } else {
        None
    };

    for f in &sub.files {
        let rel = match &prefix {
            Some(p) => p.join(&f.path),
            None => f.path.clone(),
        };
        if !editable.is_match(&rel) {
            staged.ignored.push(Skipped {
                entry: f.path.display().to_string(),
                reason: format!(
                    "not an editable file (graded: {})",
                    lab.file.editable.join(", ")
                ),
            });
            continue;
        }
        let dest = dir.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&dest, &f.data).map_err(|e| Error::io(&dest, e))?;
        staged.taken.push(rel);
    }

    if grading {
        let tests = dir.join("tests");
        for entry in std::fs::read_dir(&tests).into_iter().flatten() {
            let path = entry.map_err(|e| Error::io(&tests, e))?.path();
            if path.extension().is_some_and(|e| e == "rs") {
                add_canary(&path)?;
            }
        }
    }

    let mut manifest = crate::manifest::standalone(&lab.dir.join("Cargo.toml"), &tree.manifest())?;
    if grading {
        manifest = without_debug_info(&manifest);
    }
    let dest = dir.join("Cargo.toml");
    std::fs::write(&dest, manifest).map_err(|e| Error::io(&dest, e))?;
    let lock = dir.join("Cargo.lock");
    std::fs::copy(tree.lockfile(), &lock).map_err(|e| Error::io(&lock, e))?;
    vendor_testkit(tree, dir)?;
    Ok(staged)
}

/// The folder, beside `src/`, where a staged crate or a handout carries the test-support
/// crate; the lab's `testkit.workspace = true` resolves to `path = "testkit"`, this folder.
pub const TESTKIT: &str = "testkit";

/// Copies the workspace's `testkit/` (its manifest made standalone, its `src/`) into the
/// staged crate, so that the crate builds offline on its own. It is copied after the
/// submission's files and outside the editable globs, so a submission cannot replace it.
fn vendor_testkit(tree: &Tree, dir: &Path) -> Result<()> {
    let from = tree.root.join(TESTKIT);
    if !from.join("Cargo.toml").is_file() {
        return Ok(());
    }
    let to = dir.join(TESTKIT);
    if to.exists() {
        std::fs::remove_dir_all(&to).map_err(|e| Error::io(&to, e))?;
    }
    std::fs::create_dir_all(to.join("src")).map_err(|e| Error::io(&to, e))?;
    copy_template(&from.join("src"), &to.join("src"))?;
    let manifest = crate::manifest::vendored(&from.join("Cargo.toml"), &tree.manifest())?;
    let dest = to.join("Cargo.toml");
    std::fs::write(&dest, manifest).map_err(|e| Error::io(&dest, e))
}

/// The manifest with `[profile.dev] debug = 0`, the rest of any profile the lab sets kept:
/// a graded build is run, never debugged, and linking debug information is a fifth of its
/// time. Panic messages keep their file and line (they come from `#[track_caller]`, not
/// from debug information).
fn without_debug_info(manifest: &str) -> String {
    let Ok(mut doc) = manifest.parse::<toml_edit::DocumentMut>() else {
        return manifest.to_owned();
    };
    let profile = doc
        .entry("profile")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    if let Some(profile) = profile.as_table_mut() {
        profile.set_implicit(true);
        let dev = profile
            .entry("dev")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        if let Some(dev) = dev.as_table_mut() {
            dev.insert("debug", toml_edit::value(0));
        }
    }
    doc.to_string()
}

/// Copies the lab's crate, leaving out what a student never receives.
fn copy_template(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let name = entry.file_name();
        if name == "hidden" || name == "target" || name == "lab.toml" || name == "Cargo.lock" {
            continue;
        }
        let src = entry.path();
        let dest = to.join(&name);
        let ft = entry.file_type().map_err(|e| Error::io(&src, e))?;
        if ft.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
            copy_template(&src, &dest)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dest).map_err(|e| Error::io(&dest, e))?;
        }
    }
    Ok(())
}

/// The name of the test the grader adds to every test file.
pub const CANARY: &str = "zzzz_grader_canary";

/// Copies the lab's hidden tests into the staged crate's `tests/`, each with the canary;
/// their test target names (file stems).
pub fn add_hidden(lab: &Lab, dir: &Path) -> Result<Vec<String>> {
    let hidden = lab.dir.join("hidden");
    let mut stems = Vec::new();
    if !hidden.is_dir() {
        return Ok(stems);
    }
    let tests = dir.join("tests");
    std::fs::create_dir_all(&tests).map_err(|e| Error::io(&tests, e))?;
    for entry in std::fs::read_dir(&hidden).map_err(|e| Error::io(&hidden, e))? {
        let src = entry.map_err(|e| Error::io(&hidden, e))?.path();
        if src.extension().is_some_and(|e| e == "rs") {
            // The build sweeps compiled tests by this prefix from the shared target folder
            // (`build::Forget`) when a grader was stopped mid-build, where a later
            // submission's build could read them.
            let name = src.file_name().unwrap_or_default();
            if !name.to_string_lossy().starts_with("hidden") {
                return Err(Error::LabFile {
                    path: src.clone(),
                    message: "a hidden test's file name must start with `hidden`".into(),
                });
            }
            let dest = tests.join(name);
            std::fs::copy(&src, &dest).map_err(|e| Error::io(&dest, e))?;
            add_canary(&dest)?;
            // The hidden test keeps its source's mtime: unchanged, it is not recompiled
            // unless the submission's library changed.
            let mtime = std::fs::metadata(&src)
                .and_then(|m| m.modified())
                .map_err(|e| Error::io(&src, e))?;
            std::fs::File::options()
                .write(true)
                .open(&dest)
                .and_then(|f| f.set_modified(mtime))
                .map_err(|e| Error::io(&dest, e))?;
            if let Some(stem) = src.file_stem() {
                stems.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    stems.sort();
    Ok(stems)
}

/// Appends the grader's canary test to a test file. The grader runs it after the graded
/// test in the same process; it prints a secret the grader passes at run time. A process that
/// prints a fake `ok` line and exits never gets to it, so its fake success is refused.
fn add_canary(path: &Path) -> Result<()> {
    let mut text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.push_str(&format!(
        "\n#[test]\n#[doc(hidden)]\nfn {CANARY}() {{\n    use std::io::Write as _;\n    \
             if let Ok(secret) = std::env::var(\"GRADER_CANARY\") {{\n        \
             let _ = writeln!(std::io::stdout(), \"grader-canary:{{secret}}\");\n    }}\n}}\n"
    ));
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}
