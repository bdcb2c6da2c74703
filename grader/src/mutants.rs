//! Mutants: known-wrong variants of a lab's solution, kept as patches, each naming the
//! rubric items that must catch it.
//!
//! ```text
//! # mutant: parent-keeps-write-end
//! # why: the parent never closes its copies of the write ends, so no stage sees EOF
//! # loses: closes-unused-ends = "close it in the parent"
//! # loses: runs-stages
//! --- a/src/run.rs
//! +++ b/src/run.rs
//! @@ ...
//! ```
//!
//! `loses: ITEM` lists an item the mutant must fail (exactly these fail; every other item
//! passes); `= "text"` is a case-insensitive substring the item's message must contain, so
//! that the feedback names the cause.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A parsed mutant patch.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// Its name (`# mutant:`), also the file stem.
    pub name: String,
    /// The mistake, in a sentence.
    pub why: String,
    /// The items it must lose, each with an optional expected message fragment.
    pub loses: Vec<(String, Option<String>)>,
    /// Per file: relative path and the unified diff of that file.
    pub files: Vec<(PathBuf, String)>,
    /// Where it was read from.
    pub path: PathBuf,
}

impl Mutant {
    /// Reads and parses the patch at `path`.
    pub fn load(path: &Path) -> Result<Mutant> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Mutant> {
        let bad = |message: String| Error::Mutant {
            path: path.to_owned(),
            message,
        };
        let mut name = None;
        let mut why = String::new();
        let mut loses = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        let mut body_start = lines.len();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("--- ") {
                body_start = i;
                break;
            }
            let Some(meta) = line.strip_prefix('#') else {
                continue;
            };
            let meta = meta.trim();
            if let Some(v) = meta.strip_prefix("mutant:") {
                name = Some(v.trim().to_owned());
            } else if let Some(v) = meta.strip_prefix("why:") {
                why = v.trim().to_owned();
            } else if let Some(v) = meta.strip_prefix("loses:") {
                let (item, expect) = match v.split_once('=') {
                    Some((item, expect)) => {
                        let e = expect.trim();
                        let e = e
                            .strip_prefix('"')
                            .and_then(|e| e.strip_suffix('"'))
                            .ok_or_else(|| {
                                bad(format!(
                                    "`loses: {}`: the expected text must be in double quotes",
                                    v.trim()
                                ))
                            })?;
                        (item.trim(), Some(e.to_owned()))
                    }
                    None => (v.trim(), None),
                };
                loses.push((item.to_owned(), expect));
            }
        }
        let name = name.ok_or_else(|| bad("no `# mutant: NAME` line".into()))?;
        if loses.is_empty() {
            return Err(bad(
                "no `# loses: ITEM` line: a mutant must name what catches it".into(),
            ));
        }
        let mut files = Vec::new();
        let body = &lines[body_start..];
        let starts: Vec<usize> = (0..body.len())
            .filter(|&i| {
                body[i].starts_with("--- ")
                    && body.get(i + 1).is_some_and(|l| l.starts_with("+++ "))
            })
            .collect();
        for (k, &s) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(body.len());
            let target = body[s + 1][4..]
                .split('\t')
                .next()
                .unwrap_or_default()
                .trim();
            let rel = target.strip_prefix("b/").unwrap_or(target);
            // `diff -ruN a b` lines between files belong to no hunk.
            let lines: Vec<&str> = body[s..end]
                .iter()
                .copied()
                .filter(|l| !l.starts_with("diff "))
                .collect();
            let mut diff = lines.join("\n");
            diff.push('\n');
            files.push((PathBuf::from(rel), diff));
        }
        if files.is_empty() {
            return Err(bad("no diff in the patch".into()));
        }
        Ok(Mutant {
            name,
            why,
            loses,
            files,
            path: path.to_owned(),
        })
    }

    /// Copies the editable files of `solution` into `dest` with the mutant applied.
    pub fn apply(&self, solution: &Path, dest: &Path) -> Result<()> {
        copy_tree(solution, dest)?;
        for (rel, diff) in &self.files {
            let file = dest.join(rel);
            let original = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            let patch = diffy::Patch::from_str(diff).map_err(|e| Error::Mutant {
                path: self.path.clone(),
                message: format!("bad diff for {}: {e}", rel.display()),
            })?;
            let patched = diffy::apply(&original, &patch).map_err(|e| Error::Mutant {
                path: self.path.clone(),
                message: format!(
                    "does not apply to {}: {e} (regenerate it from the solution)",
                    rel.display()
                ),
            })?;
            std::fs::write(&file, patched).map_err(|e| Error::io(&file, e))?;
        }
        Ok(())
    }
}

/// Copies a solution folder, leaving out its mutants.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "mutants" {
            continue;
        }
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "# mutant: demo\n# why: breaks it\n# loses: a-item = \"close it\"\n# loses: b-item\n\
                         --- a/src/x.rs\n+++ b/src/x.rs\n@@ -1,2 +1,2 @@\n fn f() {}\n-fn g() {}\n+fn h() {}\n";

    #[test]
    fn header_and_diff_are_parsed_and_applied() {
        let m = Mutant::parse(PATCH, Path::new("demo.patch")).unwrap();
        assert_eq!(m.name, "demo");
        assert_eq!(
            m.loses,
            [
                ("a-item".into(), Some("close it".into())),
                ("b-item".into(), None)
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let sol = dir.path().join("sol");
        std::fs::create_dir_all(sol.join("src")).unwrap();
        std::fs::write(sol.join("src/x.rs"), "fn f() {}\nfn g() {}\n").unwrap();
        let out = dir.path().join("out");
        m.apply(&sol, &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("src/x.rs")).unwrap(),
            "fn f() {}\nfn h() {}\n"
        );
    }

    #[test]
    fn a_mutant_must_name_its_catcher() {
        let err =
            Mutant::parse("# mutant: x\n--- a/f\n+++ b/f\n", Path::new("x.patch")).unwrap_err();
        assert!(
            err.to_string().contains("must name what catches it"),
            "{err}"
        );
    }
}
