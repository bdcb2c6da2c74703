//! Part B: running every stage of a pipeline at once, connected by pipes.
//!
//! The steps, for a pipeline of n stages:
//!
//! 1. Before any `fork`, build everything a child will need: each stage's arguments as
//!    `CString`s, the null-terminated array of pointers that `execvp` takes, the
//!    "command not found" message. Between `fork` and `exec` a child may only call
//!    async-signal-safe functions (`dup2`, `close`, `signal`, `execvp`, `write`, `_exit`):
//!    no allocation, no `format!`, no `println!`.
//! 2. For each stage from left to right: create the pipe to the next stage (`pipe2` with
//!    `O_CLOEXEC`) and `fork`. The child `dup2`s the previous pipe's read end onto fd 0 and
//!    the new pipe's write end onto fd 1, sets SIGPIPE back to its default action and
//!    calls `execvp`. The parent closes at once every end it no longer needs.
//! 3. Once every stage runs, `waitpid` for each of them.

use std::io;

use crate::args::Plan;

/// Runs every stage of `plan` at the same time, each stage's stdout connected by a pipe to
/// the next stage's stdin, and waits for all of them.
///
/// The first stage reads the caller's stdin, the last one writes to the caller's stdout,
/// and every stage shares the caller's stderr. Each stage's program is looked up in `PATH`
/// (`execvp`). Every stage starts with only fds 0, 1 and 2 open (plus whatever the caller
/// itself inherited without close-on-exec, as under bash) and with SIGPIPE at its default
/// disposition, even though the Rust runtime ignores SIGPIPE in the caller.
///
/// A stage whose program cannot be found writes `pipeline: CMD: command not found` on
/// stderr and its status is 127; the other stages run all the same.
///
/// Returns one status per stage, left to right, as bash reports them (see
/// [`status_code`](crate::status_code())): the exit code, or 128 + N if signal N killed it.
/// When it returns, every stage has ended and been waited for, and every pipe it created
/// is closed.
///
/// # Errors
///
/// An error if a pipe cannot be created or a process cannot be forked (too many processes
/// or open files). Stages already started are then killed and waited for. A program that
/// cannot be found or executed is not an error: it is that stage's status.
///
/// # Example
///
/// ```no_run
/// use std::ffi::OsString;
/// use pipes::{parse_args, run};
///
/// let args = ["echo", "hello", "|", "tr", "a-z", "A-Z"].map(OsString::from);
/// let plan = parse_args(args).unwrap();
/// assert_eq!(run(&plan)?, [0, 0]); // and HELLO is on stdout
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run(plan: &Plan) -> io::Result<Vec<i32>> {
    todo!(
        "part B: run the {} stages of {plan:?} at once, connected by pipes",
        plan.stages.len()
    )
}
