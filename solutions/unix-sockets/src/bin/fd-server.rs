//! `fd-server PATH FILE`: opens FILE read-only and hands its descriptor to every client that
//! connects to the UNIX socket PATH, until SIGINT or SIGTERM.
//!
//! Given complete. Prints `ready` on stdout once clients can connect. Exit status: 0 after
//! SIGINT/SIGTERM (the socket file removed); 1 if FILE cannot be opened, a server already
//! listens on PATH, ..., with `fd-server: <what went wrong>` on stderr; 2 on a usage error.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use unix_sockets::fdpass::FdServer;

const USAGE: &str = "usage: fd-server PATH FILE";

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [path, file] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut server = match FdServer::start(Path::new(path), Path::new(file)) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("fd-server: {err}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready").and_then(|()| out.flush());
    match server.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fd-server: {err}");
            ExitCode::from(1)
        }
    }
}
