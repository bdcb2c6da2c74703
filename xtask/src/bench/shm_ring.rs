//! The shm-ring reference solution's speed targets, as ratios measured in one run:
//!
//! - throughput of `ring-bench --throughput` (two processes, 16 KiB chunks, the default
//!   256 KiB ring) against a single-threaded `memcpy` of the same chunk size into a buffer
//!   of the ring's size, measured by `ring-bench --memcpy` (same build, same optimisation;
//!   at least 60%) and against `cat < file | cat > /dev/null` with the
//!   file in tmpfs (at least 5x);
//! - the median 64-byte round trip of `ring-bench --pingpong` (at most 0.6 µs).
//!
//! The solution is staged as the grader stages it and built in the dev profile (with the
//! lab's optimisation override); the three throughput figures are taken in alternation,
//! `runs` rounds each, and compared by their medians.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use grader::labfile::Tree;
use grader::measure::median;

const BYTES: usize = 512 << 20;
const CHUNK: usize = 16 << 10;
const RING: usize = 256 << 10;
const TRIPS: usize = 20000;

pub fn run(tree: &Tree, runs: usize) -> Result<()> {
    let lab = tree.lab("shm-ring")?;
    let work = tempfile::tempdir()?;
    let sub = grader::submission::load(&lab.solution)?;
    let staged = work.path().join("stage");
    std::fs::create_dir_all(&staged)?;
    grader::stage::stage(tree, &lab, &sub, &staged, false)?;
    // Built as the grader builds it (dev profile, with the lab's optimisation override), but
    // with plain cargo: this is our own reference solution, no jail needed.
    let target = tree.root.join("target").join("bench").join("shm-ring");
    let status = Command::new(grader::build::cargo())
        .args(["build", "--quiet", "--bins", "--offline", "--target-dir"])
        .arg(&target)
        .current_dir(&staged)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("the staged shm-ring solution does not build");
    }
    let bench = target.join("debug").join("ring-bench");

    // The pipe's input, in tmpfs.
    let file = tempfile::Builder::new()
        .prefix("shmring-bench-")
        .tempfile_in("/dev/shm")?;
    {
        let block = vec![0x5Au8; 1 << 20];
        let mut f = file.as_file();
        for _ in 0..BYTES >> 20 {
            f.write_all(&block)?;
        }
    }
    let path = file.path().to_string_lossy().into_owned();

    let (mut ring, mut copy, mut pipe) = (Vec::new(), Vec::new(), Vec::new());
    let bytes = BYTES.to_string();
    for _ in 0..runs.max(3) {
        ring.push(figure(
            &bench,
            &[
                "--throughput",
                &bytes,
                "--chunk",
                &CHUNK.to_string(),
                "--capacity",
                &RING.to_string(),
            ],
            "throughput ",
        )?);
        copy.push(figure(
            &bench,
            &[
                "--memcpy",
                &bytes,
                "--chunk",
                &CHUNK.to_string(),
                "--capacity",
                &RING.to_string(),
            ],
            "memcpy ",
        )?);
        let t0 = Instant::now();
        let st = Command::new("bash")
            .args(["-c", &format!("cat < {path} | cat > /dev/null")])
            .status()?;
        if !st.success() {
            bail!("the pipe baseline failed: {st}");
        }
        pipe.push(BYTES as f64 / t0.elapsed().as_secs_f64() / 1e9);
    }
    let mut rtt = Vec::new();
    for _ in 0..runs.max(3) {
        rtt.push(figure(
            &bench,
            &["--pingpong", &TRIPS.to_string()],
            "median ",
        )?);
    }
    let (r, m, p, t) = (median(&ring), median(&copy), median(&pipe), median(&rtt));
    println!(
        "shm-ring throughput, {} MiB in {} KiB chunks, median of {} alternating rounds: ring {r:.2} GB/s, \
         memcpy {m:.2} GB/s, pipe (cat | cat) {p:.2} GB/s; ring/memcpy {:.2} (target >= 0.60), \
         ring/pipe {:.1} (target >= 5)",
        BYTES >> 20,
        CHUNK >> 10,
        ring.len(),
        r / m,
        r / p
    );
    println!(
        "shm-ring 64-byte round trip, median of {} runs of {TRIPS}: {t:.3} µs (target <= 0.6 µs); \
         runs: {}",
        rtt.len(),
        rtt.iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Runs ring-bench and returns the number after `key` in its output.
fn figure(bench: &std::path::Path, args: &[&str], key: &str) -> Result<f64> {
    let out = Command::new(bench).args(args).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "ring-bench {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    text.split_once(key)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("ring-bench {args:?} printed {text:?}"))
}
