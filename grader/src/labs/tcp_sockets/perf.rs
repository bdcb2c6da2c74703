//! The performance item: `redis-benchmark` against the student's `kv-server` and against
//! Debian's `redis-server`, started here on another free port with persistence off, the
//! same load, alternating rounds, in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::fail;
use crate::sandbox::Proc;

use super::harness::{self, Raw};

/// Rounds of each server, alternating.
const ROUNDS: usize = 3;
/// Requests of each test of one round.
const REQUESTS: &str = "50000";
/// The ratio needed.
const NEEDED: f64 = 0.25;

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> Result<u16, Fail> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Starts `redis-server`, a peer, on a free port with persistence off: not gradable here if
/// it does not answer (this runs before the student's server starts).
fn redis_server(ctx: &mut Ctx, exe: &Path) -> Result<(Proc, u16), Fail> {
    let port = free_port()?.to_string();
    let dir = ctx.peer_folder("redis")?;
    let spec = ctx.peer(exe).args([
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.to_string_lossy(),
        "--daemonize",
        "no",
        "--protected-mode",
        "no",
        "--logfile",
        "",
    ]);
    let proc = ctx.spawn(&spec)?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let up = poll_until(Instant::now() + Duration::from_secs(5), || {
        Raw::connect(addr).is_ok_and(|mut c| {
            c.send(&harness::req(&[b"PING"])).is_ok() && c.read_n(7) == b"+PONG\r\n"
        })
    });
    if !up {
        return Err(ctx.not_gradable_here(format!(
            "the grader's baseline `redis-server --port {port}` did not answer PING within 5 s; \
             it said {:?}",
            crate::run::clip(String::from_utf8_lossy(&proc.stdout().0).trim(), 400)
        )));
    }
    Ok((proc, port.parse()?))
}

/// One `redis-benchmark -t set,get -P 16 -c 50` round: the mean of SET and GET, req/s.
fn bench(ctx: &mut Ctx, exe: &Path, port: u16, who: &str) -> Result<f64, Fail> {
    let port = port.to_string();
    let spec = ctx.peer(exe).args([
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "set,get",
        "-P",
        "16",
        "-c",
        "50",
        "-n",
        REQUESTS,
        "--csv",
    ]);
    let out = ctx.run(
        &format!("redis-benchmark against {who}"),
        &spec,
        Duration::from_secs(10),
    )?;
    let rates: Vec<f64> = out
        .stdout_str()
        .lines()
        .filter(|l| l.starts_with("\"SET\"") || l.starts_with("\"GET\""))
        .filter_map(|l| l.split(',').nth(1)?.trim_matches('"').parse().ok())
        .collect();
    if out.status() != 0 || rates.len() != 2 {
        fail!(
            "`redis-benchmark -t set,get -P 16 -c 50 -n {REQUESTS}` against {who} {} and \
             printed {:?}; it said {:?}",
            out.ending.describe(),
            crate::run::clip(out.stdout_str().trim(), 400),
            crate::run::clip(out.stderr_str().trim(), 400)
        );
    }
    Ok((rates[0] + rates[1]) / 2.0)
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{:.0}", x))
        .collect::<Vec<_>>()
        .join(", ")
}

/// kv-server at least 0.25x redis-server under the same redis-benchmark load.
pub(in crate::labs) fn throughput(ctx: &mut Ctx) -> CheckResult {
    let bench_exe = ctx.tool("redis-benchmark", "redis-tools")?;
    let server_exe = ctx.tool("redis-server", "redis-server")?;
    // The baseline first: a failure of redis-server's is not gradable only before the
    // student's server runs.
    let (_redis, redis_port) = redis_server(ctx, &server_exe)?;
    let kv = harness::start(ctx, &[])?;
    harness::answers_ping(&kv, "speed was not measured")?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(bench(ctx, &bench_exe, kv.addr.port(), "kv-server")?);
        // redis-server's round with every process of the submission stopped: none of them
        // can take the CPU from it.
        let frozen = ctx.freeze_student();
        theirs.push(bench(ctx, &bench_exe, redis_port, "redis-server")?);
        drop(frozen);
    }
    let (k, r) = (
        crate::measure::median(&ours),
        crate::measure::median(&theirs),
    );
    let ratio = k / r;
    let figures = format!(
        "`redis-benchmark -t set,get -P 16 -c 50 -n {REQUESTS}`, mean of SET and GET, median \
         of {ROUNDS} alternating rounds: kv-server {k:.0} req/s ({}), redis-server {r:.0} \
         req/s ({}), ratio {ratio:.2} (at least {NEEDED:.2} needed)",
        list(&ours),
        list(&theirs)
    );
    if ratio < NEEDED {
        fail!(
            "{figures}. Answer every whole request of a read before writing, write the replies \
             of a read in one write, and allocate nothing per request where you can avoid it \
             (parse into ranges of the connection's buffer, append replies to one output buffer)"
        );
    }
    ctx.note(figures);
    Ok(())
}
