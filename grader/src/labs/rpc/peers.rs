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

/// One call of jayson's TCP client, `add(1, 2)`, to the port given: prints `ready` when
/// the answer is 3.
const JAYSON_PROBE: &str = "const c = require('jayson').client.tcp({ host: '127.0.0.1', \
     port: Number(process.argv[1]) });\
     c.request('add', [1, 2], (err, r) => { if (err || !r || r.result !== 3) { \
     console.log('the call failed: ' + (err ? err.message : JSON.stringify(r))); \
     process.exit(1); } console.log('ready'); });";

/// The grader's own JSON-RPC responder on a free port: answers every request line with
/// `"result": 3` and the request's id, on a thread, until dropped.
struct Responder {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Responder {
    fn start() -> Result<Responder, Fail> {
        use std::io::{BufRead, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = std::io::BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let id = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v.get("id").cloned())
                        .unwrap_or(serde_json::Value::Null);
                    let reply = serde_json::json!({"jsonrpc": "2.0", "result": 3, "id": id});
                    if (&conn).write_all(format!("{reply}\n").as_bytes()).is_err() {
                        break;
                    }
                    line.clear();
                }
            }
        });
        Ok(Responder { port, stop })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept so that the thread sees the flag and ends.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// How long a script may run: its cases take well under a second against a right server.
const SCRIPT_LIMIT: Duration = Duration::from_secs(20);

/// jayson's TCP client: calls by position and by name, errors, a batch, a notification.
pub(super) fn jayson(ctx: &mut Ctx) -> CheckResult {
    let node = ctx.tool("node", "nodejs")?;
    let modules = ctx.npm_module("jayson")?;
    // Before the server starts: this node and this jayson make a call against the grader's
    // own one-line responder (a node older than the package supports fails here), or the
    // item is not gradable here.
    let responder = Responder::start()?;
    let probe = ctx
        .peer(&node)
        .args(["-e", JAYSON_PROBE, &responder.port.to_string()])
        .env("NODE_PATH", &modules);
    ctx.peer_works("node with the npm package jayson", &probe)?;
    drop(responder);
    let script = ctx.peer_file("jayson.js", JAYSON_JS)?;
    let server = start_server(ctx)?;
    let spec = ctx
        .peer(&node)
        .args([script.as_os_str(), server.port.to_string().as_ref()])
        .env("NODE_PATH", &modules);
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
    let script = ctx.peer_file("client.py", CLIENT_PY)?;
    // Before the server starts: this Python must be able to compile the script.
    let probe = ctx
        .peer(&python)
        .args(["-m".as_ref(), "py_compile".as_ref(), script.as_os_str()]);
    ctx.peer_works("the grader's Python client", &probe)?;
    let server = start_server(ctx)?;
    let spec = ctx
        .peer(&python)
        .args([script.as_os_str(), server.port.to_string().as_ref()]);
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
    // A server that answers nothing fails here at once, not at the client's deadline.
    let mut conn = super::harness::LineConn::open(server.port)?;
    let call = super::harness::request("add", serde_json::json!([1, 2]), 1.into());
    conn.send(call.as_bytes())?;
    if let reply @ (super::harness::Reply::Silence | super::harness::Reply::Closed) =
        conn.recv(Duration::from_secs(2))
    {
        fail!(
            "{who} was not run: the plain call {call} got {} within 2 s. Make the server items \
             pass first",
            reply.describe()
        );
    }
    drop(conn);
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
    // The client broke without a verdict of its own. It loaded and ran before the server
    // started (`peer_works`), so what the server sent or did may have broken it.
    fail!(
        "{who} ended with status {} without finishing its calls; it said: {} {}. It runs \
         well against a right server, so look at what your server sent it last{}",
        out.status(),
        crate::run::clip(said, 400),
        crate::run::clip(out.stderr_str().trim(), 800),
        match server.proc.try_ending() {
            Some(ending) => format!(
                ". rpc-server {} meanwhile; {}",
                ending.describe(),
                stderr_of(&server.proc)
            ),
            None => String::new(),
        }
    )
}
