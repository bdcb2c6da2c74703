//! `rpc-server [--port P]`: the JSON-RPC 2.0 server on 127.0.0.1:P (0, the default, lets
//! the kernel pick a port). Prints `listening on 127.0.0.1:PORT` once it accepts
//! connections, then serves until it is killed.
//!
//! Given: the work is in `src/server.rs` and `src/service.rs`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use rpc::{Service, server};

const USAGE: &str = "usage: rpc-server [--port P]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.as_slice() {
        [] => 0,
        [flag, p] if flag == "--port" => match p.parse::<u16>() {
            Ok(p) => p,
            Err(_) => {
                eprintln!("rpc-server: the port must be a number 0..=65535, not {p:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match server::bind(port) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rpc-server: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rpc-server: {e}");
            return ExitCode::from(1);
        }
    };
    // The line that tells a client (and the grader) the port; flushed, as stdout is a pipe.
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
    match server::serve(listener, Arc::new(Service::new())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpc-server: accept failed: {e}");
            ExitCode::from(1)
        }
    }
}
