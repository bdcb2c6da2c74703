//! Errors of the grader library.
//!
//! Two families matter to callers: a bad request ([`Error::is_usage`]: unknown lab, missing
//! submission), which the CLI answers with exit status 2, and everything else, which means the
//! grader could not grade (exit status 3, "not gradable"). A submission that does not compile
//! or that misbehaves is neither: it is a graded outcome and never an `Error`.

use std::path::{Path, PathBuf};

/// What went wrong while grading.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lab named on the command line does not exist.
    #[error("unknown lab `{slug}` (labs here: {})", known.join(", "))]
    UnknownLab {
        /// What was asked for.
        slug: String,
        /// What exists.
        known: Vec<String>,
    },
    /// No project tree (with `labs/`) was found.
    #[error("no lab tree found (looked for labs/ in {}); pass --root DIR", show_paths(.0))]
    NoTree(Vec<PathBuf>),
    /// The submission path does not exist or cannot be read.
    #[error("cannot read submission {}: {message}", path.display())]
    Submission {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// The roster given to `grade-all` cannot be read or is not one.
    #[error("roster {}: {message}", path.display())]
    Roster {
        /// The file given.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A lab's `lab.toml` is invalid: the lab itself is broken.
    #[error("broken lab file {}: {message}", path.display())]
    LabFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A mutant patch is malformed or does not apply.
    #[error("mutant {}: {message}", path.display())]
    Mutant {
        /// The patch file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tool the grader needs (cargo, bash) is missing or failed for reasons that are not
    /// the submission's fault.
    #[error("{0}")]
    Infrastructure(String),
    /// The grader was told to stop (Ctrl-C, SIGTERM, SIGHUP) before the grading finished.
    #[error("interrupted by {0} before the grading finished: nothing was graded")]
    Interrupted(String),
    /// An I/O error on the grader's own files (full disk, permissions).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Whether the caller asked for something wrong (exit 2) rather than the grader failing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::UnknownLab { .. }
                | Error::Submission { .. }
                | Error::Roster { .. }
                | Error::NoTree(_)
        )
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
