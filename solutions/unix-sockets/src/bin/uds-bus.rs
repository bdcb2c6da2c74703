//! `uds-bus PATH [--allow UID]...`: a line bus on the UNIX socket PATH, until SIGINT or
//! SIGTERM.
//!
//! Given complete: it only glues the parts together. Prints `ready` on stdout once clients
//! can connect, and logs joins, denials, departures and drops on stderr. Exit status: 0
//! after SIGINT/SIGTERM (the socket file removed); 1 if it could not start (a live server on
//! PATH, a path too long, ...) or failed, with `uds-bus: <what went wrong>` on stderr; 2 on
//! a usage error.

use std::io::Write;
use std::process::ExitCode;

use unix_sockets::bus::{Bus, Config};

const USAGE: &str = "usage: uds-bus PATH [--allow UID]...";

fn main() -> ExitCode {
    let config = match Config::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("uds-bus: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut bus = match Bus::start(&config) {
        Ok(bus) => bus,
        Err(err) => {
            eprintln!("uds-bus: {err}");
            return ExitCode::from(1);
        }
    };
    // Whoever started us may have stopped reading our stdout: no reason to stop.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready").and_then(|()| out.flush());
    match bus.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("uds-bus: {err}");
            ExitCode::from(1)
        }
    }
    // `bus` is dropped here: every client closed, the socket file removed.
}
