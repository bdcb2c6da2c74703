//! Reading a submission: a folder, a `.zip` or a `.tar.gz`, with or without a top folder.
//!
//! Everything is read into memory as (relative path, bytes) before anything is staged, so a
//! malformed archive is refused whole or entry by entry, and never half-extracted. Unsafe
//! entries (absolute paths, `..`, links, devices) are skipped and listed, never followed.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

mod archive;
use archive::{Archive, read_archive};

/// Largest single file taken from a submission.
pub const MAX_FILE: u64 = 4 << 20;
/// Largest total taken from a submission (all files, uncompressed).
pub const MAX_TOTAL: u64 = 64 << 20;

/// A submission read into memory.
#[derive(Debug, Default)]
pub struct Submission {
    /// Files with safe relative paths, top folder stripped.
    pub files: Vec<SubFile>,
    /// Entries that were skipped, each with the reason.
    pub skipped: Vec<Skipped>,
    /// Why the uploaded archive cannot be read ("the upload is not a valid zip: ..."), when
    /// it cannot: the student's doing, graded as 0 with this reason, never "not gradable".
    pub unreadable: Option<String>,
}

/// One file of a submission.
#[derive(Debug, Clone)]
pub struct SubFile {
    /// Path relative to the crate root, only normal components.
    pub path: PathBuf,
    /// Contents.
    pub data: Vec<u8>,
}

/// An entry the grader did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// The entry's name as found in the submission.
    pub entry: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Noise that archivers and editors add; skipped silently.
fn is_noise(path: &Path) -> bool {
    path.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s == "__MACOSX" || s == ".DS_Store" || s == ".git" || s == "target"
    })
}

/// Reads the submission at `path`.
///
/// `Err` only when `path` cannot be used at all (missing, not a folder or an archive); an
/// archive that cannot be read is a submission with [`Submission::unreadable`] set. A folder
/// whose only file is an archive (what an upload of an archive looks like on some
/// platforms) is that archive.
pub fn load(path: &Path) -> Result<Submission> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Submission {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut sub = Submission::default();
    let mut total = 0u64;
    if meta.is_dir() {
        read_dir(path, path, &mut sub, &mut total)?;
        let only_archive = match sub.files.as_slice() {
            [only] if sub.skipped.is_empty() => {
                Archive::of(&only.path.to_string_lossy().to_lowercase())
            }
            _ => None,
        };
        if let Some(kind) = only_archive {
            let data = std::mem::take(&mut sub.files[0].data);
            sub = Submission::default();
            total = 0;
            read_archive(kind, std::io::Cursor::new(data), &mut sub, &mut total);
        }
    } else if let Some(kind) = Archive::of(&name) {
        let file = std::fs::File::open(path).map_err(|e| Error::Submission {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        read_archive(kind, std::io::BufReader::new(file), &mut sub, &mut total);
    } else {
        return Err(Error::Submission {
            path: path.to_owned(),
            message: "not a folder, .zip or .tar.gz".into(),
        });
    }
    strip_top_folder(&mut sub);
    sub.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(sub)
}

/// A fingerprint of what a submission hands in (every file's path and bytes, or the
/// reason its archive cannot be read): equal for equal content, whatever the file times.
/// 128 bits of two FNV-1a hashes; it detects change, it is not a cryptographic digest.
pub fn content_hash(sub: &Submission) -> String {
    let mut h = [0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64];
    let mut feed = |bytes: &[u8]| {
        for (i, state) in h.iter_mut().enumerate() {
            for &b in bytes {
                *state ^= u64::from(b) ^ (i as u64) << 8;
                *state = state.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    };
    for f in &sub.files {
        let path = f.path.to_string_lossy();
        feed(&(path.len() as u64).to_le_bytes());
        feed(path.as_bytes());
        feed(&(f.data.len() as u64).to_le_bytes());
        feed(&f.data);
    }
    for s in &sub.skipped {
        feed(s.entry.as_bytes());
    }
    if let Some(why) = &sub.unreadable {
        feed(why.as_bytes());
    }
    format!("{:016x}{:016x}", h[0], h[1])
}

/// A relative path made only of normal components, or why not.
fn safe_relative(raw: &str) -> std::result::Result<PathBuf, String> {
    let p = Path::new(raw);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path (entry ignored)".into());
            }
            Component::ParentDir => return Err("`..` in path (entry ignored)".into()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("empty name".into());
    }
    Ok(out)
}

fn take(
    sub: &mut Submission,
    total: &mut u64,
    raw: &str,
    size: u64,
    read: impl FnOnce() -> std::io::Result<Vec<u8>>,
) {
    let path = match safe_relative(raw) {
        Ok(p) => p,
        Err(reason) => {
            sub.skipped.push(Skipped {
                entry: raw.to_owned(),
                reason,
            });
            return;
        }
    };
    if is_noise(&path) {
        return;
    }
    if size > MAX_FILE {
        sub.skipped.push(Skipped {
            entry: raw.to_owned(),
            reason: format!("larger than {} MiB (entry ignored)", MAX_FILE >> 20),
        });
        return;
    }
    if *total + size > MAX_TOTAL {
        sub.skipped.push(Skipped {
            entry: raw.to_owned(),
            reason: format!(
                "the submission exceeds {} MiB in all (entry ignored)",
                MAX_TOTAL >> 20
            ),
        });
        return;
    }
    match read() {
        Ok(data) => {
            *total += data.len() as u64;
            sub.files.push(SubFile { path, data });
        }
        Err(e) => sub.skipped.push(Skipped {
            entry: raw.to_owned(),
            reason: format!("unreadable: {e}"),
        }),
    }
}

fn read_dir(root: &Path, dir: &Path, sub: &mut Submission, total: &mut u64) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::Submission {
            path: dir.to_owned(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if is_noise(Path::new(&rel)) {
            continue;
        }
        let ft = match entry.file_type() {
            Ok(ft) => ft,
            Err(e) => {
                sub.skipped.push(Skipped {
                    entry: rel,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if ft.is_symlink() {
            sub.skipped.push(Skipped {
                entry: rel,
                reason: "symbolic link (not followed)".into(),
            });
        } else if ft.is_dir() {
            read_dir(root, &path, sub, total)?;
        } else if ft.is_file() {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            take(sub, total, &rel, size, || std::fs::read(&path));
        } else {
            sub.skipped.push(Skipped {
                entry: rel,
                reason: "not a regular file".into(),
            });
        }
    }
    Ok(())
}

/// Strips a single top folder (`submission/src/...` becomes `src/...`), repeatedly, as long
/// as every file sits below the same folder and that folder is not itself `src`.
fn strip_top_folder(sub: &mut Submission) {
    loop {
        let first = |f: &SubFile| f.path.components().next().map(|c| c.as_os_str().to_owned());
        let Some(top) = sub.files.first().and_then(first) else {
            return;
        };
        let all_below = sub
            .files
            .iter()
            .all(|f| f.path.components().count() > 1 && first(f) == Some(top.clone()));
        if !all_below || top == "src" || top == "tests" {
            return;
        }
        for f in &mut sub.files {
            f.path = f.path.strip_prefix(&top).unwrap_or(&f.path).to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(sub: &Submission) -> Vec<String> {
        sub.files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect()
    }

    #[test]
    fn unsafe_names_are_refused() {
        assert!(safe_relative("/etc/passwd").is_err());
        assert!(safe_relative("src/../../x").is_err());
        assert_eq!(
            safe_relative("./src/lib.rs").unwrap(),
            PathBuf::from("src/lib.rs")
        );
    }

    #[test]
    fn top_folders_are_stripped_but_src_is_kept() {
        let mk = |p: &str| SubFile {
            path: p.into(),
            data: vec![],
        };
        let mut sub = Submission {
            files: vec![mk("alice/hw1/src/lib.rs"), mk("alice/hw1/Cargo.toml")],
            ..Submission::default()
        };
        strip_top_folder(&mut sub);
        assert_eq!(paths(&sub), ["src/lib.rs", "Cargo.toml"]);
        let mut only_src = Submission {
            files: vec![mk("src/lib.rs"), mk("src/run.rs")],
            ..Submission::default()
        };
        strip_top_folder(&mut only_src);
        assert_eq!(paths(&only_src), ["src/lib.rs", "src/run.rs"]);
    }

    #[test]
    fn tar_gz_with_dotdot_and_absolute_entries_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            Default::default(),
        );
        let mut b = tar::Builder::new(gz);
        for name in ["sub/src/lib.rs", "sub/../../evil.rs", "/abs.rs"] {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // Write the raw name so that the builder's own path checks do not refuse it.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, &b"ok"[..]).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
        let sub = load(&path).unwrap();
        assert_eq!(paths(&sub), ["src/lib.rs"]);
        let reasons: Vec<_> = sub.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(reasons.iter().any(|r| r.contains("..")), "{reasons:?}");
        assert!(
            reasons.iter().any(|r| r.contains("absolute")),
            "{reasons:?}"
        );
    }

    /// An archive that does not open is a submission with the reason, not an error; a folder
    /// whose only file is an archive is that archive.
    #[test]
    fn unreadable_archives_say_why_and_a_lone_archive_is_unpacked() {
        let dir = tempfile::tempdir().unwrap();
        for (name, why) in [
            ("a.zip", "the upload is not a valid zip: "),
            ("a.tar.gz", "the upload is not a valid .tar.gz: "),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, b"garbage, not an archive").unwrap();
            let sub = load(&path).unwrap();
            let reason = sub.unreadable.clone().unwrap_or_default();
            assert!(reason.starts_with(why), "{name}: {reason}");
            assert!(sub.files.is_empty());
        }
        let upload = dir.path().join("upload");
        std::fs::create_dir_all(&upload).unwrap();
        let mut zip = zip::ZipWriter::new(std::fs::File::create(upload.join("hw.ZIP")).unwrap());
        zip.start_file("hw1/src/lib.rs", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, b"pub fn f() {}").unwrap();
        zip.finish().unwrap();
        let sub = load(&upload).unwrap();
        assert_eq!(paths(&sub), ["src/lib.rs"]);
        assert_eq!(sub.files[0].data, b"pub fn f() {}");
        // The same content, as a folder: the same hash, whatever the file times.
        let folder = dir.path().join("folder/src");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("lib.rs"), b"pub fn f() {}").unwrap();
        let same = load(&dir.path().join("folder")).unwrap();
        assert_eq!(content_hash(&sub), content_hash(&same));
        std::fs::write(folder.join("lib.rs"), b"pub fn f() { }").unwrap();
        let changed = load(&dir.path().join("folder")).unwrap();
        assert_ne!(content_hash(&sub), content_hash(&changed));
    }

    #[test]
    fn missing_and_odd_submissions_are_usage_errors() {
        let err = load(Path::new("/nonexistent/sub")).unwrap_err();
        assert!(err.is_usage(), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("x.rar");
        std::fs::write(&odd, b"x").unwrap();
        assert!(
            load(&odd)
                .unwrap_err()
                .to_string()
                .contains("not a folder, .zip or .tar.gz")
        );
    }
}
