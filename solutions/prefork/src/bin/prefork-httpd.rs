//! `prefork-httpd --port P --root DIR --workers N`: serves the files under DIR on
//! 127.0.0.1:P with N worker processes until SIGTERM or SIGINT.
//!
//! Given complete: it only glues the parts together. Prints `listening on 127.0.0.1:PORT`
//! on stdout once clients can connect (PORT is the real port when P is 0). Exit status: 0
//! after SIGTERM/SIGINT (every worker gone); 1 if it could not start (the port is taken,
//! DIR is not a directory, ...) with `prefork-httpd: <what went wrong>` on stderr; 2 on a
//! usage error.

use std::io::Write;
use std::process::ExitCode;

use prefork::master;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match master::parse_args(&args) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("prefork-httpd: {why}\n{}", master::USAGE);
            return ExitCode::from(2);
        }
    };
    if !config.root.is_dir() {
        eprintln!(
            "prefork-httpd: {} is not a directory",
            config.root.display()
        );
        return ExitCode::from(1);
    }
    let listener = match master::bind(config.port) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "prefork-httpd: cannot listen on 127.0.0.1:{}: {e}",
                config.port
            );
            return ExitCode::from(1);
        }
    };
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(config.port);
    // Flushed before the fork, so no worker inherits (and repeats) buffered output.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on 127.0.0.1:{port}").and_then(|()| out.flush());
    match master::run(&config, listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("prefork-httpd: {why}");
            ExitCode::from(1)
        }
    }
}
