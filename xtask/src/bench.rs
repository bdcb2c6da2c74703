//! `cargo xtask bench`: speed targets, measured as ratios within one run on this machine.
//!
//! - `pipeline seq 1 5000000 '|' wc -l` against `bash -c 'seq 1 5000000 | wc -l'`,
//!   interleaved runs, medians and their ratio;
//! - wall time of grading the pipes reference solution with dependencies already built;
//! - requests per second of the fifos reference `fifo-server` (release) against a minimal C
//!   server of the same protocol, alternating rounds, medians and their ratio
//!   ([`fifos`]);
//! - the shm-ring reference solution against memcpy and a pipe ([`shm_ring`]);
//! - lines per second through the unix-sockets `uds-bus`, and UNIX-stream throughput of
//!   the reference against a C anchor ([`unix_sockets`]);
//! - calls per second of the rpc reference server, with and without the reply cache, against
//!   a line echo server ([`rpc`]);
//! - the tcp-sockets `kv-server` (release) against `redis-server` under `redis-benchmark`
//!   ([`tcp_sockets`]);
//! - the prefork `prefork-httpd` (release) against nginx under wrk ([`prefork`]);
//! - the time to grade a deadlocked submission of each lab, against 30 s ([`hangs`]).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use grader::labfile::Tree;
use grader::measure::median;

mod fifos;
mod hangs;
mod prefork;
mod rpc;
mod shm_ring;
mod tcp_sockets;
mod unix_sockets;

/// User + system CPU time of the children this process has reaped so far.
fn children_cpu() -> Result<Duration> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let d =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    Ok(d(usage.user_time()) + d(usage.system_time()))
}

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Bench {
    /// Runs of each command.
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Rounds of each fifos server, alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Client threads of the fifos load.
    #[arg(long, default_value_t = 32)]
    clients: u32,
    /// Requests per client thread of the fifos load.
    #[arg(long, default_value_t = 500)]
    requests: u32,
    /// Measure only this figure.
    #[arg(long, value_enum)]
    only: Option<Figure>,
    /// Another fifo-server to measure in the same rounds (an older build, a submission).
    #[arg(long, value_name = "PROGRAM")]
    also: Vec<std::path::PathBuf>,
}

/// The figures `cargo xtask bench` measures.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Figure {
    /// `pipeline` against bash.
    Pipes,
    /// Grading the pipes solution.
    Grading,
    /// The fifos `fifo-server` against a C server.
    Fifos,
    /// The shm-ring `Ring` against memcpy and a pipe.
    ShmRing,
    /// The unix-sockets `uds-bus` (lines/s) and UNIX-stream throughput against C.
    UnixSockets,
    /// The rpc `rpc-server` against a line echo server.
    Rpc,
    /// The tcp-sockets `kv-server` against redis-server.
    TcpSockets,
    /// prefork-httpd (release) against nginx under wrk.
    Prefork,
    /// Grading a deadlocked submission of each lab, against 30 s.
    Hangs,
}

impl Bench {
    pub fn run(self) -> Result<()> {
        let tree = Tree::locate(Some(&crate::root()))?;
        let wanted = |f: Figure| self.only.is_none_or(|o| o == f);
        if wanted(Figure::ShmRing) {
            shm_ring::run(&tree, self.runs.min(7))?;
        }
        if wanted(Figure::UnixSockets) {
            unix_sockets::run(&tree, self.runs.min(5))?;
        }
        if wanted(Figure::TcpSockets) {
            tcp_sockets::run(&tree, 5, 1_000_000)?;
        }
        if wanted(Figure::Prefork) {
            prefork::run(&tree)?;
        }
        if wanted(Figure::Pipes) {
            self.pipes(&tree)?;
        }
        if wanted(Figure::Grading) {
            grading(&tree)?;
        }
        if wanted(Figure::Fifos) {
            self.fifos(&tree)?;
        }
        if wanted(Figure::Rpc) {
            rpc::run(&tree, self.rounds)?;
        }
        if wanted(Figure::Hangs) {
            hangs::run(&tree)?;
        }
        Ok(())
    }

    fn pipes(&self, tree: &Tree) -> Result<()> {
        let lab = tree.lab("pipes")?;
        let work = tempfile::tempdir()?;
        let sub = grader::submission::load(&lab.solution)?;
        let staged = work.path().join("stage");
        std::fs::create_dir_all(&staged)?;
        grader::stage::stage(tree, &lab, &sub, &staged, false)?;
        let target = grader::grade::default_target_dir(tree);
        let out = work.path().join("out");
        let built = grader::build::build(
            &staged,
            "pipes",
            &target,
            &out,
            &|_| Ok(Vec::new()),
            &|_| true,
        )?;
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
            a.push(ms(ours()?));
            b.push(ms(bash()?));
        }
        let (ma, mb) = (median(&a), median(&b));
        println!(
            "seq 1 5000000 | wc -l, median of {} interleaved runs: pipeline {ma:.1} ms, bash {mb:.1} ms, ratio pipeline/bash {:.3}",
            self.runs,
            ma / mb
        );
        Ok(())
    }

    fn fifos(&self, tree: &Tree) -> Result<()> {
        let work = tempfile::tempdir()?;
        let rust = fifos::build_reference(tree, work.path())?;
        let Some(c) = fifos::build_c(tree)? else {
            println!("fifo-server against C: skipped, no `cc` on this machine");
            return Ok(());
        };
        let load = fifos::Load {
            clients: self.clients,
            requests: self.requests,
        };
        let mut servers = vec![
            ("Rust reference (release)", rust),
            ("C, same checks", c.same),
            ("C, FIFO check with fstat", c.fstat),
            ("C, no FIFO check", c.unchecked),
        ];
        servers.extend(self.also.iter().map(|p| ("--also", p.clone())));
        for (_, exe) in &servers {
            fifos::round(exe, load)?; // warm-up: page cache, first-run effects
        }
        let mut rounds = vec![Vec::new(); servers.len()];
        for _ in 0..self.rounds {
            for ((_, exe), r) in servers.iter().zip(&mut rounds) {
                r.push(fifos::round(exe, load)?);
            }
        }
        let medians: Vec<(f64, f64)> = rounds
            .iter()
            .map(|r| {
                let rate: Vec<f64> = r.iter().map(|r| r.rate).collect();
                let cpu: Vec<f64> = r.iter().map(|r| r.cpu_us).collect();
                (median(&rate), median(&cpu))
            })
            .collect();
        println!(
            "fifo-server DIR, {} client threads x {} requests, median of {} alternating rounds:",
            self.clients, self.requests, self.rounds
        );
        for ((label, exe), (rate, cpu)) in servers.iter().zip(&medians) {
            println!(
                "  {label:<26} {rate:>8.0} req/s  {cpu:>5.1} us server CPU/request  {}",
                exe.display()
            );
        }
        let ((rate_rust, cpu_rust), (rate_c, cpu_c)) = (medians[0], medians[1]);
        println!(
            "  ratio Rust/C (same checks): {:.3} in req/s (target >= 0.95); \
             C/Rust in server CPU per request: {:.3} (less sensitive to other load)",
            rate_rust / rate_c,
            cpu_c / cpu_rust
        );
        println!("  C built with: {}", c.command);
        Ok(())
    }
}

fn grading(tree: &Tree) -> Result<()> {
    let lab = tree.lab("pipes")?;
    let exe = crate::verify::build_grader(tree)?;
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

fn time(cmd: &mut Command) -> Result<Duration> {
    let t0 = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    let elapsed = t0.elapsed();
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(elapsed)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Stages the reference solution of lab `slug` as the grader does (the lab's template with
/// the solution's `src/` laid over it, so the binaries are the ones students are shown, with
/// the release profile of the lab's standalone manifest), builds its binaries in release mode
/// into `target/bench/<slug>` and returns the path of the binary `bin`.
pub(crate) fn release_bin(
    tree: &Tree,
    slug: &str,
    bin: &str,
    work: &std::path::Path,
) -> Result<std::path::PathBuf> {
    let lab = tree.lab(slug)?;
    let sub = grader::submission::load(&lab.solution)?;
    let staged = work.join(format!("{slug}-release"));
    std::fs::create_dir_all(&staged)?;
    grader::stage::stage(tree, &lab, &sub, &staged, false)?;
    let target = tree.root.join("target").join("bench").join(slug);
    let status = Command::new(grader::build::cargo())
        .args(["build", "--quiet", "--release", "--offline", "--bins"])
        .arg("--manifest-path")
        .arg(staged.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .with_context(|| format!("cannot run cargo to build the {slug} solution"))?;
    if !status.success() {
        bail!("building the {slug} solution in release mode failed: {status}");
    }
    Ok(target.join("release").join(bin))
}
