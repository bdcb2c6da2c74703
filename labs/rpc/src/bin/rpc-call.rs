//! `rpc-call --port P [--timeout-ms MS] [--retries N] [--repeat N] METHOD [PARAMS]`: calls
//! METHOD on the server at 127.0.0.1:P through [`RpcClient`], N times (1 by default), and
//! prints each result as one line of JSON. PARAMS is a JSON array or object.
//!
//! Exit status: 0 when every call returned a result; 1 with one line on stderr when one
//! failed (`rpc-call: counter.incr: error -32601: Method not found`); 2 on a usage error.
//!
//! Given: the work is in `src/client.rs`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use rpc::RpcClient;
use serde_json::Value;

const USAGE: &str =
    "usage: rpc-call --port P [--timeout-ms MS] [--retries N] [--repeat N] METHOD [PARAMS]";

struct Args {
    port: u16,
    timeout: Option<Duration>,
    retries: Option<u32>,
    repeat: u32,
    method: String,
    params: Value,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut port = None;
    let (mut timeout, mut retries, mut repeat) = (None, None, 1);
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|_| format!("{name} takes a number"))
        };
        match a.as_str() {
            "--port" => port = Some(u16::try_from(value("--port")?).map_err(|e| e.to_string())?),
            "--timeout-ms" => timeout = Some(Duration::from_millis(value("--timeout-ms")?)),
            "--retries" => retries = Some(value("--retries")? as u32),
            "--repeat" => repeat = value("--repeat")? as u32,
            _ => rest.push(a.clone()),
        }
    }
    let port = port.ok_or("--port is required")?;
    let (method, params) = match rest.as_slice() {
        [m] => (m.clone(), Value::Null),
        [m, p] => {
            let params: Value =
                serde_json::from_str(p).map_err(|e| format!("PARAMS is not JSON: {e}"))?;
            if !(params.is_array() || params.is_object()) {
                return Err("PARAMS must be a JSON array or object".into());
            }
            (m.clone(), params)
        }
        _ => return Err("one METHOD and at most one PARAMS".into()),
    };
    Ok(Args {
        port,
        timeout,
        retries,
        repeat,
        method,
        params,
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(why) => {
            eprintln!("rpc-call: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut client = match RpcClient::new(("127.0.0.1", args.port)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rpc-call: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(t) = args.timeout {
        client = client.with_timeout(t);
    }
    if let Some(r) = args.retries {
        client = client.with_retries(r);
    }
    let mut out = std::io::stdout().lock();
    for _ in 0..args.repeat {
        match client.call(&args.method, args.params.clone()) {
            Ok(result) => {
                // Each result as soon as it is known, for whoever reads the pipe.
                let _ = writeln!(out, "{result}").and_then(|()| out.flush());
            }
            Err(e) => {
                eprintln!("rpc-call: {}: {e}", args.method);
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
