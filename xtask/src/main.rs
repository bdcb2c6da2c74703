//! Project tasks: `cargo xtask handout | autograder | verify | bench`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod autograder;
mod bench;
mod handout;
mod verify;

#[derive(Parser)]
#[command(name = "xtask", about = "Build handouts and verify labs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write dist/handouts/<slug>.tar.gz for each lab (all labs when none is named).
    Handout(handout::Handout),
    /// Grade each lab's solution, skeleton and mutants and check the lab's invariants.
    Verify(verify::Verify),
    /// Write dist/autograder/<slug>.zip, a Gradescope autograder.
    Autograder(autograder::Autograder),
    /// Measure the speed targets (as ratios within one run).
    Bench(bench::Bench),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Handout(h) => h.run(),
        Cmd::Verify(v) => v.run(),
        Cmd::Bench(b) => b.run(),
        Cmd::Autograder(a) => a.run(),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_owned()
}
