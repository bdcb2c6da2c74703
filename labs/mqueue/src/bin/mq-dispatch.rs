//! `mq-dispatch --workers N`: runs the jobs on stdin through N workers and prints the
//! results.
//!
//! Given complete: it only glues the parts together. See [`mqueue::dispatch()`] for the
//! contract.
//!
//! Exit status: 0 when every job ran; 1 when some input lines did not parse (each reported
//! on stderr) or on a runtime error (`mq-dispatch: <what went wrong>` on stderr); 2 on a
//! usage error; 128 + N when stopped by signal N (SIGINT, SIGTERM).

use std::process::ExitCode;

/// The usage line printed on a usage error.
const USAGE: &str =
    "usage: mq-dispatch --workers N   (jobs on stdin, one per line: <priority 0-9> <payload>)";

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<_, _>>()
    {
        Ok(args) => args,
        Err(_) => {
            eprintln!("mq-dispatch: arguments must be UTF-8\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let workers = match mqueue::parse_args(&args) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("mq-dispatch: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match mqueue::dispatch(workers) {
        Ok(outcome) => match (outcome.signal, outcome.bad_lines) {
            (Some(sig), _) => ExitCode::from(128u8.wrapping_add(sig as u8)),
            (None, 0) => ExitCode::SUCCESS,
            (None, _) => ExitCode::from(1),
        },
        Err(err) => {
            eprintln!("mq-dispatch: {err}");
            ExitCode::from(1)
        }
    }
}
