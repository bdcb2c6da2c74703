//! `kv-server --port P [--max-request BYTES]`: serves the key-value store on 127.0.0.1:P
//! until SIGTERM or SIGINT.
//!
//! Given complete: it only glues the parts together. With `--port 0` the kernel picks a free
//! port. The first line on stdout is `listening on 127.0.0.1:PORT` (the real port), printed
//! once clients can connect. Exit status: 0 after SIGTERM/SIGINT (every request received
//! answered); 1 if it could not start (the port is taken), with `kv-server: <what went
//! wrong>` on stderr; 2 on a usage error.

use std::io::Write;
use std::process::ExitCode;

use tcp_sockets::{Config, Server};

const USAGE: &str = "usage: kv-server --port P [--max-request BYTES]   (P = 0 picks a free port)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("kv-server: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::bind(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kv-server: cannot listen on 127.0.0.1:{}: {e}", config.port);
            return ExitCode::from(1);
        }
    };
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kv-server: {e}");
            return ExitCode::from(1);
        }
    };
    // Whoever started us may have stopped reading our stdout: no reason to stop serving.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {addr}").and_then(|()| out.flush());
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv-server: {e}");
            ExitCode::from(1)
        }
    }
}
