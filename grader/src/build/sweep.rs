//! What a build leaves where a later submission's build could name it, and the lab's build
//! folder kept in step with the staged crate: a submission's `include_bytes!` must find no
//! earlier submission's programs, no compiled hidden test and no cached compiler message.

use std::path::{Path, PathBuf};

/// Where the build folders of the labs built with `target_dir` are: `<target_dir>.crates`.
pub fn crates_dir(target_dir: &Path) -> PathBuf {
    let mut name = target_dir.file_name().unwrap_or_default().to_owned();
    name.push(".crates");
    target_dir.with_file_name(name)
}

/// What building one lab's package left in the shared target folder at paths a submission
/// could name, to be removed (now with [`Forget::sweep`], or when dropped). The next build
/// shows that folder to a submission, whose `include_bytes!` could otherwise take an
/// earlier submission's programs (to run them as its own), a compiled hidden test (its
/// strings), or the compiler's cached warnings, which quote source lines. Removed:
/// - `deps/<crate>-<hash>*` and `deps/lib<crate>-<hash>*` of the package's library,
///   binaries and tests (a hash anyone with the same toolchain can work out);
/// - the binaries cargo copies to `debug/<name>`;
/// - their `.fingerprint/<package>-<hash>/` folders, where the cached compiler messages
///   are.
///
/// The incremental caches stay, for speed: their session folders are named by creation
/// time and a random number, so no `include_bytes!` path can name them.
pub(super) struct Forget {
    target_dir: PathBuf,
    package: String,
    /// Crate names as in `deps/` (`-` written `_`).
    crates: Vec<String>,
    bins: Vec<String>,
    /// Every fingerprint folder of the package, or only those of `crates`' test targets.
    whole: bool,
}

impl Forget {
    /// Everything of the package in the build folder `crate_dir`: its library, the
    /// binaries of `src/main.rs` and `src/bin/`, the tests of `tests/`. In `deps/`, a name
    /// that is also a package of the lab's lock file (a dependency) is left alone.
    pub(super) fn own(target_dir: &Path, crate_dir: &Path, package: &str) -> Forget {
        let stems = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .filter_map(|e| {
                            let name = e.file_name().to_string_lossy().into_owned();
                            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                            match name.strip_suffix(".rs") {
                                Some(stem) if !is_dir => Some(stem.to_owned()),
                                None if is_dir && e.path().join("main.rs").is_file() => Some(name),
                                _ => None,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut bins = stems(&crate_dir.join("src").join("bin"));
        if crate_dir.join("src").join("main.rs").is_file() {
            bins.push(package.to_owned());
        }
        let tests = stems(&crate_dir.join("tests"));
        let lock = std::fs::read_to_string(crate_dir.join("Cargo.lock")).unwrap_or_default();
        let deps: Vec<String> = lock
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|n| *n != package)
            .map(|n| n.replace('-', "_"))
            .collect();
        let ident = |n: &str| n.replace('-', "_");
        let mut crates: Vec<String> = std::iter::once(package)
            .chain(bins.iter().map(String::as_str))
            .chain(tests.iter().map(String::as_str))
            .map(ident)
            .filter(|c| !deps.contains(c))
            .collect();
        crates.sort();
        crates.dedup();
        Forget {
            target_dir: target_dir.to_path_buf(),
            package: package.to_owned(),
            crates,
            bins,
            whole: true,
        }
    }

    /// The compiled hidden tests `stems` of the package.
    pub(super) fn hidden(target_dir: &Path, package: &str, stems: &[String]) -> Forget {
        Forget {
            target_dir: target_dir.to_path_buf(),
            package: package.to_owned(),
            crates: stems.to_vec(),
            bins: Vec::new(),
            whole: false,
        }
    }

    pub(super) fn sweep(&self) {
        let ours = |krate: &str| self.crates.iter().any(|c| c == krate);
        Self::sweep_deps(&self.target_dir, |krate| {
            ours(krate) || krate.strip_prefix("lib").is_some_and(ours)
        });
        let debug = self.target_dir.join("debug");
        for bin in &self.bins {
            let _ = std::fs::remove_file(debug.join(bin));
            let _ = std::fs::remove_file(debug.join(format!("{bin}.d")));
        }
        if let Ok(entries) = std::fs::read_dir(debug.join(".fingerprint")) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let ours = name.rsplit_once('-').is_some_and(|(pkg, hash)| {
                    pkg == self.package
                        && hash.len() == 16
                        && hash.bytes().all(|b| b.is_ascii_hexdigit())
                });
                // A test target's files there end in `-test-<name>`.
                let doomed = || {
                    self.whole
                        || std::fs::read_dir(entry.path())
                            .into_iter()
                            .flatten()
                            .flatten()
                            .any(|f| {
                                let f = f.file_name();
                                let f = f.to_string_lossy();
                                self.crates
                                    .iter()
                                    .any(|c| f.ends_with(&format!("-test-{c}")))
                            })
                };
                if ours && doomed() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    /// Removes every entry of `deps/` of the dev profile whose crate name (before the
    /// `-hash`) `doomed` accepts.
    pub(super) fn sweep_deps(target_dir: &Path, doomed: impl Fn(&str) -> bool) {
        let Ok(entries) = std::fs::read_dir(target_dir.join("debug").join("deps")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.split_once('-').is_some_and(|(krate, _)| doomed(krate)) {
                let path = entry.path();
                let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.sweep();
    }
}

/// Removes its files when dropped.
pub(super) struct RemoveOnDrop(pub(super) Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Makes the folder `to` hold exactly the files and folders of `from`: a file whose content
/// differs (or that is new) is written, so its mtime is now; a file with the same content is
/// left alone, mtime included; whatever `from` lacks is removed. Whether anything changed.
pub fn sync_tree(from: &Path, to: &Path) -> std::io::Result<bool> {
    let mut changed = false;
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        let theirs = from.join(entry.file_name());
        let wanted = std::fs::symlink_metadata(&theirs).ok();
        let is_dir = entry.file_type()?.is_dir();
        let keep = match &wanted {
            Some(m) if m.is_dir() => is_dir,
            Some(m) if m.is_file() => entry.file_type()?.is_file(),
            _ => false,
        };
        if !keep {
            changed = true;
            if is_dir {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let ours = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            changed |= sync_tree(&entry.path(), &ours)?;
        } else if kind.is_file() {
            let content = std::fs::read(entry.path())?;
            if std::fs::read(&ours).ok().as_deref() != Some(content.as_slice()) {
                std::fs::write(&ours, &content)?;
                changed = true;
            }
        }
    }
    Ok(changed)
}
