//! What the tests of this lab need beyond `testkit`: `run` starts `pipeline` and `filter`
//! calls `pipes::filter`, both under testkit's deadlines, which kill every process left
//! over and explain a hang in terms of processes, pipes and their ends, as `/proc` shows
//! them.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use assert_cmd::assert::{Assert, OutputAssertExt};
use assert_cmd::cargo::CommandCargoExt;

/// How long one `pipeline` run or one `filter` call may take. Every scenario here ends in
/// well under a second when the code is right.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// The advice that goes with a pipeline's hang.
const CLOSE_ADVICE: &str = "Every process must close the pipe ends it does not use: the \
parent right after each fork, each child before exec (or let O_CLOEXEC do it).";

/// What a `pipeline` run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, quoted as in a shell, for messages.
    pub command: String,
    /// How `pipeline` ended.
    pub status: ExitStatus,
    /// Everything it wrote on stdout (at most 16 MiB).
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr (at most 16 MiB).
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// assert_cmd's assertions on this outcome: `.code(0).stdout("HELLO\n")`.
    pub fn assert(&self) -> Assert {
        Output {
            status: self.status,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
        .assert()
        .append_context("command", self.command.clone())
    }

    /// stdout as text, with surrounding whitespace removed (`wc` pads its numbers on some
    /// systems).
    pub fn stdout_trimmed(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }
}

/// Runs `pipeline ARGS...` with `stdin` as its standard input and returns what it did.
///
/// `pipeline` runs in its own process group (its stages join it), under
/// [`testkit::deadline::run`]: past [`DEADLINE`] the test fails with what every process of
/// the group waits for and which pipe ends it holds, after the whole group is killed. It
/// also fails if `pipeline` exits while a stage it started still runs.
#[track_caller]
pub fn run<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Outcome {
    let args: Vec<OsString> = args.iter().map(|arg| arg.as_ref().to_owned()).collect();
    let command = shell_quote("pipeline", &args);
    let mut cmd = Command::cargo_bin("pipeline")
        .unwrap_or_else(|err| panic!("cannot find the pipeline binary: {err}"));
    cmd.args(&args);
    let done = testkit::run(&mut cmd, &command, stdin, DEADLINE, CLOSE_ADVICE);
    if !done.strays.is_empty() {
        panic!(
            "`{command}` exited while processes it started were still running:\n{}\
             pipeline must wait (waitpid) for every stage before it exits.\nstdout {}\nstderr {}",
            done.strays,
            testkit::compare::show(&done.stdout),
            testkit::compare::show(&done.stderr),
        );
    }
    Outcome {
        command,
        status: done.status,
        stdout: done.stdout,
        stderr: done.stderr,
    }
}

/// Calls `f` and returns its result, or fails the test if it takes longer than
/// [`DEADLINE`], describing what the processes it started and this test's threads wait
/// for; the failure message ends with `hint`.
#[track_caller]
pub fn within_deadline<T: Send + 'static>(
    what: &str,
    hint: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    testkit::within(what, DEADLINE, hint, f)
}

/// What to check when a `filter` call hangs.
pub const FILTER_HINT: &str = "filter must never block for good: it reads the program's output \
while it writes its input (poll(2), or a writer thread), closes its write end once the input is \
written (EOF for the program), and closes the child's ends of the pipes in the parent right \
after fork.";

/// `pipes::filter(argv, input)` under [`within_deadline`], with [`FILTER_HINT`].
#[track_caller]
pub fn filter(argv: &[&str], input: &[u8]) -> std::io::Result<pipes::Filtered> {
    let what = format!("filter({argv:?}, {} bytes of input)", input.len());
    let owned: Vec<String> = argv.iter().map(|arg| (*arg).to_owned()).collect();
    let input = input.to_vec();
    within_deadline(&what, FILTER_HINT, move || pipes::filter(&owned, &input))
}

/// `filter(argv, input)` that must succeed; otherwise fails saying so.
#[track_caller]
pub fn filter_ok(argv: &[&str], input: &[u8]) -> pipes::Filtered {
    use testkit::Expect;
    filter(argv, input).expect_success(&format!("filter({argv:?}, {} bytes of input)", input.len()))
}

/// `len` bytes of deterministic pseudo-random data; different seeds give different data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `prog arg...` quoted as a shell would need it, for messages.
pub fn shell_quote(prog: &str, args: &[OsString]) -> String {
    let mut line = prog.to_owned();
    for arg in args {
        let arg = arg.to_string_lossy();
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
        line.push(' ');
        if plain {
            line.push_str(&arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        }
    }
    line
}
