//! `cargo xtask handout`: each lab as a standalone crate a student builds on its own.
//!
//! The archive holds the manifest with versions resolved, a lock file pruned to the lab's
//! own dependencies, the README, the skeleton and the visible tests; never `hidden/`,
//! `lab.toml`, a solution or a mutant. Entries are sorted and their metadata fixed, so two
//! builds are byte-identical.
//!
//! Half of the file is its tests: each unpacks a handout and uses it as a student would.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use grader::labfile::{Lab, Tree};

/// Entry timestamps in the archive (2026-01-01T00:00:00Z): fixed, so builds are identical.
const MTIME: u64 = 1_767_225_600;

/// Arguments of `cargo xtask handout`.
#[derive(clap::Args)]
pub struct Handout {
    /// Labs to package (default: all).
    slugs: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "dist/handouts")]
    out: PathBuf,
}

impl Handout {
    pub fn run(self) -> Result<()> {
        let tree = Tree::locate(Some(&crate::root()))?;
        let slugs = if self.slugs.is_empty() {
            tree.slugs()?
        } else {
            self.slugs
        };
        let out = if self.out.is_absolute() {
            self.out
        } else {
            tree.root.join(self.out)
        };
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        for slug in slugs {
            let lab = tree.lab(&slug)?;
            let bytes = archive(&tree, &lab)?;
            let path = out.join(format!("{slug}.tar.gz"));
            std::fs::write(&path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("{} ({} bytes)", path.display(), bytes.len());
        }
        Ok(())
    }
}

/// Where a handout carries the course's grader (see [`cargo_config`]).
pub const GRADE_DIR: &str = ".grade";

/// The handout's `.cargo/config.toml`: `cargo grade` runs the grader the handout carries in
/// [`GRADE_DIR`] on the student's `src/`, grading the items graded before submission, as the
/// student, building into `.grade/target` (or `$CARGO_TARGET_DIR`).
fn cargo_config(slug: &str) -> String {
    format!(
        "# `cargo grade`: the course's grader on your machine, on the items it grades before you\n\
         # submit (add --only ITEM, --seed N, --watch).\n\
         [alias]\n\
         grade = \"run --manifest-path {GRADE_DIR}/Cargo.toml --package grade -- --root \
         {GRADE_DIR} grade {slug} src --local\"\n"
    )
}

/// `.devcontainer/devcontainer.json`: the image of [`dockerfile`], then the lab's peers
/// installed by the script the grader's machines use.
fn devcontainer_json(lab: &Lab) -> String {
    let peers = if lab.file.peers.is_empty() {
        String::new()
    } else {
        format!(
            "  \"postCreateCommand\": \"bash .grade/grader/peers.sh {}\",\n",
            lab.file.peers.join(" ")
        )
    };
    format!(
        "{{\n  \"name\": \"{} ({})\",\n  \"build\": {{ \"dockerfile\": \"Dockerfile\" }},\n\
         {peers}  \"customizations\": {{ \"vscode\": {{ \"extensions\": \
         [\"rust-lang.rust-analyzer\"] }} }}\n}}\n",
        lab.file.title, lab.file.slug,
    )
}

/// `.devcontainer/Dockerfile`: Debian 12 with the toolchain the course grades with.
fn dockerfile(channel: &str) -> String {
    format!(
        "# A Linux with the Rust toolchain the course grades with; the lab's peer programs are\n\
         # installed when the container is created (devcontainer.json's postCreateCommand).\n\
         FROM debian:12\n\
         ENV DEBIAN_FRONTEND=noninteractive\n\
         RUN apt-get update && apt-get install -y --no-install-recommends \\\n    \
         build-essential ca-certificates curl git procps util-linux \\\n    \
         && rm -rf /var/lib/apt/lists/*\n\
         ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
         PATH=/usr/local/cargo/bin:$PATH\n\
         RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \\\n    \
         --default-toolchain {channel} --component clippy --component rustfmt\n"
    )
}

/// `.github/workflows/classroom.yml`: GitHub Classroom's autograding, one step per item
/// graded before submission, each `cargo grade --only ITEM --exit-code` with the item's
/// points, and the reporter that sends them to Classroom.
fn classroom_yml(lab: &Lab) -> String {
    let items: Vec<&grader::labfile::Item> = lab
        .file
        .items
        .iter()
        .filter(|i| i.graded_locally())
        .collect();
    let mut o = String::from(
        "# GitHub Classroom: the items `cargo grade` grades before submission, one step each,\n\
         # reported to Classroom with their points. Written by `cargo xtask handout`.\n\
         name: Autograding Tests\n\
         on: [push, repository_dispatch, workflow_dispatch]\n\
         permissions:\n  checks: write\n  actions: read\n  contents: read\n\
         jobs:\n  run-autograding-tests:\n    runs-on: ubuntu-latest\n\
         \x20   if: github.actor != 'github-classroom[bot]'\n    steps:\n\
         \x20     - name: Checkout code\n        uses: actions/checkout@v4\n",
    );
    if !lab.file.peers.is_empty() {
        o.push_str(&format!(
            "      - name: Install the lab's peer programs\n        run: sudo bash \
             .grade/grader/peers.sh {}\n",
            lab.file.peers.join(" ")
        ));
    }
    for (k, item) in items.iter().enumerate() {
        o.push_str(&format!(
            "      - name: {id}\n        id: {id}\n        uses: \
             classroom-resources/autograding-command-grader@v1\n        with:\n          \
             test-name: {id}\n          command: cargo grade --only {id} --exit-code\n          \
             timeout: {timeout}\n          max-score: {points}\n",
            id = item.id,
            timeout = if k == 0 { 15 } else { 5 },
            points = grader::report::fmt_points(item.points),
        ));
    }
    o.push_str("      - name: Autograding Reporter\n        uses: classroom-resources/autograding-grading-reporter@v1\n        env:\n");
    for item in &items {
        o.push_str(&format!(
            "          {}_RESULTS: \"${{{{steps.{}.outputs.result}}}}\"\n",
            item.id.to_uppercase(),
            item.id
        ));
    }
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    o.push_str(&format!(
        "        with:\n          runners: {}\n",
        ids.join(",")
    ));
    o
}

/// The handout of `lab` as .tar.gz bytes.
pub fn archive(tree: &Tree, lab: &Lab) -> Result<Vec<u8>> {
    let tmp = tempfile::tempdir()?;
    let slug = &lab.file.slug;
    let dir = tmp.path().join(slug);
    std::fs::create_dir_all(&dir)?;
    grader::stage::stage(tree, lab, &Default::default(), &dir, false)?;
    std::fs::write(dir.join(".gitignore"), "/target\n/.grade/target\n")?;
    std::fs::write(
        dir.join("rust-toolchain.toml"),
        crate::toolchain_file(tree, true)?,
    )?;
    prune_lockfile(&dir)?;
    // `cargo grade`: the course's grader, this lab's part of it, on the student's machine.
    for (rel, data, _) in crate::bundle::grader_tree(tree, lab, crate::bundle::For::Handout)? {
        let path = dir.join(GRADE_DIR).join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
        std::fs::write(path, data)?;
    }
    std::fs::create_dir_all(dir.join(".cargo"))?;
    std::fs::write(dir.join(".cargo/config.toml"), cargo_config(slug))?;
    // A Linux for students on macOS and Windows (VS Code Dev Containers, Codespaces).
    std::fs::create_dir_all(dir.join(".devcontainer"))?;
    std::fs::write(
        dir.join(".devcontainer/devcontainer.json"),
        devcontainer_json(lab),
    )?;
    std::fs::write(
        dir.join(".devcontainer/Dockerfile"),
        dockerfile(&crate::toolchain_channel(tree)?),
    )?;
    // GitHub Classroom: the items graded before submission, one step each.
    std::fs::create_dir_all(dir.join(".github/workflows"))?;
    std::fs::write(
        dir.join(".github/workflows/classroom.yml"),
        classroom_yml(lab),
    )?;

    let mut files = Vec::new();
    collect(&dir, &dir, &mut files)?;
    files.sort();
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut dirs_done = std::collections::BTreeSet::new();
    for rel in &files {
        // Parent folders first, each once.
        let mut parents: Vec<&Path> = rel
            .ancestors()
            .skip(1)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        parents.reverse();
        for p in std::iter::once(Path::new("")).chain(parents) {
            if dirs_done.insert(p.to_owned()) {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, Path::new(slug).join(p), std::io::empty())?;
            }
        }
        let data = std::fs::read(dir.join(rel))?;
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        tar.append_data(&mut h, Path::new(slug).join(rel), data.as_slice())?;
    }
    Ok(tar.into_inner()?.finish()?)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root)?.to_owned());
        }
    }
    Ok(())
}

/// Rewrites the workspace's lock file to the lab's own dependencies, keeping every version.
fn prune_lockfile(dir: &Path) -> Result<()> {
    let cargo = grader::build::cargo();
    let manifest = dir.join("Cargo.toml");
    for offline in [false, true] {
        let mut cmd = std::process::Command::new(&cargo);
        cmd.args([
            "metadata",
            "--format-version",
            "1",
            "--quiet",
            "--manifest-path",
        ])
        .arg(&manifest);
        if offline {
            cmd.arg("--offline");
        }
        let out = cmd.stdout(std::process::Stdio::null()).output()?;
        if out.status.success() {
            return Ok(());
        }
        if offline {
            bail!(
                "cargo metadata failed for {}:\n{}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo grade` in an unpacked handout, as a student runs it: the reference scores every
    /// point graded before submission, and a mutant fails as the course's grader says.
    #[test]
    fn cargo_grade_in_a_handout_grades_as_the_course_does() {
        let tree = Tree::locate(Some(&crate::root())).unwrap();
        let lab = tree.lab("pipes").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        tar::Archive::new(flate2::read::GzDecoder::new(
            archive(&tree, &lab).unwrap().as_slice(),
        ))
        .unpack(tmp.path())
        .unwrap();
        let handout = tmp.path().join("pipes");
        let mutants = tempfile::tempdir().unwrap();
        let (m, mutant) = grader::verify::materialise_mutants(&lab, mutants.path())
            .unwrap()
            .into_iter()
            .find(|(m, _)| m.name == "parent-keeps-write-end")
            .expect("the pipes mutant parent-keeps-write-end");
        let exe = crate::verify::build_grader(&tree).unwrap();
        for (what, src) in [
            ("solution", lab.solution.join("src")),
            ("mutant", mutant.join("src")),
        ] {
            let _ = std::fs::remove_dir_all(handout.join("src"));
            crate::bundle::copy_dir(&src, &handout.join("src")).unwrap();
            let json = tmp.path().join(format!("{what}.json"));
            // The alias as written, with the workspace's target folder: what both compile (the
            // grader's dependencies, the lab's) is compiled once.
            let out = std::process::Command::new(grader::build::cargo())
                .args(["grade", "--quiet", "--json"])
                .arg(&json)
                .current_dir(&handout)
                .env("CARGO_TARGET_DIR", tree.root.join("target"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{what}: cargo grade failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let local: grader::report::Report =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            let course = grader::verify::grade_with(&exe, &tree.root, "pipes", &src).unwrap();
            grader::verify::same_local_verdicts(&course, &local).unwrap();
            let later: f64 = lab
                .file
                .items
                .iter()
                .filter(|i| !i.graded_locally())
                .map(|i| i.points)
                .sum();
            assert_eq!(local.max_score, lab.file.max_score() - later, "{what}");
            match what {
                "solution" => assert_eq!(local.score, local.max_score),
                _ => grader::verify::expect_caught(&local, &m).unwrap(),
            }
        }
    }

    /// A handout holds nothing secret, is byte-identical when built twice, and builds, with
    /// its visible tests, on its own outside the workspace.
    #[test]
    fn handouts_are_clean_reproducible_and_standalone() {
        let tree = Tree::locate(Some(&crate::root())).unwrap();
        for slug in tree.slugs().unwrap() {
            let lab = tree.lab(&slug).unwrap();
            let a = archive(&tree, &lab).unwrap();
            let b = archive(&tree, &lab).unwrap();
            assert!(a == b, "{slug}: two builds of the handout differ");

            let tmp = tempfile::tempdir().unwrap();
            tar::Archive::new(flate2::read::GzDecoder::new(a.as_slice()))
                .unpack(tmp.path())
                .unwrap();
            let crate_dir = tmp.path().join(&slug);
            let mut names = Vec::new();
            collect(&crate_dir, &crate_dir, &mut names).unwrap();
            let names: Vec<String> = names.iter().map(|p| p.display().to_string()).collect();
            for name in &names {
                assert!(
                    !name.starts_with("hidden")
                        && !name.contains("hidden_")
                        && name != "lab.toml"
                        // The grader's source names mutants (how it reads them); no
                        // mutant itself, a patch in a `mutants` folder, is handed out.
                        && !name.contains("mutants/")
                        && !name.ends_with(".patch"),
                    "{slug}: the handout contains {name}"
                );
            }
            for needed in [
                "Cargo.toml",
                "Cargo.lock",
                "README.md",
                "src/lib.rs",
                "rust-toolchain.toml",
            ] {
                assert!(
                    names.iter().any(|n| n == needed),
                    "{slug}: no {needed} in {names:?}"
                );
            }
            // `cargo grade`, its grader holding this lab only; a Linux for other systems;
            // GitHub Classroom's steps, one per item graded before submission.
            let read = |rel: &str| std::fs::read_to_string(crate_dir.join(rel)).unwrap();
            assert!(
                read(".cargo/config.toml").contains(&format!("grade {slug} src --local")),
                "{slug}"
            );
            for name in &names {
                assert!(
                    !name.starts_with(".grade/grader/src/labs/")
                        || name.contains(&format!("/{}", slug.replace('-', "_"))),
                    "{slug}: another lab's checks in the handout: {name}"
                );
            }
            let dev: serde_json::Value =
                serde_json::from_str(&read(".devcontainer/devcontainer.json")).unwrap();
            if !lab.file.peers.is_empty() {
                assert_eq!(
                    dev["postCreateCommand"].as_str(),
                    Some(
                        format!("bash .grade/grader/peers.sh {}", lab.file.peers.join(" "))
                            .as_str()
                    )
                );
            }
            let channel = crate::toolchain_channel(&tree).unwrap();
            assert!(
                read(".devcontainer/Dockerfile")
                    .contains(&format!("--default-toolchain {channel}"))
            );
            let workflow = read(".github/workflows/classroom.yml");
            let mut runners = Vec::new();
            for item in &lab.file.items {
                let step = format!("command: cargo grade --only {} --exit-code", item.id);
                assert_eq!(
                    workflow.contains(&step),
                    item.graded_locally(),
                    "{slug}: {step}"
                );
                if item.graded_locally() {
                    runners.push(item.id.as_str());
                    assert!(
                        workflow.contains(&format!("test-name: {}\n", item.id)),
                        "{slug}: {}",
                        item.id
                    );
                    let after = &workflow[workflow.find(&step).unwrap()..];
                    let score = after
                        .lines()
                        .find_map(|l| l.trim().strip_prefix("max-score: "));
                    assert_eq!(
                        score,
                        Some(grader::report::fmt_points(item.points).as_str()),
                        "{slug}: {}",
                        item.id
                    );
                }
            }
            assert!(
                workflow.contains(&format!("runners: {}\n", runners.join(","))),
                "{slug}: the reporter must list every step"
            );
            // The compiler the autograder grades with, which rustup installs on first use.
            assert_eq!(
                std::fs::read_to_string(crate_dir.join("rust-toolchain.toml")).unwrap(),
                crate::toolchain_file(&tree, true).unwrap(),
                "{slug}"
            );
            let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
            assert!(!manifest.contains("workspace = true"), "{slug}: {manifest}");

            // Offline, in a folder outside the workspace: everything it needs is pinned.
            let target = tree.root.join("target").join("handout-check");
            let out = std::process::Command::new(grader::build::cargo())
                .args(["build", "--offline", "--locked", "--tests", "--quiet"])
                .current_dir(&crate_dir)
                .env("CARGO_TARGET_DIR", &target)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{slug}: the handout does not build:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
