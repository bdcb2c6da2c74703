//! `fifo-server DIR`: serves sequence numbers on `DIR/seqnum.fifo` until SIGINT or SIGTERM.
//!
//! Given complete: it only glues the parts together. Prints `ready` on stdout once clients
//! can send requests. Exit status: 0 after SIGINT/SIGTERM (the FIFO removed); 1 if it could
//! not start (another server runs on DIR, DIR is missing, ...) or failed, with
//! `fifo-server: <what went wrong>` on stderr; 2 on a usage error.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use fifos::server::Server;

const USAGE: &str = "usage: fifo-server DIR";

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut server = match Server::start(Path::new(dir)) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("fifo-server: {err}");
            return ExitCode::from(1);
        }
    };
    // Whoever started us may have stopped reading our stdout: that is no reason to stop.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready").and_then(|()| out.flush());
    match server.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fifo-server: {err}");
            ExitCode::from(1)
        }
    }
    // `server` is dropped here, after the match: its FIFO is removed in both cases.
}
