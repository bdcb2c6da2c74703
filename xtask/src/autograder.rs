//! `cargo xtask autograder SLUG`: a Gradescope autograder zip.
//!
//! Gradescope unpacks the zip into `/autograder/source`, runs `setup.sh` once when the image
//! is built, then `run_autograder` per submission, which must leave
//! `/autograder/results/results.json`. The zip carries the grader's sources and the one lab
//! (template, hidden tests, solution for the warm-up build); setup.sh installs Rust, builds
//! the grader and grades the reference solution once so that the lab's dependencies are
//! compiled into the image. `AUTOGRADER_ROOT` (default `/autograder`) moves the whole tree,
//! so tests run it locally; `GRADER_BIN` points at a grader binary already built.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use grader::labfile::Tree;

/// Arguments of `cargo xtask autograder`.
#[derive(clap::Args)]
pub struct Autograder {
    /// The lab to package.
    slug: String,
    /// Output folder.
    #[arg(long, default_value = "dist/autograder")]
    out: PathBuf,
}

impl Autograder {
    pub fn run(self) -> Result<()> {
        let tree = Tree::locate(Some(&crate::root()))?;
        let out = if self.out.is_absolute() {
            self.out
        } else {
            tree.root.join(self.out)
        };
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let bytes = bundle(&tree, &self.slug)?;
        let path = out.join(format!("{}.zip", self.slug));
        std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{} ({} bytes)", path.display(), bytes.len());
        Ok(())
    }
}

const SETUP: &str = r#"#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
SOURCE="$PWD"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq build-essential curl ca-certificates bash coreutils util-linux procps
# The toolchain rust-toolchain.toml pins, the one the handouts name too.
TOOLCHAIN="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain "$TOOLCHAIN"
fi
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
# The peer programs this lab's checks run (lab.toml's `peers`), services left stopped.
bash grader/peers.sh @PEERS@
cargo build --release -p grader
# Grade the reference solution once: downloads and compiles the lab's dependencies into the
# image, and proves the bundle works before any student submits. Every path absolute.
"${CARGO_TARGET_DIR:-$SOURCE/target}/release/grader" --root "$SOURCE" \
  grade @SLUG@ "$SOURCE/solutions/@SLUG@" --quiet --json "$SOURCE/warmup.json"
"#;

const RUN: &str = r#"#!/usr/bin/env bash
# Gradescope runs this for each submission; it must write results/results.json.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
RESULTS="$ROOT/results"
mkdir -p "$RESULTS"
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
GRADER="${GRADER_BIN:-${CARGO_TARGET_DIR:-$SOURCE/target}/release/grader}"
"$GRADER" --root "$SOURCE" grade @SLUG@ "$ROOT/submission" \
  --gradescope "$RESULTS/results.json" --json "$RESULTS/report.json" --quiet
status=$?
if [ ! -s "$RESULTS/results.json" ]; then
  # The grader could not even write its results: say so rather than score 0 silently.
  printf '{"score": 0, "output": "NOT GRADABLE: the grader failed (exit %s). This is not your fault: tell your course staff.", "tests": []}\n' "$status" > "$RESULTS/results.json"
fi
exit 0
"#;

/// The autograder zip of lab `slug`, as bytes.
pub fn bundle(tree: &Tree, slug: &str) -> Result<Vec<u8>> {
    let lab = tree.lab(slug)?;
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    files.push((
        "setup.sh".into(),
        SETUP
            .replace("@SLUG@", slug)
            .replace("@PEERS@", &lab.file.peers.join(" "))
            .into_bytes(),
        0o755,
    ));
    files.push((
        "run_autograder".into(),
        RUN.replace("@SLUG@", slug).into_bytes(),
        0o755,
    ));
    files.push((
        "rust-toolchain.toml".into(),
        crate::toolchain_file(tree, false)?.into_bytes(),
        0o644,
    ));
    files.extend(crate::bundle::grader_tree(
        tree,
        &lab,
        crate::bundle::For::Autograder,
    )?);
    files.sort();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, mode) in files {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode);
        zip.start_file(name, opts)?;
        zip.write_all(&data)?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The zip as Gradescope uses it: unpacked, its `setup.sh` run as written (as root, so
    /// with the jail; the toolchain install is skipped because cargo exists), which builds the
    /// grader and grades the reference; then `run_autograder` as written grades a submission
    /// into results.json with Gradescope's documented fields. Paths are those the scripts
    /// choose; only `AUTOGRADER_ROOT` moves the tree, and `CARGO_TARGET_DIR` (cargo's own)
    /// shares the workspace's compiled dependencies.
    #[test]
    fn setup_and_run_autograder_as_written() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("not root: setup.sh installs packages and grades in jails, as root");
            return;
        }
        let tree = Tree::locate(Some(&crate::root())).unwrap();
        let zip_bytes = bundle(&tree, "pipes").unwrap();
        let root = tempfile::tempdir().unwrap();
        let source = root.path().join("source");
        zip::ZipArchive::new(std::io::Cursor::new(zip_bytes))
            .unwrap()
            .extract(&source)
            .unwrap();
        for needed in [
            "setup.sh",
            "run_autograder",
            "rust-toolchain.toml",
            "grader/src/main.rs",
            "grader/peers.sh",
            "labs/pipes/hidden",
            "labs/pipes/lab.toml",
        ] {
            assert!(source.join(needed).exists(), "the bundle lacks {needed}");
        }
        let pinned = std::fs::read_to_string(source.join("rust-toolchain.toml")).unwrap();
        assert_eq!(pinned, crate::toolchain_file(&tree, false).unwrap());
        let target = tree.root.join("target");
        let script = |name: &str| {
            let out = std::process::Command::new(source.join(name))
                .env("AUTOGRADER_ROOT", root.path())
                .env("CARGO_TARGET_DIR", &target)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        script("setup.sh");
        let max = tree.lab("pipes").unwrap().file.max_score();
        let warmup: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(source.join("warmup.json")).unwrap())
                .unwrap();
        assert_eq!(warmup["score"].as_f64(), Some(max), "{warmup}");

        let submission = root.path().join("submission");
        std::fs::create_dir_all(&submission).unwrap();
        let copy = std::process::Command::new("cp")
            .arg("-r")
            .arg(tree.root.join("solutions/pipes/src"))
            .arg(&submission)
            .status()
            .unwrap();
        assert!(copy.success());
        script("run_autograder");
        let text = std::fs::read_to_string(root.path().join("results/results.json")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["score"].as_f64(), Some(max), "{text}");
        let tests = doc["tests"].as_array().unwrap();
        assert_eq!(tests.len(), tree.lab("pipes").unwrap().file.items.len());
        for t in tests {
            for field in [
                "name",
                "score",
                "max_score",
                "status",
                "output",
                "visibility",
            ] {
                assert!(!t[field].is_null(), "a test lacks `{field}`: {t}");
            }
            assert!(
                ["visible", "hidden", "after_due_date", "after_published"]
                    .contains(&t["visibility"].as_str().unwrap())
            );
            assert!(["passed", "failed"].contains(&t["status"].as_str().unwrap()));
        }
        assert!(
            doc["execution_time"].is_u64()
                && doc["visibility"].is_string()
                && doc["stdout_visibility"].is_string()
        );
    }
}
