//! Clients nobody in this course wrote: the npm package jayson's TCP client, and Python's
//! `json` and `socket`. Each runs a script of cases against a fresh server and prints `ok`,
//! or one line `FAIL: ...` that says what it sent, what came back and what it expected.

use std::time::Duration;

use super::harness::{start_server, stderr_of};
use crate::check::{CheckResult, Ctx, Fail};
use crate::fail;
use crate::sandbox::Spec;

/// The script of the `jayson` check.
const JAYSON_JS: &str = include_str!("jayson.js");
/// The script of the `python_client` check.
const CLIENT_PY: &str = include_str!("client.py");

/// How long a script may run: its cases take well under a second against a right server.
const SCRIPT_LIMIT: Duration = Duration::from_secs(20);

/// jayson's TCP client: calls by position and by name, errors, a batch, a notification.
pub(super) fn jayson(ctx: &mut Ctx) -> CheckResult {
    let node = ctx.tool("node", "nodejs")?;
    let modules = ctx.npm_module("jayson")?;
    let script = ctx.scratch.join("jayson.js");
    std::fs::write(&script, JAYSON_JS)?;
    let server = start_server(ctx)?;
    let mut spec = Spec::new(node.into_os_string(), &ctx.scratch)
        .args([script.as_os_str(), server.port.to_string().as_ref()])
        .env("NODE_PATH", &modules);
    spec.user = ctx.student;
    run_script(
        ctx,
        "jayson's TCP client (a connection per call, one JSON text per line)",
        spec,
        server,
    )
}

/// Python's json + socket: the same calls, then notifications and batches on one
/// connection, then a second connection.
pub(super) fn python_client(ctx: &mut Ctx) -> CheckResult {
    let python = ctx.tool("python3", "python3")?;
    let script = ctx.scratch.join("client.py");
    std::fs::write(&script, CLIENT_PY)?;
    let server = start_server(ctx)?;
    let mut spec = Spec::new(python.into_os_string(), &ctx.scratch)
        .args([script.as_os_str(), server.port.to_string().as_ref()]);
    spec.user = ctx.student;
    run_script(
        ctx,
        "a Python client (json and socket, one connection, one JSON text per line)",
        spec,
        server,
    )
}

fn run_script(
    ctx: &mut Ctx,
    who: &str,
    spec: Spec,
    mut server: super::harness::Server,
) -> CheckResult {
    let out = ctx.run(who, &spec, SCRIPT_LIMIT)?;
    let said = out.stdout_str();
    let said = said.trim();
    if out.status() == 0 && said == "ok" {
        return Ok(());
    }
    if let Some(why) = said.lines().find_map(|l| l.strip_prefix("FAIL: ")) {
        let mut msg = format!("{who}: {why}");
        if let Some(ending) = server.proc.try_ending() {
            msg.push_str(&format!(
                ". rpc-server {} meanwhile; {}",
                ending.describe(),
                stderr_of(&server.proc)
            ));
        }
        return Err(Fail(msg));
    }
    // The script itself broke (not the student's server): say so, with its words.
    fail!(
        "the grader's script for {who} ended with status {} without a verdict (a grader \
         problem; tell your course staff): {} {}",
        out.status(),
        crate::run::clip(said, 400),
        crate::run::clip(out.stderr_str().trim(), 800)
    )
}
