//! `fd-client PATH`: receives a descriptor from the fd server at PATH and copies the file
//! it refers to to stdout.
//!
//! Given complete. Exit status: 0 once the whole file is copied; 1 with
//! `fd-client: <what went wrong>` on stderr when no server answers, no good descriptor
//! comes within 2 s, or reading or writing fails; 2 on a usage error.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;

use unix_sockets::fdpass::{copy_all, fetch};

const USAGE: &str = "usage: fd-client PATH";

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let fd = match fetch(Path::new(path)) {
        Ok(fd) => fd,
        Err(err) => {
            eprintln!("fd-client: {err}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    match copy_all(fd.as_fd(), &mut out).and_then(|_| std::io::Write::flush(&mut out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fd-client: copying the file to stdout: {err}");
            ExitCode::from(1)
        }
    }
}
