//! `pipeline [--pipefail] CMD [ARG...] ['|' CMD [ARG...]]...`: runs one shell pipeline.
//!
//! Given complete: it only glues the parts together. The literal argument `|` (quoted in
//! the shell you type it in) separates stages: `pipeline ls '|' wc -l` runs `ls | wc -l`.
//!
//! Exit status: bash's status of the pipeline (see [`pipes::pipeline_status`]); 2 on a
//! usage error, with the usage on stderr and nothing run; 1 if the pipeline could not be
//! started (`pipeline: <what went wrong>` on stderr).

use std::process::ExitCode;

/// The usage line printed on a usage error.
const USAGE: &str = "usage: pipeline [--pipefail] CMD [ARG...] ['|' CMD [ARG...]]...";

fn main() -> ExitCode {
    let plan = match pipes::parse_args(std::env::args_os().skip(1)) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("pipeline: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match pipes::run(&plan) {
        Ok(statuses) => {
            let status = pipes::pipeline_status(&statuses, plan.pipefail);
            // Statuses are 0..=255 (exit codes, or 128 + a signal number); like a shell,
            // keep the low 8 bits of anything else.
            ExitCode::from(status.to_le_bytes()[0])
        }
        Err(err) => {
            eprintln!("pipeline: {err}");
            ExitCode::from(1)
        }
    }
}
