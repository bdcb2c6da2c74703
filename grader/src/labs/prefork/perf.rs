//! The performance item: `prefork-httpd` against nginx (Debian's), which the grader starts
//! with a generated configuration on a free port: the same files, the same number of
//! workers, access log off, everything it writes inside the check's scratch folder. The
//! same wrk load runs against each, alternating, twice; each side's best run counts, so
//! that a burst of other work on the machine costs neither side.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::harness::{FILE, finish_wrk, spawn_wrk, start, www};
use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::fail;
use crate::sandbox::Proc;

/// Workers on both sides.
const WORKERS: usize = 2;
/// Seconds of one wrk run.
const SECS: u32 = 1;
/// Connections of wrk.
const CONNS: u32 = 64;
/// The ratio the item needs.
const NEEDED: f64 = 0.2;

/// A port that was free a moment ago.
fn free_port() -> Result<u16, Fail> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts nginx, a peer, and waits until it accepts connections: not gradable here if it
/// does not (this runs before the student's server starts).
fn start_nginx(ctx: &mut Ctx, nginx: &Path, root: &Path) -> Result<(Proc, u16), Fail> {
    let dir = ctx.peer_folder("nginx")?;
    let port = free_port()?;
    let conf = ctx.peer_file(
        "nginx/nginx.conf",
        crate::measure::nginx_conf(&dir, root, port, WORKERS),
    )?;
    let spec = ctx.peer(nginx).args([
        "-e".as_ref(),
        dir.join("error.log").as_os_str(),
        "-p".as_ref(),
        dir.as_os_str(),
        "-c".as_ref(),
        conf.as_os_str(),
    ]);
    let mut p = ctx.spawn(&spec)?;
    let up = poll_until(Instant::now() + Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        let _ = p.kill();
        return Err(ctx.not_gradable_here(format!(
            "the grader's nginx did not start (its error log: {:?})",
            crate::run::clip(&log, 400)
        )));
    }
    Ok((p, port))
}

/// Requests per second of `prefork-httpd` against nginx, same load: at least 0.2x.
pub(super) fn vs_nginx(ctx: &mut Ctx) -> CheckResult {
    let wrk = ctx.tool("wrk", "wrk")?;
    let nginx = ctx.tool("nginx", "nginx")?;
    let root = www(ctx)?;
    // The baseline first: a failure of nginx's is not gradable only before the student's
    // server runs.
    let (mut ngx, ngx_port) = start_nginx(ctx, &nginx, &root)?;
    let server = start(ctx, &root, WORKERS)?;
    super::harness::serves(&server, "the comparison with nginx")?;
    // The comparison means something only for a server built as the contract says.
    if !super::harness::keeps_alive(server.port)? {
        fail!(
            "throughput is not compared: two requests on one connection were not both \
             answered, so wrk would measure connection setup instead of serving. Honour \
             keep-alive first (see the keep-alive item)"
        );
    }
    if !super::harness::second_client_served(server.port)?.0 {
        fail!(
            "throughput is not compared: with one client holding a connection, a second \
             client was not served, so the server does not serve in parallel. Let every \
             worker accept (see the workers-accept item)"
        );
    }
    let ours_url = server.url(FILE);
    let ngx_url = format!("http://127.0.0.1:{ngx_port}{FILE}");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let mut p = spawn_wrk(ctx, &wrk, CONNS, SECS, &ours_url)?;
        ours.push(finish_wrk(ctx, &mut p, SECS)?);
        // nginx's round with every process of the submission stopped: none of them can
        // take the CPU from it.
        let frozen = ctx.freeze_student();
        let mut p = spawn_wrk(ctx, &wrk, CONNS, SECS, &ngx_url)?;
        theirs.push(finish_wrk(ctx, &mut p, SECS)?);
        drop(frozen);
    }
    let _ = ngx.kill();
    let best = |v: &[super::harness::WrkFigures]| v.iter().map(|f| f.per_sec).fold(0.0, f64::max);
    let (o, n) = (best(&ours), best(&theirs));
    if n <= 0.0 {
        return Err(ctx.not_gradable_here("the grader's nginx served nothing under wrk"));
    }
    let ratio = o / n;
    let failed: u64 = ours.iter().map(|f| f.failed()).sum();
    let figures = format!(
        "prefork-httpd {o:.0} requests/s, nginx {n:.0} requests/s (best of 2 alternating runs \
         of `wrk -t2 -c{CONNS} -d{SECS}s` on a 4 KiB file, {WORKERS} workers each), ratio \
         {ratio:.2} (at least {NEEDED:.2} needed); rounds: {} against {}",
        ours.iter()
            .map(|f| format!("{:.0}", f.per_sec))
            .collect::<Vec<_>>()
            .join(", "),
        theirs
            .iter()
            .map(|f| format!("{:.0}", f.per_sec))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if ratio < NEEDED || failed > 0 {
        fail!(
            "throughput: {figures}{}. Serve each request with few system calls: the head and \
             the file with one send (MSG_MORE) and sendfile, no reading the file into memory, \
             keep-alive honoured, and workers that accept in parallel",
            if failed > 0 {
                format!("; {failed} of prefork-httpd's requests failed")
            } else {
                String::new()
            }
        );
    }
    ctx.note(figures);
    Ok(())
}
