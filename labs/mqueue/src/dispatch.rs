//! Part C: the dispatcher behind `mq-dispatch`: jobs out on one POSIX queue, results back
//! on another, a pool of forked workers in between.
//!
//! ```text
//! stdin ─▶ dispatcher ──/mq-dispatch-PID-jobs──▶ worker 1..N ──/mq-dispatch-PID-results──▶ dispatcher ─▶ stdout
//! ```
//!
//! The dispatcher is one thread that never blocks on a single thing: a full job queue must
//! not stop it from draining results (the workers would block sending results, and nobody
//! would ever make room again), and a worker that dies must be noticed. So it waits in
//! `poll(2)` on stdin, on the result queue (readable: a result waits) and on the job queue
//! (writable: there is room), and sends and receives without waiting.
//!
//! A worker takes a job and dies before it answers: the job is gone from the queue and its
//! result never comes. The dispatcher remembers every job it sent that has no result yet;
//! when a worker dies it sends all of them again, and prints only the first result of each
//! line, so that every job gets exactly one.

use std::io;

use crate::mailbox::Mailbox;

/// Messages each queue holds: the default limit for an unprivileged user.
pub const QUEUE_CAPACITY: usize = 10;
/// Largest message on either queue, in bytes.
pub const MSG_SIZE: usize = 1024;
/// Largest payload of a job, in bytes.
pub const MAX_PAYLOAD: usize = 1000;
/// Most workers `--workers` accepts.
pub const MAX_WORKERS: usize = 64;

/// One job: a line of input that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its line number in the input, counting from 1 (bad lines count too).
    pub line: u64,
    /// Its priority, 0 to 9: the queue hands out higher priorities first.
    pub priority: u32,
    /// The text after the first space.
    pub payload: String,
}

/// Parses one line of input (without its `\n`): `<priority 0-9> <payload>`.
///
/// The priority is one digit; one space follows; the payload is the rest of the line,
/// possibly empty, at most [`MAX_PAYLOAD`] bytes of UTF-8.
///
/// # Errors
///
/// A reason, for a line that does not parse, that fits after `line N: `.
///
/// # Example
///
/// ```no_run
/// use mqueue::{Job, parse_job};
///
/// let job = parse_job(3, b"7 hello world").unwrap();
/// assert_eq!(job, Job { line: 3, priority: 7, payload: "hello world".into() });
/// assert!(parse_job(4, b"10 too big").is_err());
/// assert!(parse_job(5, b"no-priority").is_err());
/// ```
pub fn parse_job(line: u64, text: &[u8]) -> Result<Job, String> {
    let _ = (line, text);
    todo!("part C: parse `<priority 0-9> <payload>`")
}

/// The payload reversed, character by character: what a worker computes.
///
/// ```no_run
/// assert_eq!(mqueue::reverse("abc déf"), "féd cba");
/// ```
pub fn reverse(payload: &str) -> String {
    payload.chars().rev().collect()
}

/// The names of the two queues of the dispatcher with process id `pid`:
/// `(/mq-dispatch-PID-jobs, /mq-dispatch-PID-results)`.
pub fn queue_names(pid: u32) -> (String, String) {
    (
        format!("/mq-dispatch-{pid}-jobs"),
        format!("/mq-dispatch-{pid}-results"),
    )
}

/// A worker's whole life: take a job from `jobs`, put `<line> <payload reversed>` on
/// `results`, forever. Returns only on an error of the queues.
pub fn worker(jobs: &Mailbox, results: &Mailbox) -> io::Error {
    let _ = (jobs, results);
    todo!("part C: the worker loop")
}

/// How a [`dispatch`] run ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// How many input lines did not parse (each reported on stderr).
    pub bad_lines: u64,
    /// The signal (SIGINT or SIGTERM) that stopped the run early, if one did.
    pub signal: Option<i32>,
}

/// Runs the dispatcher: reads jobs from stdin, runs `workers` workers, prints one result
/// line `<line> <payload reversed>` per job on stdout, and reports each bad line on stderr
/// as `mq-dispatch: line N: <reason>`.
///
/// The contract, which the tests and the grader hold you to:
///
/// - Two POSIX queues, created exclusively at start with [`Mailbox::create`], named by
///   [`queue_names`] after the dispatcher's pid (`/mq-dispatch-PID-jobs`,
///   `/mq-dispatch-PID-results`), each of [`QUEUE_CAPACITY`] messages of at most
///   [`MSG_SIZE`] bytes: the default limits of an unprivileged user. A job is sent with its
///   priority, so workers take higher priorities first.
/// - `workers` processes forked at start, each running [`worker`].
/// - Results are printed as they arrive, in any order, while input is still being read:
///   the dispatcher does not wait for the end of its input to start.
/// - It returns once stdin is at EOF and every job has its result, or once SIGINT or
///   SIGTERM arrives; either way the workers are stopped and reaped and both queues are
///   unlinked.
/// - A worker that dies (even by SIGKILL) is replaced, and every job still gets exactly
///   one result: the job it held must be sent again, and a result that comes twice is
///   printed once.
/// - It never deadlocks on full queues: while the job queue is full it keeps taking
///   results.
///
/// # Errors
///
/// Errors of the queues (creation, sending, receiving), of fork, or of stdin or stdout;
/// the workers are stopped and the queues unlinked first.
pub fn dispatch(workers: usize) -> io::Result<Outcome> {
    let _ = workers;
    todo!("part C: the dispatcher")
}

/// Parses the arguments after the program name: `--workers N`, N from 1 to
/// [`MAX_WORKERS`].
///
/// # Errors
///
/// What is wrong, for a usage message.
pub fn parse_args<I, S>(args: I) -> Result<usize, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<S> = args.into_iter().collect();
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let n = match args.as_slice() {
        ["--workers", n] => n,
        [] => return Err("--workers N is required".into()),
        _ => return Err(format!("unexpected arguments {args:?}")),
    };
    match n.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "--workers takes a number from 1 to {MAX_WORKERS}, not {n:?}"
        )),
    }
}
