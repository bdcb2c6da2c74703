//! `fifo-client DIR COUNT`: asks the server on `DIR` for COUNT numbers and prints the first.
//!
//! Given complete: it only glues the parts together. Exit status: 0 with `start` on stdout;
//! 1 with `fifo-client: <what went wrong>` on stderr when there is no server (at once), no
//! reply within 5 s, the server refused, or a signal interrupted the wait; 2 on a usage
//! error. Its reply FIFO is removed in every case, SIGINT and SIGTERM included.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use fifos::protocol::MAX_COUNT;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

const USAGE: &str = "usage: fifo-client DIR COUNT   (COUNT in 1..=1000000)";

/// How long the client waits for its reply.
const TIMEOUT: Duration = Duration::from_secs(5);

extern "C" fn on_signal(_: libc::c_int) {
    // Nothing to do: the signal's only job is to interrupt poll with EINTR.
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, count) = match args.as_slice() {
        [dir, count] => match count.parse::<u64>() {
            Ok(c) if (1..=MAX_COUNT).contains(&c) => (dir, c),
            _ => {
                eprintln!("fifo-client: bad COUNT {count:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Without SA_RESTART, SIGINT/SIGTERM interrupt the wait for the reply (EINTR) instead
    // of killing the client with its FIFO still in DIR.
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler does nothing, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.expect("sigaction with a valid signal");
    }
    match fifos::client::request(Path::new(dir), count, TIMEOUT) {
        Ok(start) => {
            println!("{start}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("fifo-client: {err}");
            ExitCode::from(1)
        }
    }
}
