//! Checks of the pipes lab: the student's `pipeline` against `bash -c` on the same pipelines.
//!
//! Every scenario runs real processes and compares with bash run the same way (same
//! sandbox, same fds, same input). Hangs are cut at a deadline and explained from /proc.

use std::time::Duration;

use crate::check::{Check, CheckResult, Ctx, Fail, Output};
use crate::labs::shell_quote;
use crate::{ensure, fail};

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "matches_bash",
        run: matches_bash,
    },
    Check {
        name: "closes_unused_ends",
        run: closes_unused_ends,
    },
    Check {
        name: "sigpipe_default",
        run: sigpipe_default,
    },
    Check {
        name: "stages_concurrent",
        run: stages_concurrent,
    },
    Check {
        name: "large_data",
        run: large_data,
    },
];

const LIMIT: Duration = Duration::from_secs(10);

/// A pipeline as the student's program receives it, and as bash runs it.
struct Case {
    pipefail: bool,
    stages: Vec<Vec<String>>,
    input: Vec<u8>,
}

impl Case {
    fn new(stages: &[&[&str]]) -> Case {
        Case {
            pipefail: false,
            stages: stages
                .iter()
                .map(|s| s.iter().map(|a| a.to_string()).collect())
                .collect(),
            input: Vec::new(),
        }
    }
    fn pipefail(mut self) -> Case {
        self.pipefail = true;
        self
    }
    fn input(mut self, input: &[u8]) -> Case {
        self.input = input.to_vec();
        self
    }
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.pipefail {
            args.push("--pipefail".to_string());
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                args.push("|".into());
            }
            args.extend(stage.iter().cloned());
        }
        args
    }
    fn script(&self) -> String {
        let line = self
            .stages
            .iter()
            .map(|s| {
                s.iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" | ");
        if self.pipefail {
            format!("set -o pipefail; {line}")
        } else {
            line
        }
    }
    /// How a student would type it.
    fn shown(&self) -> String {
        let args: Vec<String> = self
            .args()
            .iter()
            .map(|a| {
                if a == "|" {
                    "'|'".into()
                } else {
                    shell_quote(a)
                }
            })
            .collect();
        format!("`pipeline {}`", args.join(" "))
    }
    fn run_student(&self, ctx: &mut Ctx) -> Result<Output, Fail> {
        let spec = Ctx::with_input(ctx.bin("pipeline").args(self.args()), self.input.clone());
        ctx.run(&self.shown(), &spec, LIMIT)
    }
    fn run_bash(&self, ctx: &mut Ctx) -> Result<Output, Fail> {
        let spec = Ctx::with_input(ctx.bash(&self.script()), self.input.clone());
        ctx.run("bash (the reference)", &spec, LIMIT)
    }
}

/// What the student's program said about itself, when that may explain a wrong result.
fn context(o: &Output) -> String {
    let err = o.stderr_str();
    let err = err.trim();
    match (o.status(), err.is_empty()) {
        (0, true) => String::new(),
        (s, true) => format!(" (pipeline exited with status {s})"),
        (s, false) => format!(
            " (pipeline exited with status {s}; its stderr: {})",
            crate::run::clip(err, 600)
        ),
    }
}

/// The first difference between two outputs, for a student.
fn first_difference(expected: &[u8], got: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let window = |v: &[u8]| {
        let from = at.saturating_sub(20);
        let to = (at + 40).min(v.len());
        format!("\"{}\"", v[from.min(to)..to].escape_ascii())
    };
    format!(
        "bash printed {} bytes, pipeline printed {}; they first differ at byte {at}: bash has {}, pipeline has {}",
        expected.len(),
        got.len(),
        window(expected),
        window(got)
    )
}

fn matches_bash(ctx: &mut Ctx) -> CheckResult {
    let cases = [
        Case::new(&[&["echo", "hello world"]]),
        Case::new(&[&["printf", "b\\na\\nc\\n"], &["sort"], &["head", "-n", "2"]]),
        Case::new(&[&["seq", "1", "1000"], &["grep", "7"], &["wc", "-l"]]),
        Case::new(&[&["cat"], &["tr", "a-z", "A-Z"]]).input(b"from stdin\nto stdout\n"),
        Case::new(&[&["false"], &["true"]]),
        Case::new(&[&["true"], &["false"]]),
        Case::new(&[&["sh", "-c", "exit 3"], &["cat"]]),
        Case::new(&[&["cat"], &["sh", "-c", "cat >/dev/null; exit 5"]]).input(b"x\n"),
        Case::new(&[&["cat", "/nonexistent-file"], &["wc", "-l"]]),
        Case::new(&[&["sh", "-c", "exit 3"], &["cat"]]).pipefail(),
        Case::new(&[
            &["sh", "-c", "exit 2"],
            &["sh", "-c", "cat >/dev/null; exit 4"],
            &["true"],
        ])
        .pipefail(),
        Case::new(&[&["true"], &["true"]]).pipefail(),
        Case::new(&[&["sh", "-c", "kill -TERM $$"], &["cat"]]).pipefail(),
        Case::new(&[&["echo", "a b", "", "c"], &["cat", "-A"]]),
    ];
    for case in &cases {
        let bash = case.run_bash(ctx)?;
        let got = case.run_student(ctx)?;
        ensure!(
            got.stdout == bash.stdout,
            "{} printed the wrong output. {}{}",
            case.shown(),
            first_difference(&bash.stdout, &got.stdout),
            context(&got)
        );
        ensure!(
            got.status() == bash.status(),
            "{} exited with status {}, but bash gives {} for `{}`.{}",
            case.shown(),
            got.status(),
            bash.status(),
            case.script(),
            if case.pipefail {
                " With --pipefail the status is the rightmost non-zero stage status (128+N for a stage killed by signal N), or 0."
            } else {
                " The status of a pipeline is the status of its LAST stage (128+N if it was killed by signal N)."
            }
        );
    }
    let missing = Case::new(&[&["no-such-command-xyz"], &["echo", "still runs"]]);
    let got = missing.run_student(ctx)?;
    ensure!(
        got.stdout == b"still runs\n" && got.status() == 0,
        "{}: the other stages must still run and the status is the last stage's (0); got status {} and output {:?}",
        missing.shown(),
        got.status(),
        got.stdout_str()
    );
    ensure!(
        got.stderr_str()
            .contains("pipeline: no-such-command-xyz: command not found"),
        "{} must print `pipeline: no-such-command-xyz: command not found` on stderr; it printed {:?}",
        missing.shown(),
        got.stderr_str()
    );
    // A program that exists but cannot be run (a directory: execvp fails with EACCES, not
    // ENOENT) is bash's 126, not 127.
    let cannot_run = Case::new(&[&["echo", "hi"], &["/"]]);
    let bash = cannot_run.run_bash(ctx)?;
    let got = cannot_run.run_student(ctx)?;
    ensure!(
        got.status() == bash.status() && !got.stderr_str().contains("command not found"),
        "{}: `/` exists but cannot be executed (execvp fails with EACCES, not ENOENT), so bash \
         gives status {} and says why; pipeline gave status {} and printed {:?} on stderr. \
         127 and `command not found` are for a program that does not exist (ENOENT) only; any \
         other execvp failure is status 126, with the reason in the message: \
         `pipeline: CMD: <strerror>`",
        cannot_run.shown(),
        bash.status(),
        got.status(),
        got.stderr_str()
    );
    Ok(())
}

fn closes_unused_ends(ctx: &mut Ctx) -> CheckResult {
    // EOF must reach every stage once the input ends.
    let eof = Case::new(&[&["cat"], &["cat"], &["wc", "-c"]]).input(b"hello\nhello\nhello\n");
    let got = eof.run_student(ctx)?;
    ensure!(
        got.stdout_str().trim() == "18",
        "{} with 18 bytes of input printed {:?} instead of 18{}",
        eof.shown(),
        got.stdout_str(),
        context(&got)
    );
    // A stage sees exactly the fds that it sees under bash: 0, 1, 2 (and ls's own).
    let positions: [(&str, Case); 3] = [
        (
            "the first of 2",
            Case::new(&[&["ls", "/proc/self/fd"], &["cat"]]),
        ),
        (
            "the middle of 3",
            Case::new(&[&["echo", "x"], &["ls", "/proc/self/fd"], &["cat"]]),
        ),
        (
            "the last of 2",
            Case::new(&[&["echo", "x"], &["ls", "/proc/self/fd"]]),
        ),
    ];
    for (where_, case) in &positions {
        let bash = case.run_bash(ctx)?;
        let got = case.run_student(ctx)?;
        if got.stdout != bash.stdout {
            let fds = |o: &Output| {
                o.stdout_str()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            let (want, have) = (fds(&bash), fds(&got));
            let extra: Vec<&String> = have.iter().filter(|f| !want.contains(f)).collect();
            fail!(
                "`ls /proc/self/fd` run as {where_} stages ({}) sees fds {} but under bash it sees {}. \
                 The extra fds ({}) were inherited from pipeline: every child must close the pipe ends \
                 it does not use before exec (or create the pipes with O_CLOEXEC)",
                case.shown(),
                have.join(" "),
                want.join(" "),
                extra
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

fn sigpipe_default(ctx: &mut Ctx) -> CheckResult {
    let case = Case::new(&[&["yes"], &["head", "-n", "1"]]).pipefail();
    let bash = case.run_bash(ctx)?;
    let got = case.run_student(ctx)?;
    ensure!(
        got.stdout == b"y\n",
        "{} printed {:?} instead of \"y\\n\"{}",
        case.shown(),
        String::from_utf8_lossy(&got.stdout[..got.stdout.len().min(80)]),
        context(&got)
    );
    let stderr = got.stderr_str();
    ensure!(
        !stderr.contains("Broken pipe"),
        "{}: `yes` printed {:?}: it got the error EPIPE instead of being killed by SIGPIPE. \
         Rust's runtime ignores SIGPIPE and an ignored signal stays ignored across exec: reset it \
         to SIG_DFL in the child before execvp",
        case.shown(),
        stderr.trim()
    );
    ensure!(
        got.status() == bash.status(),
        "{} exited with status {}, bash with pipefail gives {} (`yes` killed by SIGPIPE): a child \
         must start with SIGPIPE at its default disposition; reset it to SIG_DFL before execvp",
        case.shown(),
        got.status(),
        bash.status()
    );
    Ok(())
}

fn stages_concurrent(ctx: &mut Ctx) -> CheckResult {
    // Stage 1 cannot finish before stage 3 has started: it reads a FIFO that only stage 3
    // writes. Run one after the other, the stages would wait for each other forever.
    // The FIFO sits in the scratch folder, every process's cwd, which the grader removes.
    nix::unistd::mkfifo(
        &ctx.scratch.join("handshake"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )?;
    let case = Case::new(&[
        &["cat", "handshake"],
        &["cat"],
        &["sh", "-c", "echo hi > handshake; cat"],
    ]);
    let got = case.run_student(ctx).map_err(|Fail(m)| {
        Fail(format!(
            "All stages must run at the same time: here stage 1 reads a FIFO that stage 3 writes, so \
             stage 1 cannot end before stage 3 starts. {m}"
        ))
    })?;
    ensure!(
        got.stdout == b"hi\n",
        "{} printed {:?} instead of \"hi\\n\"{}",
        case.shown(),
        got.stdout_str(),
        context(&got)
    );

    let sleeps = Case::new(&[&["sleep", "1"], &["sleep", "1"], &["sleep", "1"]]);
    let got = sleeps.run_student(ctx)?;
    // Run one after another they take at least 3 s; at once, about 1 s.
    ensure!(
        got.elapsed < Duration::from_millis(2950),
        "{} took {:.1} s: the stages ran one after another. Fork every stage first, then wait for them all",
        sleeps.shown(),
        got.elapsed.as_secs_f64()
    );
    Ok(())
}

fn large_data(ctx: &mut Ctx) -> CheckResult {
    let data = ctx.random_bytes(8 << 20);
    let case = Case::new(&[&["cat"], &["tr", "a-z", "A-Z"], &["cat"], &["cat"]]).input(&data);
    let got = case.run_student(ctx)?;
    let want: Vec<u8> = data.iter().map(u8::to_ascii_uppercase).collect();
    ensure!(
        got.stdout == want,
        "8 MiB through {} came out wrong: {}{}",
        case.shown(),
        first_difference(&want, &got.stdout),
        context(&got)
    );
    Ok(())
}
