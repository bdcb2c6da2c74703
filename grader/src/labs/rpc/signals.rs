//! `signals`: SIGINT and SIGTERM, each sent, to an `rpc-server` that is running a call for an
//! `rpc-call` (the student's RpcClient). The server ends at once and gives back what it held:
//! a new server listens on the same port, and the waiting client sees its connection end at
//! once (it does not wait for its 10 s timeout), finds no server and exits 1 with one line.
//! Then SIGTERM to an `rpc-call` in the middle of a call: it ends, and the server, once the
//! call is done, gives back the connection's thread and descriptor and serves on.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;

use super::PROMPT;
use super::harness::{
    LineConn, Reply, Server, ended, fds, request, sleeping_thread, start_server, start_spec,
    threads,
};
use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::sandbox::Proc;
use crate::{ensure, fail};

/// How long a signalled server may take to end, and a client to see it and exit.
const SERVER_ENDS: Duration = Duration::from_secs(1);
const CLIENT_SEES: Duration = Duration::from_secs(1);
/// The retries of the waiting client: the default's, each tried at once once no server is left.
const RETRIES: u32 = 3;
/// The client's timeout per attempt: far longer than [`CLIENT_SEES`].
const CLIENT_TIMEOUT_MS: u64 = 10_000;
/// How long to wait for a thread of the server to be seen sleeping (the call running).
const RUNNING: Duration = Duration::from_secs(1);

pub(super) fn signals(ctx: &mut Ctx) -> CheckResult {
    // A grader started in the background by a shell ignores SIGINT (and nohup SIGHUP), and an
    // ignored disposition survives fork and exec: the programs this check starts must get
    // the default ones, as a program started from a terminal does.
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: setting a default disposition; this process is the check's alone.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let server = start_server(ctx)?;
    let port = server.port;
    server_ends(ctx, server, Signal::SIGINT)?;
    let server = same_port(ctx, port, "SIGINT")?;
    server_ends(ctx, server, Signal::SIGTERM)?;
    let server = same_port(ctx, port, "SIGTERM")?;
    client_killed_mid_call(ctx, &server)
}

/// A new `rpc-server --port PORT` once the last one on that port ended by `sig`.
fn same_port(ctx: &mut Ctx, port: u16, sig: &str) -> Result<Server, Fail> {
    let spec = ctx.bin("rpc-server").args(["--port", &port.to_string()]);
    start_spec(ctx, &spec).map_err(|e| {
        Fail(format!(
            "after the rpc-server on port {port} ended by {sig}, a new `rpc-server --port {port}` \
             could not listen there: {}",
            e.0
        ))
    })
}

/// `rpc-call ... sleep [8000]` running on `server`; `sig` to the server: it ends within 1 s,
/// and the client, with 3 retries, exits 1 with one line within 1 s of the server's end.
fn server_ends(ctx: &mut Ctx, mut server: Server, sig: Signal) -> CheckResult {
    let args = [
        "--port".to_owned(),
        server.port.to_string(),
        "--timeout-ms".into(),
        CLIENT_TIMEOUT_MS.to_string(),
        "--retries".into(),
        RETRIES.to_string(),
        "sleep".into(),
        "[8000]".into(),
    ];
    let command = format!("rpc-call {}", args.join(" "));
    let spec = ctx.bin("rpc-call").args(&args);
    let mut client = ctx.spawn(&spec)?;
    // The call is running once a thread of the server sleeps; a server that sleeps some other
    // way is given a second.
    poll_until(Instant::now() + RUNNING, || {
        sleeping_thread(server.pid()) || ended(client.pid)
    });
    if ended(client.pid) {
        let out = ctx.finish(&format!("`{command}`"), &mut client, Duration::ZERO)?;
        fail!(
            "`{command}` was to wait for its call (rpc-server sleeping 8 s); it {} at once: {:?}",
            out.ending.describe(),
            crate::run::clip(out.stderr_str().trim(), 300)
        );
    }
    let name = sig.as_str();
    let sent = Instant::now();
    server.proc.signal(sig);
    if server.proc.wait_until(sent + SERVER_ENDS).is_none() {
        fail!(
            "rpc-server was sent {name} while it ran a call; it did not end within {} s. On \
             {name} a server ends at once",
            SERVER_ENDS.as_secs()
        );
    }
    // From the server's end: what the client does after it is the client's own time.
    let gone = Instant::now();
    let seen = client.wait_until(gone + CLIENT_SEES);
    let Some(ending) = seen else {
        fail!(
            "`{command}` was waiting for its call when rpc-server was killed by {name}; rpc-call \
             did not exit within {:.0} s of the server's end (its timeout is {} s, and no server \
             is left to retry with). The connection ended at once: a read that returns 0 bytes \
             (end of stream), or fails with a reset, means the server closed it. Drop the \
             connection and retry at once, each of its {RETRIES} retries too (a refused \
             connection is seen at once; no pause between attempts), so the call fails and \
             rpc-call exits 1; do not wait for the timeout",
            CLIENT_SEES.as_secs_f64(),
            CLIENT_TIMEOUT_MS / 1000
        );
    };
    let out = ctx.finish(&format!("`{command}`"), &mut client, Duration::ZERO)?;
    let err = out.stderr_str();
    let lines: Vec<&str> = err.lines().collect();
    ensure!(
        ending.bash_status() == 1 && lines.len() == 1 && lines[0].starts_with("rpc-call: sleep: "),
        "`{command}` was waiting for its call when rpc-server was killed by {name}; rpc-call \
         {} with {} line(s) on stderr: {:?}. With no server left, the call fails: exit 1 with \
         one line `rpc-call: sleep: ...`",
        ending.describe(),
        lines.len(),
        crate::run::clip(err.trim(), 400)
    );
    Ok(())
}

/// SIGTERM to `rpc-call` while its `sleep [600]` runs on the server: it ends within 1 s; the
/// server then gives back the connection and serves on.
fn client_killed_mid_call(ctx: &mut Ctx, server: &Server) -> CheckResult {
    let pid = server.pid();
    let idle = threads(pid).unwrap_or(1);
    let mut warm = LineConn::open(server.port)?;
    let reply = warm.ask(request("sleep", json!([0]), json!(0)).as_bytes())?;
    ensure!(
        matches!(&reply, Reply::Json(v) if v["id"] == 0),
        "sleep [0] got {}",
        reply.describe()
    );
    drop(warm);
    poll_until(Instant::now() + PROMPT, || {
        threads(pid).is_some_and(|t| t <= idle)
    });
    let (fd0, th0) = (fds(pid).unwrap_or(0), threads(pid).unwrap_or(0));
    let spec = ctx.bin("rpc-call").args([
        "--port",
        &server.port.to_string(),
        "--timeout-ms",
        &CLIENT_TIMEOUT_MS.to_string(),
        "sleep",
        "[600]",
    ]);
    let mut client: Proc = ctx.spawn(&spec)?;
    poll_until(Instant::now() + RUNNING, || {
        sleeping_thread(pid) || ended(client.pid)
    });
    if ended(client.pid) {
        let out = ctx.finish("`rpc-call sleep [600]`", &mut client, Duration::ZERO)?;
        fail!(
            "`rpc-call sleep [600]` was to wait for its call; it {} at once: {:?}",
            out.ending.describe(),
            crate::run::clip(out.stderr_str().trim(), 300)
        );
    }
    let sent = Instant::now();
    client.signal(Signal::SIGTERM);
    ensure!(
        client.wait_until(sent + SERVER_ENDS).is_some(),
        "rpc-call was sent SIGTERM while it waited for its call; it did not end within {} s: \
         on SIGTERM a client ends at once",
        SERVER_ENDS.as_secs()
    );
    let back = poll_until(Instant::now() + PROMPT, || {
        fds(pid).is_some_and(|n| n <= fd0) && threads(pid).is_some_and(|n| n <= th0)
    });
    ensure!(
        back,
        "an rpc-call was killed by SIGTERM while rpc-server ran its sleep(600); within {} s the \
         server did not give back its connection: it held {} descriptors and {} threads (before \
         the call: {fd0} and {th0}): \
         when a call's client has gone, the connection's thread must end (the reply's write or \
         the next read fails) and its socket be closed",
        PROMPT.as_secs(),
        fds(pid).unwrap_or(0),
        threads(pid).unwrap_or(0)
    );
    let reply =
        LineConn::open(server.port)?.ask(request("sleep", json!([0]), json!(1)).as_bytes())?;
    ensure!(
        matches!(&reply, Reply::Json(v) if v["id"] == 1),
        "after a client was killed by SIGTERM in the middle of a call, a new client's sleep [0] \
         got {}: the server must serve on",
        reply.describe()
    );
    Ok(())
}
