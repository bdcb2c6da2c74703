//! `cargo xtask bench`: speed targets, measured as ratios within one run on this machine.
//!
//! - `pipeline seq 1 5000000 '|' wc -l` against `bash -c 'seq 1 5000000 | wc -l'`,
//!   interleaved runs, medians and their ratio;
//! - wall time of grading the pipes reference solution with dependencies already built;
//! - the shm-ring reference solution against memcpy and a pipe (`bench/shm_ring.rs`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use grader::labfile::Tree;

mod shm_ring;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Bench {
    /// Runs of each command.
    #[arg(long, default_value_t = 15)]
    runs: usize,
}

impl Bench {
    pub fn run(self) -> Result<()> {
        let tree = Tree::locate(Some(&crate::root()))?;
        shm_ring::run(&tree, self.runs.min(7))?;
        let lab = tree.lab("pipes")?;
        let work = tempfile::tempdir()?;
        let sub = grader::submission::load(&lab.solution)?;
        let staged = work.path().join("stage");
        std::fs::create_dir_all(&staged)?;
        grader::stage::stage(&tree, &lab, &sub, &staged, false)?;
        let target = tree.root.join("target").join("grader").join("pipes");
        let out = work.path().join("out");
        let built = grader::build::build(&staged, "pipes", &target, &out, &|| Ok(Vec::new()))?;
        let grader::build::Built::Ok(art) = built else {
            bail!("the pipes solution does not compile")
        };
        let pipeline = art.bins.get("pipeline").context("no pipeline binary")?;

        let ours = || time(Command::new(pipeline).args(["seq", "1", "5000000", "|", "wc", "-l"]));
        let bash = || time(Command::new("bash").args(["-c", "seq 1 5000000 | wc -l"]));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        ours()?;
        bash()?;
        for _ in 0..self.runs {
            a.push(ours()?);
            b.push(bash()?);
        }
        let (ma, mb) = (median(&mut a), median(&mut b));
        println!(
            "seq 1 5000000 | wc -l, median of {} interleaved runs: pipeline {:.1} ms, bash {:.1} ms, ratio pipeline/bash {:.3}",
            self.runs,
            ms(ma),
            ms(mb),
            ma.as_secs_f64() / mb.as_secs_f64()
        );

        let exe = crate::verify::build_grader(&tree)?;
        let grade = || -> Result<Duration> {
            let mut cmd = Command::new(&exe);
            cmd.arg("--root")
                .arg(&tree.root)
                .args(["grade", "pipes", "--quiet"])
                .arg(&lab.solution);
            time(&mut cmd)
        };
        grade()?; // dependencies built, caches warm
        let t = grade()?;
        println!(
            "grading the pipes solution (dependencies built): {:.1} s wall",
            t.as_secs_f64()
        );
        Ok(())
    }
}

fn time(cmd: &mut Command) -> Result<Duration> {
    let t0 = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    let elapsed = t0.elapsed();
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(elapsed)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
