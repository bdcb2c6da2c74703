//! Real clients nobody here wrote: Debian's `redis-cli` (every command, `-r`, `--pipe`),
//! `redis-benchmark` (pipelined, 50 clients), and a Python client speaking raw RESP with
//! every request cut at every byte (`raw_resp.py`).

use std::path::Path;
use std::time::Duration;

use crate::check::{CheckResult, Ctx, Fail, Output};
use crate::sandbox::Spec;
use crate::{ensure, fail};

use super::harness::{self, Server};

/// A peer program with `args`.
fn peer(ctx: &Ctx, program: &Path, args: &[&str]) -> Spec {
    ctx.peer(program).args(args)
}

/// `redis-cli -h 127.0.0.1 -p PORT ARGS...` to its end.
fn cli(
    ctx: &mut Ctx,
    exe: &Path,
    server: &Server,
    args: &[&str],
    input: Option<Vec<u8>>,
) -> Result<Output, Fail> {
    let port = server.addr.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    let mut spec = peer(ctx, exe, &all);
    if let Some(bytes) = input {
        spec = Ctx::with_input(spec, bytes);
    }
    ctx.run(
        &format!("`redis-cli {}`", args.join(" ")),
        &spec,
        Duration::from_secs(10),
    )
}

/// Every command through `redis-cli`, `-r` repeats, and `--pipe` mass insertion of 100k
/// keys, checked afterwards.
pub(in crate::labs) fn redis_cli(ctx: &mut Ctx) -> CheckResult {
    let exe = ctx.tool("redis-cli", "redis-tools")?;
    let server = harness::start(ctx, &[])?;
    // (arguments, what redis-cli prints when its stdout is not a terminal)
    let script: &[(&[&str], &str)] = &[
        (&["PING"], "PONG\n"),
        (&["PING", "hello"], "hello\n"),
        (&["ECHO", "two words"], "two words\n"),
        (&["SET", "greeting", "hello world"], "OK\n"),
        (&["GET", "greeting"], "hello world\n"),
        (&["EXISTS", "greeting", "greeting", "missing"], "2\n"),
        (&["DEL", "greeting", "missing"], "1\n"),
        (&["GET", "greeting"], "\n"),
        (&["get", "greeting"], "\n"),
        (&["FLUSHALL"], "ERR unknown command 'FLUSHALL'\n\n"),
    ];
    for (args, want) in script {
        let out = cli(ctx, &exe, &server, args, None)?;
        ensure!(
            out.status() == 0 && out.stdout_str() == *want,
            "`redis-cli {}` printed {:?} (expected {:?}) and {}; it said {:?}",
            args.join(" "),
            out.stdout_str(),
            want,
            out.ending.describe(),
            out.stderr_str().trim()
        );
    }
    let out = cli(
        ctx,
        &exe,
        &server,
        &["-r", "50", "SET", "repeated", "again"],
        None,
    )?;
    ensure!(
        out.stdout_str() == "OK\n".repeat(50),
        "`redis-cli -r 50 SET repeated again` (one connection, 50 requests one after the other) \
         printed {} lines of OK out of 50; it said {:?}",
        out.stdout_str().lines().filter(|l| *l == "OK").count(),
        out.stderr_str().trim()
    );

    // --pipe: 100k SETs in RESP, written as fast as the socket takes them.
    const KEYS: usize = 100_000;
    let mut mass = Vec::with_capacity(KEYS * 48);
    let tag = ctx.next_u64() % 1_000_000;
    for i in 0..KEYS {
        let (k, v) = (format!("mass:{i}"), format!("value-{tag}-{i}"));
        mass.extend(harness::req(&[b"SET", k.as_bytes(), v.as_bytes()]));
    }
    let out = cli(ctx, &exe, &server, &["--pipe"], Some(mass))?;
    let text = out.stdout_str();
    ensure!(
        out.status() == 0 && text.contains(&format!("errors: 0, replies: {KEYS}")),
        "`redis-cli --pipe` with {KEYS} SET requests (its mass insertion: requests sent in big \
         writes, so a request is often cut between two reads of your server) {} and printed \
         {:?}; expected `errors: 0, replies: {KEYS}`",
        out.ending.describe(),
        crate::run::clip(text.trim(), 600)
    );
    for i in [0, 1, 4_999, 50_000, KEYS - 1] {
        let key = format!("mass:{i}");
        let out = cli(ctx, &exe, &server, &["GET", &key], None)?;
        let want = format!("value-{tag}-{i}\n");
        ensure!(
            out.stdout_str() == want,
            "after `redis-cli --pipe` inserted {KEYS} keys, `redis-cli GET {key}` printed {:?} \
             (expected {want:?})",
            out.stdout_str()
        );
    }
    Ok(())
}

/// `redis-benchmark -t ping,set,get -P 16 -c 50`: every request answered, no error reply,
/// and the server still answers afterwards.
pub(in crate::labs) fn redis_benchmark(ctx: &mut Ctx) -> CheckResult {
    let exe = ctx.tool("redis-benchmark", "redis-tools")?;
    let server = harness::start(ctx, &[])?;
    harness::answers_ping(&server, "redis-benchmark was not run")?;
    let port = server.addr.port().to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "ping,set,get",
        "-P",
        "16",
        "-c",
        "50",
        "-n",
        "20000",
        "--csv",
    ];
    let spec = peer(ctx, &exe, &args);
    let shown = "redis-benchmark -t ping,set,get -P 16 -c 50 -n 20000 --csv";
    let out = ctx.run(&format!("`{shown}`"), &spec, Duration::from_secs(10))?;
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    if let Some(line) = stdout
        .lines()
        .chain(stderr.lines())
        .find(|l| l.contains("Error from server"))
    {
        fail!(
            "`{shown}` got an error reply: {line:?}. Every PING, SET and GET must be answered \
             like Redis does"
        );
    }
    let tests: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split(',').next())
        .map(|t| t.trim_matches('"'))
        .collect();
    ensure!(
        out.status() == 0
            && ["PING_INLINE", "PING_MBULK", "SET", "GET"]
                .iter()
                .all(|t| tests.contains(t)),
        "`{shown}` {} and printed {:?} (expected one line each for PING_INLINE, PING_MBULK, \
         SET and GET); it said {:?}",
        out.ending.describe(),
        crate::run::clip(stdout.trim(), 600),
        crate::run::clip(stderr.trim(), 600)
    );
    let mut c = harness::Raw::connect(server.addr)?;
    c.send(&harness::req(&[b"EXISTS", b"key:__rand_int__"]))?;
    harness::expect(
        &mut c,
        "after redis-benchmark (its SETs write the key `key:__rand_int__`), EXISTS key:__rand_int__",
        b":1\r\n",
    )?;
    ctx.note(format!(
        "{shown}: {}",
        stdout
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').map(|x| x.trim_matches('"')).collect();
                format!(
                    "{} {} req/s",
                    f.first().unwrap_or(&""),
                    f.get(1).unwrap_or(&"")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// A Python client that speaks raw RESP, cutting every request at every byte.
pub(in crate::labs) fn raw_python(ctx: &mut Ctx) -> CheckResult {
    let python = ctx.tool("python3", "python3")?;
    let script = ctx.peer_file("raw_resp.py", include_str!("raw_resp.py"))?;
    // Before the server starts: this Python must be able to compile the script.
    let probe = ctx
        .peer(&python)
        .args(["-m".as_ref(), "py_compile".as_ref(), script.as_os_str()]);
    ctx.peer_works("the grader's Python RESP client", &probe)?;
    let server = harness::start(ctx, &[])?;
    let port = server.addr.port().to_string();
    let spec = peer(ctx, &python, &[&script.to_string_lossy(), &port]);
    let out = ctx.run("the Python RESP client", &spec, Duration::from_secs(20))?;
    let text = out.stdout_str();
    ensure!(
        out.status() == 0 && text.starts_with("ok "),
        "a Python client speaking raw RESP, sending each request in two pieces (the second \
         only once your server had read the first): {}. Keep what a read left incomplete in \
         the connection's buffer and parse it again when more bytes come; take bulk strings \
         by their length{}",
        text.trim(),
        if out.status() == 0 {
            String::new()
        } else {
            format!(
                " (the client {}; {:?})",
                out.ending.describe(),
                crate::run::clip(out.stderr_str().trim(), 400)
            )
        }
    );
    Ok(())
}
