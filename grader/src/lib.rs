//! Grades IPC lab submissions: stage, build, run tests, run checks, score and report.
//!
//! # Layout
//! - [`labfile`]: `lab.toml`, parsed into one documented struct; finding labs in the tree.
//! - [`submission`]: reading a folder, .zip or .tar.gz safely into memory.
//! - [`stage`] (step 1): template + editable files + hidden tests + standalone manifest.
//! - [`build`] (step 2): `cargo build` into a shared per-lab target folder.
//! - [`run`] (step 3): one process per libtest test, with a timeout.
//! - [`check`] (step 4): the check API ([`check::Ctx`]) and the check child process.
//! - [`labs`]: each lab's multi-process checks (`labs/<slug>.rs`).
//! - [`score`], [`report`] (step 5): items, points, and the four report formats.
//! - [`grade`]: the five steps in order for one submission.
//! - [`batch`]: `grade-all`: each student's report, the gradebook and LMS exports, the class
//!   summary page with code similarity.
//! - [`watch`]: `cargo grade --watch`, grading again on every saved change.
//! - [`sandbox`]: confinement, one folder: process groups, limits, deadlines, subreaper
//!   clean-up; a jail per run (`sandbox::isolate`: fresh root, private namespaces, the
//!   unprivileged identities code runs as; `sandbox::init`, PID 1 of a jail); cgroups
//!   (`sandbox::cgroup`); IPC objects left behind (`sandbox::leftovers`).
//! - [`schedule`]: the pool that runs a grading's tests and checks.
//! - [`interrupt`]: Ctrl-C, SIGTERM and SIGHUP stop every process of a grading and leave
//!   nothing behind.
//! - [`console`]: the grader's own output, which a closed pipe never turns into a panic.
//! - [`manifest`]: a lab's Cargo.toml made standalone (shared with handouts).
//! - [`mutants`]: known-wrong solutions as patches, and what must catch them.
//! - [`contract`]: a lab's contract table, every clause with its items and mutants.
//! - [`verify`]: the judgements of a lab's invariants (`cargo xtask verify`, the tests).

pub mod batch;
pub mod build;
pub mod check;
pub mod console;
pub mod contract;
pub mod error;
pub mod grade;
pub mod interrupt;
pub mod labfile;
pub mod labs;
pub mod manifest;
pub mod measure;
pub mod mutants;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod schedule;
pub mod score;
pub mod stage;
pub mod submission;
pub mod verify;
pub mod watch;

pub use error::{Error, Result};
