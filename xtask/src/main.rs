//! Project tasks: `cargo xtask handout | autograder | verify | bench | new-lab | readme`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod autograder;
mod bench;
mod bundle;
mod handout;
mod new_lab;
mod readme;
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
    /// Write a new lab, every surface wired in (labs/, solutions/, the grader's registry).
    NewLab(new_lab::NewLab),
    /// Write the handouts' parts that restate data (how to grade, the rubric) from lab.toml.
    Readme(readme::Readme),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Handout(h) => h.run(),
        Cmd::Verify(v) => v.run(),
        Cmd::Bench(b) => b.run(),
        Cmd::Autograder(a) => a.run(),
        Cmd::NewLab(n) => n.run(),
        Cmd::Readme(r) => r.run(),
    }
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_owned()
}

/// The toolchain the workspace manifest pins (`[workspace.metadata.toolchain] channel`).
pub fn toolchain_channel(tree: &grader::labfile::Tree) -> anyhow::Result<String> {
    use anyhow::Context;
    let doc: toml_edit::DocumentMut = std::fs::read_to_string(tree.manifest())?.parse()?;
    Ok(doc["workspace"]["metadata"]["toolchain"]["channel"]
        .as_str()
        .context("Cargo.toml has no [workspace.metadata.toolchain] channel")?
        .to_owned())
}

/// The `rust-toolchain.toml` that handouts (`for_students`: with clippy and rustfmt) and
/// autograder zips carry: the toolchain the workspace manifest pins in
/// `[workspace.metadata.toolchain]`, which rustup installs on first use.
pub fn toolchain_file(tree: &grader::labfile::Tree, for_students: bool) -> anyhow::Result<String> {
    let channel = toolchain_channel(tree)?;
    let components = if for_students {
        "components = [\"clippy\", \"rustfmt\"]\n"
    } else {
        ""
    };
    Ok(format!(
        "# The Rust toolchain this lab is graded with; rustup installs it on first use.\n\
         [toolchain]\nchannel = \"{channel}\"\nprofile = \"minimal\"\n{components}"
    ))
}
