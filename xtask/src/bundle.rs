//! The grader's own tree, trimmed to one lab, as the autograder zip and the handout's
//! `.grade/` carry it: the workspace manifest listing only what is carried, the lock file,
//! the grader's sources, the test support, and the lab.

use std::path::Path;

use anyhow::Result;
use grader::labfile::{Lab, Tree};

/// Files as (path relative to the tree, bytes, Unix mode).
pub type Files = Vec<(String, Vec<u8>, u32)>;

/// What the tree carries of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum For {
    /// The course's autograder: the lab with its hidden tests, the reference solution.
    Autograder,
    /// A student's handout: the lab without hidden tests, and of the grader's checks only
    /// this lab's.
    Handout,
}

/// The grader's tree for `lab`.
pub fn grader_tree(tree: &Tree, lab: &Lab, what: For) -> Result<Files> {
    let slug = &lab.file.slug;
    let module = slug.replace('-', "_");
    let mut files = Files::new();
    // The workspace trimmed to this lab: its manifest lists only what the tree carries.
    let manifest = std::fs::read_to_string(tree.manifest())?
        .replace(
            r#"members = ["labs/*", "grader", "xtask", "testkit"]"#,
            &format!(r#"members = ["labs/{slug}", "grader", "testkit"]"#),
        )
        .replace(
            r#"default-members = ["grader", "xtask"]"#,
            r#"default-members = ["grader"]"#,
        );
    files.push(("Cargo.toml".into(), manifest.into_bytes(), 0o644));
    files.push(("Cargo.lock".into(), std::fs::read(tree.lockfile())?, 0o644));
    for part in [
        "grader/src",
        "grader/Cargo.toml",
        "grader/peers.sh",
        "grader/fixtures",
        "testkit/src",
        "testkit/Cargo.toml",
    ] {
        add(&tree.root, &tree.root.join(part), &mut files)?;
    }
    add(&tree.root, &lab.dir, &mut files)?;
    match what {
        For::Autograder => add(&tree.root, &lab.solution.join("src"), &mut files)?,
        For::Handout => {
            let hidden = format!("labs/{slug}/hidden/");
            let ours = [
                format!("grader/src/labs/{module}.rs"),
                format!("grader/src/labs/{module}/"),
            ];
            files.retain(|(path, _, _)| {
                let other_lab = path.starts_with("grader/src/labs/")
                    && !ours
                        .iter()
                        .any(|o| path == o || path.starts_with(o.as_str()));
                !path.starts_with(&hidden) && !other_lab
            });
            for (path, data, _) in &mut files {
                if path == "grader/src/labs.rs" {
                    *data =
                        registry_of_one(&String::from_utf8_lossy(data), slug, &module).into_bytes();
                }
                if path == "grader/Cargo.toml" {
                    *data = as_grade_package(&String::from_utf8_lossy(data)).into_bytes();
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The grader's manifest as the handout's package `grade`: its library still `grader`, its
/// program `grade`, so that nothing of it takes the name of the course's grader where both
/// are compiled into one target folder.
fn as_grade_package(manifest: &str) -> String {
    manifest
        .replacen("name = \"grader\"", "name = \"grade\"", 1)
        .replacen(
            "\n[dependencies]",
            "\n[lib]\nname = \"grader\"\npath = \"src/lib.rs\"\n\n[[bin]]\nname = \"grade\"\n\
             path = \"src/main.rs\"\n\n[dependencies]",
            1,
        )
}

/// The registry `grader/src/labs.rs` with only the lab `slug` (module `module`) in it.
fn registry_of_one(text: &str, slug: &str, module: &str) -> String {
    text.lines()
        .filter(|line| {
            let t = line.trim();
            let other_mod = t
                .strip_prefix("pub mod ")
                .and_then(|m| m.strip_suffix(';'))
                .is_some_and(|m| m != module);
            let other_entry = t.starts_with("(\"") && !t.starts_with(&format!("(\"{slug}\","));
            !other_mod && !other_entry
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Copies the folder `from` to `to`, files and folders (for tests).
#[cfg(test)]
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Adds `path` (a file, or a folder's files) under `root` to `files`.
pub fn add(root: &Path, path: &Path, files: &mut Files) -> Result<()> {
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.file_name()
                .is_some_and(|n| n == "target" || n == "node_modules")
            {
                continue;
            }
            add(root, &p, files)?;
        }
    } else {
        let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
        let mode = if rel.ends_with(".sh") { 0o755 } else { 0o644 };
        files.push((rel, std::fs::read(path)?, mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handout's grader knows its own lab only: no other lab's checks, no hidden test.
    #[test]
    fn a_handouts_grader_holds_one_lab() {
        let tree = Tree::locate(Some(&crate::root())).unwrap();
        let lab = tree.lab("rpc").unwrap();
        let files = grader_tree(&tree, &lab, For::Handout).unwrap();
        let paths: Vec<&str> = files.iter().map(|(p, _, _)| p.as_str()).collect();
        assert!(paths.contains(&"grader/src/labs/rpc.rs"));
        assert!(paths.contains(&"grader/src/labs/rpc/jayson.js"));
        assert!(paths.contains(&"labs/rpc/lab.toml"));
        for p in &paths {
            assert!(!p.starts_with("labs/rpc/hidden"), "{p}");
            assert!(!p.starts_with("solutions"), "{p}");
            assert!(
                !p.starts_with("grader/src/labs/") || p.contains("/rpc"),
                "another lab's checks: {p}"
            );
        }
        let registry = &files
            .iter()
            .find(|(p, _, _)| p == "grader/src/labs.rs")
            .unwrap()
            .1;
        let registry = String::from_utf8_lossy(registry);
        assert!(registry.contains("pub mod rpc;") && registry.contains("(\"rpc\", rpc::CHECKS)"));
        assert!(!registry.contains("pub mod pipes;") && !registry.contains("pipes::CHECKS"));
    }
}
