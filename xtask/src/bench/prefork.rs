//! The prefork reference solution against nginx: `wrk -t2 -c64 -d10s` on a 4 KiB file,
//! 2 workers each, the same files, three interleaved runs of each, compared by their
//! medians (target: at least 0.5x nginx's requests per second).
//!
//! The solution is staged as the grader stages it and built with `--release`; nginx is
//! Debian's, started with a generated configuration in a temporary folder (daemon off,
//! master process on, access log off, every file it writes in that folder).

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use grader::labfile::Tree;
use grader::measure::median;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

const WORKERS: usize = 2;
const RUNS: usize = 3;
const SECS: u32 = 10;

/// A server started in a process group of its own. Dropped: SIGTERM to its master (both
/// servers then stop their workers), at most 6 s to exit, then SIGKILL to the whole group,
/// so that no worker outlives the bench.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.0.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(6);
        while Instant::now() < end && matches!(self.0.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > end {
            bail!("nothing listens on 127.0.0.1:{port} after 5 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Requests per second of one wrk run.
fn wrk(url: &str) -> Result<f64> {
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{SECS}s"), url])
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    grader::measure::parse_wrk(&text)
        .map(|f| f.per_sec)
        .with_context(|| format!("no Requests/sec in wrk's report: {text}"))
}

pub fn run(tree: &Tree) -> Result<()> {
    let work = tempfile::tempdir()?;
    let exe = super::release_bin(tree, "prefork", "prefork-httpd", work.path())?;

    let root = work.path().join("www");
    std::fs::create_dir_all(&root)?;
    let file: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("4k.bin"), file)?;

    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let ours = Guard(
        Command::new(&exe)
            .args(["--port", &port.to_string(), "--root"])
            .arg(&root)
            .args(["--workers", &WORKERS.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("cannot start prefork-httpd")?,
    );
    wait_port(port)?;
    let ngx_dir = work.path().join("nginx");
    std::fs::create_dir_all(&ngx_dir)?;
    let ngx_port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::write(
        ngx_dir.join("nginx.conf"),
        grader::measure::nginx_conf(&ngx_dir, &root, ngx_port, WORKERS),
    )?;
    let nginx = Guard(
        Command::new("nginx")
            .arg("-e")
            .arg(ngx_dir.join("error.log"))
            .arg("-p")
            .arg(&ngx_dir)
            .arg("-c")
            .arg(ngx_dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("cannot start nginx (apt-get install nginx)")?,
    );
    wait_port(ngx_port)?;

    let (a, b) = (
        format!("http://127.0.0.1:{port}/4k.bin"),
        format!("http://127.0.0.1:{ngx_port}/4k.bin"),
    );
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        x.push(wrk(&a)?);
        y.push(wrk(&b)?);
    }
    drop((ours, nginx));
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (mx, my) = (median(&x), median(&y));
    println!(
        "prefork-httpd (release) against nginx, `wrk -t2 -c64 -d{SECS}s` on a 4 KiB file, \
         {WORKERS} workers each, median of {RUNS} interleaved runs: prefork-httpd {mx:.0} req/s \
         ({}), nginx {my:.0} req/s ({}), ratio {:.3} (target >= 0.5)",
        list(&x),
        list(&y),
        mx / my
    );
    Ok(())
}
