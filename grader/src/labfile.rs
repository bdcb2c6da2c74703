//! `lab.toml`: a lab's metadata and rubric, parsed into one documented struct.
//!
//! The grader and xtask both read labs through this module and nobody else parses the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One lab's `lab.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    /// Stable short name; also the package name and the folder under `labs/`.
    pub slug: String,
    /// Human title, shown at the top of reports.
    pub title: String,
    /// One line on what the lab teaches.
    #[serde(default)]
    pub summary: String,
    /// Glob patterns (relative to the crate root) of the files a submission may supply.
    /// Everything else a submission carries is ignored and listed in the report.
    pub editable: Vec<String>,
    /// Defaults for every item; an item may override them.
    #[serde(default)]
    pub limits: Limits,
    /// Debian packages of the peer programs the lab's checks run (socat, redis-tools,
    /// nodejs, ...). `grader/peers.sh` installs them: CI installs every lab's, the autograder's
    /// setup.sh its lab's. A check whose peer is missing reports its item "not gradable here".
    #[serde(default)]
    pub peers: Vec<String>,
    /// The rubric, in report order.
    #[serde(rename = "item")]
    pub items: Vec<Item>,
}

/// Resource limits for one test or check process.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock seconds before the process tree is killed and diagnosed.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Memory (MiB) one test or check may use, all its processes together, before the kernel
    /// stops it (a memory cgroup where the machine has one, else RLIMIT_AS per process).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
}

fn default_timeout() -> f64 {
    10.0
}

fn default_memory_mb() -> u64 {
    1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_s: default_timeout(),
            memory_mb: default_memory_mb(),
        }
    }
}

impl Limits {
    /// The timeout as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }

    /// The memory cap in bytes.
    pub fn memory(&self) -> u64 {
        self.memory_mb << 20
    }
}

/// How a rubric item is decided.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A libtest test (visible or hidden), run one process per test.
    Test,
    /// A multi-process scenario from `grader/src/labs/<slug>.rs`.
    Check,
}

/// Who sees an item's result, in Gradescope's words.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Shown to the student at once.
    Visible,
    /// Never shown to the student.
    Hidden,
    /// Shown once the due date has passed.
    AfterDueDate,
    /// Shown once grades are published.
    AfterPublished,
}

/// One rubric item.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Stable kebab-case id, used in reports and in mutants' `loses:` lines.
    pub id: String,
    /// What the item grades, in a student's words.
    pub title: String,
    /// Points awarded when the item passes (all or nothing).
    pub points: f64,
    /// Test or check.
    pub kind: Kind,
    /// For a test: `<test file stem>::<fn name>`, where a prefix selects every test under it.
    /// For a check: the check's name in the lab's check module.
    pub name: String,
    /// Who sees the result.
    #[serde(default = "default_visibility")]
    pub visibility: Visibility,
    /// Limits for this item's processes, replacing the lab's.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Whether a student's own grading (`cargo grade` in the handout) grades it, when it is
    /// visible: false keeps a visible item server-side (graded after submission).
    #[serde(default = "yes")]
    pub local: bool,
    /// For a check: it runs alone, after the grading's tests and other checks, with nothing
    /// of the grading beside it, because it measures speed or loads every CPU. Other checks
    /// run beside the tests and each other, so that a hanging submission's deadlines run out
    /// together.
    #[serde(default)]
    pub alone: bool,
}

fn yes() -> bool {
    true
}

fn default_visibility() -> Visibility {
    Visibility::Visible
}

impl Item {
    /// Whether a student's own grading (`cargo grade`) grades it: a visible item not kept
    /// server-side.
    pub fn graded_locally(&self) -> bool {
        self.visibility == Visibility::Visible && self.local
    }

    /// Whether the test `id` (`stem::name`) belongs to this item.
    pub fn matches_test(&self, id: &str) -> bool {
        self.kind == Kind::Test && id.starts_with(&self.name)
    }
}

impl LabFile {
    /// Reads and validates `lab.toml` from `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let lab: LabFile = toml::from_str(&text).map_err(|e| Error::LabFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        lab.validate().map_err(|message| Error::LabFile {
            path: path.to_owned(),
            message,
        })?;
        Ok(lab)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let mut seen = BTreeSet::new();
        for item in &self.items {
            if !seen.insert(&item.id) {
                return Err(format!("item id `{}` appears twice", item.id));
            }
            let kebab = !item.id.is_empty()
                && item
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !kebab {
                return Err(format!("item id `{}` is not kebab-case", item.id));
            }
            if item.points.is_nan() || item.points < 0.0 {
                return Err(format!("item `{}` has negative points", item.id));
            }
            if item.alone && item.kind != Kind::Check {
                return Err(format!(
                    "item `{}`: only a check runs `alone` (tests run two at a time)",
                    item.id
                ));
            }
        }
        if self.items.is_empty() {
            return Err("the rubric has no [[item]]".into());
        }
        if self.editable.is_empty() {
            return Err("`editable` is empty: a submission could supply nothing".into());
        }
        Ok(())
    }

    /// The sum of every item's points.
    pub fn max_score(&self) -> f64 {
        self.items.iter().map(|i| i.points).sum()
    }

    /// The limits that apply to `item`.
    pub fn limits_for(&self, item: &Item) -> Limits {
        item.limits.unwrap_or(self.limits)
    }

    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }

    /// A matcher for the `editable` globs.
    pub fn editable_set(&self) -> Result<globset::GlobSet> {
        let mut b = globset::GlobSetBuilder::new();
        for pat in &self.editable {
            let glob = globset::GlobBuilder::new(pat)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::LabFile {
                    path: PathBuf::from("lab.toml"),
                    message: format!("bad editable pattern `{pat}`: {e}"),
                })?;
            b.add(glob);
        }
        b.build().map_err(|e| Error::LabFile {
            path: PathBuf::from("lab.toml"),
            message: e.to_string(),
        })
    }
}

/// The project's tree: where labs, solutions and the workspace manifest live.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The folder holding `Cargo.toml`, `labs/` and `solutions/`.
    pub root: PathBuf,
}

/// A lab found in the tree.
#[derive(Debug, Clone)]
pub struct Lab {
    /// Its parsed `lab.toml`.
    pub file: LabFile,
    /// `labs/<slug>`: the student's crate plus `hidden/`.
    pub dir: PathBuf,
    /// `solutions/<slug>`: the reference submission and its mutants.
    pub solution: PathBuf,
}

impl Tree {
    /// Finds the tree: `explicit` if given, else `$GRADER_ROOT`, else the workspace this
    /// grader was built from.
    pub fn locate(explicit: Option<&Path>) -> Result<Tree> {
        let candidates: Vec<PathBuf> = match explicit {
            Some(p) => vec![p.to_owned()],
            None => std::env::var_os("GRADER_ROOT")
                .map(PathBuf::from)
                .into_iter()
                .chain(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .parent()
                        .map(Path::to_owned),
                )
                .collect(),
        };
        for root in &candidates {
            if root.join("labs").is_dir() {
                // Absolute once, here: every path made from the root is handed to processes
                // that start elsewhere (a jail's cwd, a child grader), where a relative path
                // names nothing.
                let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
                return Ok(Tree { root });
            }
        }
        Err(Error::NoTree(candidates))
    }

    /// The slugs of every lab, sorted.
    pub fn slugs(&self) -> Result<Vec<String>> {
        let dir = self.root.join("labs");
        let mut slugs = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            if entry.path().join("lab.toml").is_file() {
                slugs.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        slugs.sort();
        Ok(slugs)
    }

    /// Loads the lab `slug`.
    pub fn lab(&self, slug: &str) -> Result<Lab> {
        let valid = !slug.is_empty()
            && slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let dir = self.root.join("labs").join(slug);
        if !valid || !dir.join("lab.toml").is_file() {
            return Err(Error::UnknownLab {
                slug: slug.to_owned(),
                known: self.slugs().unwrap_or_default(),
            });
        }
        let file = LabFile::load(&dir.join("lab.toml"))?;
        if file.slug != slug {
            return Err(Error::LabFile {
                path: dir.join("lab.toml"),
                message: format!("slug is `{}` but the folder is `{slug}`", file.slug),
            });
        }
        Ok(Lab {
            file,
            solution: self.root.join("solutions").join(slug),
            dir,
        })
    }

    /// The workspace manifest, `Cargo.toml` at the root.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    /// The workspace lock file.
    pub fn lockfile(&self) -> PathBuf {
        self.root.join("Cargo.lock")
    }
}

impl Lab {
    /// The mutant patches of this lab's solution, sorted by name.
    pub fn mutant_paths(&self) -> Result<Vec<PathBuf>> {
        let dir = self.solution.join("mutants");
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd {
                let p = e.map_err(|e| Error::io(&dir, e))?.path();
                if p.extension().is_some_and(|x| x == "patch") {
                    out.push(p);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lab_in_the_tree_parses() {
        let tree = Tree::locate(None).unwrap();
        let slugs = tree.slugs().unwrap();
        assert!(slugs.contains(&"pipes".to_string()), "{slugs:?}");
        for slug in slugs {
            let lab = tree.lab(&slug).unwrap();
            assert!(lab.file.max_score() > 0.0);
        }
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let text = r#"
            slug = "x"
            title = "X"
            editable = ["src/**/*.rs"]
            [[item]]
            id = "a"
            title = "A"
            points = 1
            kind = "test"
            name = "t::"
            [[item]]
            id = "a"
            title = "A again"
            points = 1
            kind = "check"
            name = "c"
        "#;
        let lab: LabFile = toml::from_str(text).unwrap();
        assert_eq!(lab.validate().unwrap_err(), "item id `a` appears twice");
    }

    #[test]
    fn unknown_lab_names_the_known_ones() {
        let tree = Tree::locate(None).unwrap();
        let err = tree.lab("../etc").unwrap_err().to_string();
        assert!(
            err.contains("unknown lab `../etc`") && err.contains("pipes"),
            "{err}"
        );
    }
}
