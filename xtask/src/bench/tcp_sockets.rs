//! The tcp-sockets figure of `cargo xtask bench`: `redis-benchmark -t set,get -c 50` against
//! the reference `kv-server` (release build) and against Debian's `redis-server`
//! (persistence off), with pipelining (`-P 16`) and without (`-P 1`), in interleaved runs.
//!
//! Both servers are pinned to CPU 0 and the load generator to CPU 1 (`taskset`), the same
//! way for both; each figure is the median of the runs, and the ratio is the reference's
//! median over redis-server's. The targets: at least 0.7x with `-P 16` and 1.0x with
//! `-P 1`.
//!
//! Each round also prints the server's CPU time per request and how busy the load generator
//! kept its CPU. Without pipelining, `redis-benchmark` saturates its CPU against either
//! server (98% measured here), so req/s is the load generator's figure and ties within the
//! noise. A last `-P 1` round therefore holds both servers to half a CPU (a cpu cgroup, 5 ms
//! in every 10 ms, the same for both): there the servers set the pace, and req/s compares
//! them.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use grader::labfile::Tree;
use grader::measure::median;

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

/// A cpu cgroup that lets its processes use half of one CPU (5 ms in every 10 ms); removed
/// when dropped.
struct HalfCpu {
    dir: PathBuf,
}

impl HalfCpu {
    fn new() -> Result<HalfCpu> {
        let name = format!("ipc-labs-bench-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (dir, files): (PathBuf, &[(&str, &str)]) = if v2.exists() {
            let root = Path::new("/sys/fs/cgroup");
            std::fs::write(root.join("cgroup.subtree_control"), "+cpu")
                .context("enabling the cpu controller")?;
            (root.join(name), &[("cpu.max", "5000 10000")])
        } else {
            (
                Path::new("/sys/fs/cgroup/cpu").join(name),
                &[("cpu.cfs_period_us", "10000"), ("cpu.cfs_quota_us", "5000")],
            )
        };
        std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let half = HalfCpu { dir };
        for (file, value) in files {
            std::fs::write(half.dir.join(file), value)
                .with_context(|| format!("{file} = {value}"))?;
        }
        Ok(half)
    }

    fn hold(&self, pid: u32) -> Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving {pid} into {}", self.dir.display()))
    }
}

impl Drop for HalfCpu {
    /// Gives its processes back to the parent cgroup, then removes it.
    fn drop(&mut self) {
        if let (Ok(procs), Some(parent)) = (
            std::fs::read_to_string(self.dir.join("cgroup.procs")),
            self.dir.parent(),
        ) {
            for pid in procs.lines() {
                let _ = std::fs::write(parent.join("cgroup.procs"), pid);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// One run of `redis-benchmark -t set,get` (`requests` of each).
struct Sample {
    /// SET and GET, requests per second.
    set: f64,
    get: f64,
    /// CPU seconds the server used during the run, per request.
    server_cpu: f64,
    /// The share of its CPU the load generator kept busy over the run.
    bench_busy: f64,
}

/// CPU seconds (user + system) process `pid` has used so far, from /proc/PID/stat.
fn cpu_secs(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &text[text.rfind(')').context("/proc/PID/stat has no comm")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime 14 and stime 15 (proc(5)).
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100);
    Ok(ticks as f64 / hz as f64)
}

/// One run against `server`.
fn benchmark(exe: &Path, server: &Server, pipeline: u32, requests: u64) -> Result<Sample> {
    let port = server.port;
    let pid = server.child.id();
    let (cpu0, bench0, t0) = (cpu_secs(pid)?, super::children_cpu()?, Instant::now());
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
    let wall = t0.elapsed().as_secs_f64();
    let server_cpu = (cpu_secs(pid)? - cpu0) / (2 * requests) as f64;
    let bench_busy = (super::children_cpu()? - bench0).as_secs_f64() / wall;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = |test: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("\"{test}\"")))
            .and_then(|l| l.split(',').nth(1))
            .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
    };
    match (out.status.success(), rate("SET"), rate("GET")) {
        (true, Some(set), Some(get)) => Ok(Sample {
            set,
            get,
            server_cpu,
            bench_busy,
        }),
        _ => bail!("redis-benchmark -p {port} -P {pipeline} failed: {text}"),
    }
}

/// `runs` interleaved runs against each server; prints the medians and their ratio.
fn round(
    bench: &Path,
    kv: &Server,
    rs: &Server,
    runs: usize,
    pipeline: u32,
    n: u64,
    how: &str,
) -> Result<()> {
    // Warm-up: first-run effects, and the keys exist for GET.
    benchmark(bench, kv, pipeline, n / 10)?;
    benchmark(bench, rs, pipeline, n / 10)?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(benchmark(bench, kv, pipeline, n)?);
        theirs.push(benchmark(bench, rs, pipeline, n)?);
    }
    let target = if pipeline == 16 { "0.7" } else { "1.0" };
    for (test, pick) in [
        ("SET", (|r: &Sample| r.set) as fn(&Sample) -> f64),
        ("GET", |r: &Sample| r.get),
    ] {
        let (k, r) = (
            median(&ours.iter().map(pick).collect::<Vec<_>>()),
            median(&theirs.iter().map(pick).collect::<Vec<_>>()),
        );
        println!(
            "  -P {pipeline:<2} -n {n:<8} {test}{how}: kv-server {k:>10.0} req/s, redis-server \
             {r:>10.0} req/s, ratio {:.3} (target {target})",
            k / r,
        );
    }
    // Throughput is set by whichever side runs out of CPU first. The server's CPU per
    // request says which server is cheaper even when the load generator is that side.
    let cpu = |v: &[Sample]| median(&v.iter().map(|r| r.server_cpu * 1e6).collect::<Vec<_>>());
    let busy = |v: &[Sample]| median(&v.iter().map(|r| r.bench_busy * 100.0).collect::<Vec<_>>());
    let (k, r) = (cpu(&ours), cpu(&theirs));
    println!(
        "  -P {pipeline:<2}{how} server CPU per request: kv-server {k:.2} us, redis-server {r:.2} \
         us (redis-server's over kv-server's: {:.3}); redis-benchmark kept its CPU {:.0}% \
         and {:.0}% busy",
        r / k,
        busy(&ours),
        busy(&theirs),
    );
    Ok(())
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
    let unpiped = (requests / 10).max(10_000);
    round(&bench, &kv, &rs, runs, 16, requests, "")?;
    round(&bench, &kv, &rs, runs, 1, unpiped, "")?;
    // Without pipelining, redis-benchmark runs out of CPU before either server does, so the
    // figure above is its own. Held to half a CPU, the servers set the pace instead.
    match HalfCpu::new() {
        Ok(half) => {
            half.hold(kv.child.id())?;
            half.hold(rs.child.id())?;
            round(
                &bench,
                &kv,
                &rs,
                runs,
                1,
                unpiped / 2,
                " (servers on half a CPU)",
            )?;
        }
        Err(e) => println!("  -P 1 on half a CPU: skipped, no cpu cgroup here ({e})"),
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
