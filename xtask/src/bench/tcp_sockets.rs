//! The tcp-sockets figure of `cargo xtask bench`: `redis-benchmark -t set,get -c 50` against
//! the reference `kv-server` (release build) and against Debian's `redis-server`
//! (persistence off), with pipelining (`-P 16`) and without (`-P 1`), in interleaved runs.
//!
//! Both servers are pinned to CPU 0 and the load generator to CPU 1 (`taskset`), the same
//! way for both; each figure is the median of the runs, and the ratio is the reference's
//! median over redis-server's. The targets: at least 0.7x with `-P 16` and 1.0x with
//! `-P 1`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use grader::labfile::Tree;

/// Builds the reference `kv-server` in release mode, into `target/bench/tcp-sockets`.
fn build_reference(tree: &Tree, work: &Path) -> Result<PathBuf> {
    super::release_bin(tree, "tcp-sockets", "kv-server", work)
}

/// A server in its own process group, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn pinned(cpu: &str, program: &Path) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", cpu]).arg(program);
    cmd
}

fn start_kv(exe: &Path) -> Result<Server> {
    let mut child = pinned("0", exe)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("kv-server printed {line:?}"))?;
    Ok(Server { child, port })
}

fn start_redis(exe: &Path, dir: &Path) -> Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = pinned("0", exe)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--daemonize", "no", "--logfile", ""])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let server = Server { child, port };
    let end = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(
            Instant::now() < end,
            "redis-server did not listen within 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(server)
}

/// One run: SET and GET req/s.
fn benchmark(exe: &Path, port: u16, pipeline: u32, requests: u64) -> Result<(f64, f64)> {
    let out = pinned("1", exe)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "set,get",
            "-c",
            "50",
        ])
        .args([
            "-P",
            &pipeline.to_string(),
            "-n",
            &requests.to_string(),
            "--csv",
        ])
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = |test: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("\"{test}\"")))
            .and_then(|l| l.split(',').nth(1))
            .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
    };
    match (out.status.success(), rate("SET"), rate("GET")) {
        (true, Some(s), Some(g)) => Ok((s, g)),
        _ => bail!("redis-benchmark -p {port} -P {pipeline} failed: {text}"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn which(program: &str) -> Option<PathBuf> {
    grader::check::find_tool(program)
}

/// Measures and prints the figures; `runs` interleaved runs of each server and load.
pub fn run(tree: &Tree, runs: usize, requests: u64) -> Result<()> {
    let (Some(bench), Some(redis), Some(_)) = (
        which("redis-benchmark"),
        which("redis-server"),
        which("taskset"),
    ) else {
        println!(
            "tcp-sockets: skipped, needs redis-benchmark (redis-tools), redis-server and taskset"
        );
        return Ok(());
    };
    let work = tempfile::tempdir()?;
    let exe = build_reference(tree, work.path())?;
    let kv = start_kv(&exe)?;
    let rs = start_redis(&redis, work.path())?;
    println!(
        "kv-server (reference, release) against redis-server, both on CPU 0, redis-benchmark \
         -t set,get -c 50 on CPU 1, median of {runs} interleaved runs:"
    );
    for (pipeline, n) in [(16u32, requests), (1, (requests / 10).max(10_000))] {
        // Warm-up: first-run effects, and the keys exist for GET.
        benchmark(&bench, kv.port, pipeline, n / 10)?;
        benchmark(&bench, rs.port, pipeline, n / 10)?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ours.push(benchmark(&bench, kv.port, pipeline, n)?);
            theirs.push(benchmark(&bench, rs.port, pipeline, n)?);
        }
        for (i, test) in ["SET", "GET"].iter().enumerate() {
            let pick =
                |v: &[(f64, f64)]| v.iter().map(|r| if i == 0 { r.0 } else { r.1 }).collect();
            let (k, r) = (median(pick(&ours)), median(pick(&theirs)));
            println!(
                "  -P {pipeline:<2} -n {n:<8} {test}: kv-server {k:>10.0} req/s, redis-server \
                 {r:>10.0} req/s, ratio {:.3} (target {})",
                k / r,
                if pipeline == 16 { "0.7" } else { "1.0" }
            );
        }
    }
    // The reference must still stop cleanly: SIGTERM, exit 0.
    let mut kv = kv;
    kill(Pid::from_raw(kv.child.id() as i32), Signal::SIGTERM)?;
    let status = kv.child.wait()?;
    ensure!(
        status.success(),
        "kv-server ended with {status} after SIGTERM"
    );
    Ok(())
}
