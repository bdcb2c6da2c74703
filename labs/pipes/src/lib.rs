//! # Lab 1: anonymous pipes
//!
//! You write two things with `pipe`, `fork`, `dup2`, `execvp` and `waitpid`:
//!
//! - the binary `pipeline`, a tiny shell that runs one pipeline:
//!   `pipeline [--pipefail] CMD [ARG...] ['|' CMD [ARG...]]...` runs every stage at once,
//!   each stage's stdout connected by a pipe to the next stage's stdin, and exits with the
//!   status bash would give (`pipeline yes '|' head -n 3` is `yes | head -n 3`);
//! - the function [`filter()`], which runs one program as a function from bytes to bytes:
//!   it feeds the input to the program's stdin while it reads its stdout, and never
//!   deadlocks, whatever the sizes and however many threads call it at once.
//!
//! The lab has three parts. Each builds on the one before: [`run()`] and [`filter()`] report
//! statuses with [`status_code`] from part A.
//!
//! - **Part A** ([`args`]): [`parse_args`] splits the command line into a [`Plan`];
//!   [`status_code`] and [`pipeline_status`] compute statuses as bash does.
//! - **Part B** ([`run`](mod@run)): [`run()`] starts every stage, connects them and waits for
//!   them.
//! - **Part C** ([`filter`](mod@filter)): [`filter()`] and its result [`Filtered`].
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b` and `part_c`.
//! README.md has the background, the exact contract and hints for debugging a hang.
//!
//! # Layout
//!
//! | Concept                                                  | File                  |
//! |----------------------------------------------------------|-----------------------|
//! | the command line; a wait status as a number; pipefail    | `src/args.rs`         |
//! | `pipe2`, `fork`, `dup2`, `execvp`, `waitpid`; closing the ends nobody needs; SIGPIPE | `src/run.rs` |
//! | feeding and draining one child at once (`poll`); exec errors reported through a pipe; threads and `O_CLOEXEC` | `src/filter.rs` |
//! | the `pipeline` program: exit statuses, usage errors (given)  | `src/bin/pipeline.rs` |

pub mod args;
pub mod filter;
pub mod run;

pub use args::{Plan, UsageError, parse_args, pipeline_status, status_code};
pub use filter::{Filtered, filter};
pub use run::run;
