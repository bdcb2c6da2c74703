//! The shm-ring reference solution's speed targets, as ratios measured in one run:
//!
//! - throughput of `ring-bench --throughput` (two processes, 64 KiB chunks, the default
//!   256 KiB ring) against a single-threaded `memcpy` of the same chunk size into a buffer
//!   of the ring's size (at least 60%) and against `cat < file | cat > /dev/null` with the
//!   file in tmpfs (at least 5x);
//! - the median 64-byte round trip of `ring-bench --pingpong` (at most 0.6 µs).
//!
//! The solution is staged and built exactly as the grader builds it (dev profile, with the
//! lab's optimisation override), and the three throughput figures are taken in alternation,
//! `runs` rounds each, and compared by their medians.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use grader::labfile::Tree;

const BYTES: usize = 512 << 20;
const CHUNK: usize = 64 << 10;
const RING: usize = 256 << 10;
const TRIPS: usize = 20000;

pub fn run(tree: &Tree, runs: usize) -> Result<()> {
    let lab = tree.lab("shm-ring")?;
    let work = tempfile::tempdir()?;
    let sub = grader::submission::load(&lab.solution)?;
    let staged = work.path().join("stage");
    std::fs::create_dir_all(&staged)?;
    grader::stage::stage(tree, &lab, &sub, &staged, false)?;
    let target = tree.root.join("target").join("grader").join("shm-ring");
    let out = work.path().join("out");
    let built = grader::build::build(&staged, "shm-ring", &target, &out, &|| Ok(Vec::new()))?;
    let grader::build::Built::Ok(art) = built else {
        bail!("the shm-ring solution does not compile")
    };
    let bench = art
        .bins
        .get("ring-bench")
        .context("no ring-bench binary")?
        .clone();

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
        ring.push(figure(&bench, &["--throughput", &bytes], "throughput ")?);
        copy.push(memcpy_gbps());
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

/// A single-threaded memcpy of BYTES in CHUNK pieces from one buffer into a RING-sized one,
/// as the producer's copies into the ring; GB/s.
fn memcpy_gbps() -> f64 {
    let src = vec![0xA5u8; CHUNK];
    let mut dst = vec![0u8; RING];
    let t0 = Instant::now();
    let mut at = 0;
    for _ in 0..BYTES / CHUNK {
        dst[at..at + CHUNK].copy_from_slice(&src);
        at = (at + CHUNK) % RING;
    }
    std::hint::black_box(&dst);
    BYTES as f64 / t0.elapsed().as_secs_f64() / 1e9
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
