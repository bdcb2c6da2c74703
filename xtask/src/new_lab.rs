//! `cargo xtask new-lab SLUG`: every surface of a new lab, wired in, in one go.
//!
//! Writes `labs/SLUG/` (manifest, lab.toml with one visible test item and one check item, a
//! handout README with the contract and rubric sections, a skeleton whose one function is a
//! `todo!`, a visible test, a hidden test), `solutions/SLUG/` (the solved function, a mutant
//! and the contract table), and `grader/src/labs/MOD.rs` (one check), and registers the
//! check module in `grader/src/labs.rs`. The result passes `cargo xtask verify SLUG` as it
//! is: the solution scores the maximum, the skeleton 0, the mutant is caught, the contract
//! table is complete. Then replace the example with the lab.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Arguments of `cargo xtask new-lab`.
#[derive(clap::Args)]
pub struct NewLab {
    /// The new lab's slug: lowercase words joined by `-` (`shm-queue`).
    slug: String,
}

impl NewLab {
    pub fn run(self) -> Result<()> {
        let root = crate::root();
        scaffold(&root, &self.slug)?;
        println!(
            "wrote labs/{0}/, solutions/{0}/ and grader/src/labs/{1}.rs, registered in \
             grader/src/labs.rs; next: `cargo xtask verify {0}`",
            self.slug,
            module(&self.slug)
        );
        Ok(())
    }
}

/// The Rust module name of `slug`.
fn module(slug: &str) -> String {
    slug.replace('-', "_")
}

/// Writes the new lab `slug` into the tree at `root`.
pub fn scaffold(root: &Path, slug: &str) -> Result<()> {
    let valid = !slug.is_empty()
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("`{slug}` is not a slug: use lowercase words joined by `-`, e.g. `shm-queue`");
    }
    let m = module(slug);
    for taken in [
        root.join("labs").join(slug),
        root.join("solutions").join(slug),
        root.join("grader/src/labs").join(format!("{m}.rs")),
    ] {
        if taken.exists() {
            bail!("{} exists already", taken.display());
        }
    }
    let crate_name = m.clone();
    let files: Vec<(String, String)> = vec![
        (
            format!("labs/{slug}/Cargo.toml"),
            format!(
                "[package]\nname = \"{slug}\"\nversion = \"0.1.0\"\ndescription = \"Lab: {slug}\"\n\
                 edition.workspace = true\npublish = false\n\n[dependencies]\nnix.workspace = true\n\
                 libc.workspace = true\n\n[dev-dependencies]\nassert_cmd.workspace = true\n\
                 predicates.workspace = true\nrstest.workspace = true\ntestkit.workspace = true\n"
            ),
        ),
        (
            format!("labs/{slug}/lab.toml"),
            format!(
                "slug = \"{slug}\"\ntitle = \"{slug}\"\nsummary = \"What the student learns, in a \
                 line\"\neditable = [\"src/**/*.rs\"]\n\n[limits]\ntimeout_s = 20\n\n\
                 # Part A: the library.\n[[item]]\nid = \"answer\"\ntitle = \"Part A: answer\"\n\
                 points = 10\nkind = \"test\"\nname = \"answer::\"\nvisibility = \"visible\"\n\n\
                 # Part A, hidden: the same answer again, graded after submission.\n[[item]]\n\
                 id = \"answer-hidden\"\ntitle = \"Part A: answer, hidden cases\"\npoints = 5\n\
                 kind = \"test\"\nname = \"hidden::\"\nvisibility = \"after_due_date\"\n\n\
                 # A scenario the grader drives.\n[[item]]\nid = \"answer-check\"\n\
                 title = \"The answer, judged by the grader\"\npoints = 5\nkind = \"check\"\n\
                 name = \"answer\"\nvisibility = \"visible\"\n"
            ),
        ),
        (
            format!("labs/{slug}/README.md"),
            format!(
                "# Lab: {slug}\n\nWhat the student learns, and why.\n\n## Your tasks\n\n\
                 1. Part A: `answer` in `src/lib.rs`.\n\n## The contract\n\n\
                 - `answer()` returns 42.\n\n## Running the tests\n\n```sh\n\
                 cargo test --no-fail-fast\n```\n\n## Rubric\n\n| Item | Points | What |\n\
                 | --- | --- | --- |\n| `answer` | 10 | Part A: answer |\n\
                 | `answer-hidden` | 5 | Part A: answer, hidden cases |\n\
                 | `answer-check` | 5 | The answer, judged by the grader |\n"
            ),
        ),
        (
            format!("labs/{slug}/src/lib.rs"),
            format!(
                "//! Lab {slug}: the task, in a paragraph.\n\n/// The answer.\n///\n\
                 /// # Example\n///\n/// ```no_run\n/// assert_eq!({crate_name}::answer(), 42);\n\
                 /// ```\npub fn answer() -> u32 {{\n    todo!(\"part A: the answer\")\n}}\n"
            ),
        ),
        (
            format!("labs/{slug}/src/bin/{slug}.rs"),
            format!(
                "//! `{slug}`: prints the answer.\n\nfn main() {{\n    \
                 println!(\"{{}}\", {crate_name}::answer());\n}}\n"
            ),
        ),
        (
            format!("solutions/{slug}/src/bin/{slug}.rs"),
            format!(
                "//! `{slug}`: prints the answer.\n\nfn main() {{\n    \
                 println!(\"{{}}\", {crate_name}::answer());\n}}\n"
            ),
        ),
        (
            format!("labs/{slug}/tests/answer.rs"),
            format!(
                "//! Part A.\n\n/// The answer is 42.\n#[test]\nfn answer_part_a() {{\n    \
                 assert_eq!({crate_name}::answer(), 42);\n}}\n"
            ),
        ),
        (
            format!("labs/{slug}/hidden/hidden.rs"),
            format!(
                "//! Part A, hidden.\n\n/// The answer, twice.\n#[test]\nfn answer_twice_part_a() {{\n    \
                 assert_eq!({crate_name}::answer() + {crate_name}::answer(), 84);\n}}\n"
            ),
        ),
        (
            format!("solutions/{slug}/src/lib.rs"),
            format!(
                "//! Lab {slug}: the task, in a paragraph.\n\n/// The answer.\n///\n\
                 /// # Example\n///\n/// ```no_run\n/// assert_eq!({crate_name}::answer(), 42);\n\
                 /// ```\npub fn answer() -> u32 {{\n    42\n}}\n"
            ),
        ),
        (
            format!("solutions/{slug}/mutants/off-by-one.patch"),
            "# mutant: off-by-one\n# why: the answer is one too many\n\
             # loses: answer = \"42\"\n# loses: answer-hidden\n# loses: answer-check = \"43\"\n\
             --- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -8,5 +8,5 @@\n /// assert_eq!(\
             CRATE::answer(), 42);\n /// ```\n pub fn answer() -> u32 {\n-    42\n+    43\n }\n"
                .replace("CRATE", &crate_name),
        ),
        (
            format!("solutions/{slug}/CONTRACT.md"),
            format!(
                "# The contract of `{slug}`, clause by clause\n\nEvery sentence of the handout's \
                 contract, with the items that fail a program breaking it and the mutants that \
                 prove it (see `grader/src/contract.rs`).\n\n| Clause | Items | Mutants |\n\
                 |---|---|---|\n| `answer()` returns 42 | `answer`, `answer-check` | \
                 `off-by-one` |\n"
            ),
        ),
        (
            format!("grader/src/labs/{m}.rs"),
            format!(
                "//! Checks of the {slug} lab.\n\nuse std::time::Duration;\n\n\
                 use crate::check::{{Check, CheckResult, Ctx}};\nuse crate::ensure;\n\n\
                 /// The checks, by the names lab.toml uses.\n\
                 pub const CHECKS: &[Check] = &[Check {{\n    name: \"answer\",\n    \
                 run: answer,\n}}];\n\n/// `{slug}` prints the answer and exits 0.\n\
                 fn answer(ctx: &mut Ctx) -> CheckResult {{\n    \
                 let spec = ctx.bin(\"{slug}\");\n    \
                 let out = ctx.run(\"`{slug}`\", &spec, Duration::from_secs(10))?;\n    \
                 ensure!(\n        out.status() == 0 && out.stdout_str() == \"42\\n\",\n        \
                 \"`{slug}` must print 42 and exit 0; it {{}} and printed {{:?}}\",\n        \
                 out.ending.describe(),\n        out.stdout_str()\n    );\n    Ok(())\n}}\n"
            ),
        ),
    ];
    for (rel, text) in &files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().context("a path with a parent")?)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    register(&root.join("grader/src/labs.rs"), slug, &m)
}

/// Adds `pub mod MOD;` and the lab's entry of `LABS` to the registry.
fn register(registry: &Path, slug: &str, m: &str) -> Result<()> {
    let text = std::fs::read_to_string(registry)?;
    let entries = "pub const LABS: &[(&str, &[Check])] = &[\n";
    let Some(at) = text.find(entries) else {
        bail!("{} has no `LABS` list", registry.display());
    };
    let end = at + text[at..].find("];").context("an end to LABS")?;
    let mut out = String::new();
    let mods_end = text.find("\n\n///").context("the registry's module list")?;
    out.push_str(&text[..mods_end]);
    out.push_str(&format!("\npub mod {m};"));
    out.push_str(&text[mods_end..end]);
    out.push_str(&format!("    (\"{slug}\", {m}::CHECKS),\n"));
    out.push_str(&text[end..]);
    std::fs::write(registry, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new lab is written whole and registered; its lab.toml parses and its contract
    /// table is complete. (Compiling and verifying it is `cargo xtask verify`'s.)
    #[test]
    fn a_new_lab_is_wired_in() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["labs", "solutions", "grader/src/labs"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        std::fs::copy(
            crate::root().join("grader/src/labs.rs"),
            root.path().join("grader/src/labs.rs"),
        )
        .unwrap();
        assert!(scaffold(root.path(), "Bad Slug").is_err());
        scaffold(root.path(), "shm-queue").unwrap();
        let registry = std::fs::read_to_string(root.path().join("grader/src/labs.rs")).unwrap();
        assert!(registry.contains("pub mod shm_queue;"), "{registry}");
        assert!(
            registry.contains("(\"shm-queue\", shm_queue::CHECKS),"),
            "{registry}"
        );
        let tree = grader::labfile::Tree::locate(Some(root.path())).unwrap();
        let lab = tree.lab("shm-queue").unwrap();
        assert_eq!(lab.file.max_score(), 20.0);
        let rows = grader::contract::check(&lab).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(scaffold(root.path(), "shm-queue").is_err(), "written twice");
    }
}
