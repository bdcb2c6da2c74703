//! The archives a submission may be: .zip and .tar.gz, read from a file or from memory
//! (a folder that holds only an archive), entry by entry through the same checks as a
//! folder's files. One that cannot be read is the student's upload, said so.

use std::io::Read;

use super::{MAX_FILE, Skipped, Submission, take};

/// The kinds of archive a submission may be.
#[derive(Debug, Clone, Copy)]
pub(super) enum Archive {
    Zip,
    TarGz,
}

impl Archive {
    /// The kind a (lower-case) file name says, if any.
    pub(super) fn of(name: &str) -> Option<Archive> {
        if name.ends_with(".zip") {
            Some(Archive::Zip)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Archive::TarGz)
        } else {
            None
        }
    }
}

/// Reads an archive into `sub`; one that cannot be read leaves `sub` empty but for
/// [`Submission::unreadable`].
pub(super) fn read_archive<R: Read + std::io::Seek>(
    kind: Archive,
    r: R,
    sub: &mut Submission,
    total: &mut u64,
) {
    let read = match kind {
        Archive::Zip => read_zip(r, sub, total).map_err(|e| format!("not a valid zip: {e}")),
        Archive::TarGz => {
            read_tar_gz(r, sub, total).map_err(|e| format!("not a valid .tar.gz: {e}"))
        }
    };
    if let Err(why) = read {
        *sub = Submission {
            unreadable: Some(format!("the upload is {why}")),
            ..Submission::default()
        };
    }
}

fn read_zip<R: Read + std::io::Seek>(
    r: R,
    sub: &mut Submission,
    total: &mut u64,
) -> std::result::Result<(), String> {
    let mut zip = zip::ZipArchive::new(r).map_err(|e| e.to_string())?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("corrupt entry {i}: {e}"))?;
        let name = entry.name().to_owned();
        if entry.is_dir() {
            continue;
        }
        if entry.is_symlink() || !entry.is_file() {
            skip(sub, name, "not a regular file");
            continue;
        }
        let size = entry.size();
        take(sub, total, &name, size, || read_capped(&mut entry, size));
    }
    Ok(())
}

fn read_tar_gz<R: Read>(
    r: R,
    sub: &mut Submission,
    total: &mut u64,
) -> std::result::Result<(), String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(r));
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => {
                skip(sub, "?".into(), &e.to_string());
                continue;
            }
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if !kind.is_file() {
            skip(sub, name, "not a regular file");
            continue;
        }
        let size = entry.size();
        take(sub, total, &name, size, || read_capped(&mut entry, size));
    }
    Ok(())
}

/// Lists archive entry `entry` as skipped, and why.
fn skip(sub: &mut Submission, entry: String, reason: &str) {
    sub.skipped.push(Skipped {
        entry,
        reason: reason.to_owned(),
    });
}

/// Reads at most `declared` bytes (and never more than [`MAX_FILE`]): archive headers lie.
fn read_capped(r: &mut impl Read, declared: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    r.take(declared.min(MAX_FILE)).read_to_end(&mut data)?;
    Ok(data)
}
