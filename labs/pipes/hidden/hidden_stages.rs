//! Hidden tests, part B: edge cases of pipelines.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;

use predicates::prelude::*;
use rstest::rstest;

const MISSING: &str = "no-such-command-pipes-lab";

/// With `--pipefail` the status is the rightmost non-zero one; without, the last stage's.
#[rstest]
#[case::false_then_true(&["--pipefail", "false", "|", "true"], 1)]
#[case::rightmost_non_zero(
    &["--pipefail", "sh", "-c", "exit 3", "|", "sh", "-c", "exit 4", "|", "true"],
    4
)]
#[case::all_succeed(&["--pipefail", "true", "|", "true", "|", "true"], 0)]
#[case::missing_last(&["--pipefail", "true", "|", MISSING], 127)]
#[case::missing_middle(&["--pipefail", "true", "|", MISSING, "|", "cat"], 127)]
#[case::signal_in_middle(
    &["--pipefail", "true", "|", "sh", "-c", "kill -USR1 $$", "|", "true"],
    138
)]
#[case::sigpipe_of_first(&["--pipefail", "yes", "|", "head", "-n", "1"], 141)]
#[case::single_stage(&["--pipefail", "sh", "-c", "exit 9"], 9)]
#[case::no_pipefail_rightmost_ignored(&["sh", "-c", "exit 3", "|", "true"], 0)]
fn pipefail_part_b(#[case] args: &[&str], #[case] status: i32) {
    common::run(args, b"").assert().code(status);
}

/// A dozen stages, eleven pipes: data flows through all of them.
#[test]
fn twelve_stages_part_b() {
    let mut args = vec!["echo", "abc"];
    for _ in 0..10 {
        args.extend(["|", "cat"]);
    }
    args.extend(["|", "tr", "a-z", "A-Z"]);
    common::run(&args, b"").assert().code(0).stdout("ABC\n");
}

/// Megabytes from stdin through eight stages arrive whole and in order.
#[test]
fn megabytes_through_stages_part_b() {
    let input = common::data(3 << 20, 11);
    let mut args = vec!["cat"];
    for _ in 0..7 {
        args.extend(["|", "cat"]);
    }
    let outcome = common::run(&args, &input);
    outcome.assert().code(0);
    testkit::assert_same_bytes(&outcome.command, &input, &outcome.stdout);
}

/// Arguments reach the program exactly as given: spaces, empty strings, `*`, `$`, quotes.
#[test]
fn arguments_intact_part_b() {
    let args = [
        "printf", "[%s]\\n", "a b", "", "  c  ", "*", "$HOME", "it's", "a|b", "|", "cat",
    ];
    common::run(&args, b"")
        .assert()
        .code(0)
        .stdout("[a b]\n[]\n[  c  ]\n[*]\n[$HOME]\n[it's]\n[a|b]\n");
}

/// An argument that is not UTF-8 reaches the program byte for byte.
#[test]
fn non_utf8_argument_part_b() {
    let args = [
        OsString::from("printf"),
        OsString::from("%s"),
        OsString::from_vec(vec![0xff, 0xfe, b'x']),
        OsString::from("|"),
        OsString::from("cat"),
    ];
    let outcome = common::run(&args, b"");
    outcome.assert().code(0);
    assert_eq!(outcome.stdout, [0xff, 0xfe, b'x'], "`{}`", outcome.command);
}

/// A stage that stops reading early ends the stages before it quietly (SIGPIPE), and the
/// pipeline still succeeds.
#[rstest]
#[case::head_ends_seq(&["seq", "1", "1000000", "|", "head", "-n", "1"], "1\n")]
#[case::stdin_closed(&["yes", "|", "sh", "-c", "exec 0<&-; echo done"], "done\n")]
#[case::never_reads(&["yes", "|", "true"], "")]
#[case::middle_stops(&["yes", "|", "head", "-n", "2", "|", "cat"], "y\ny\n")]
fn reader_leaves_early_part_b(#[case] args: &[&str], #[case] stdout: &'static str) {
    common::run(args, b"")
        .assert()
        .code(0)
        .stdout(stdout)
        .stderr("");
}

/// The first stage stops reading pipeline's own stdin early: no hang, no error.
#[test]
fn first_stage_reads_part_of_stdin_part_b() {
    let input = common::data(1 << 20, 12);
    let outcome = common::run(&["head", "-c", "10", "|", "cat"], &input);
    outcome.assert().code(0).stderr("");
    assert_eq!(outcome.stdout, input[..10], "`{}`", outcome.command);
}

/// `yes | head -n 3`: three lines, status 0, and no "Broken pipe": `yes` dies of SIGPIPE.
#[test]
fn yes_head_part_b() {
    common::run(&["yes", "|", "head", "-n", "3"], b"")
        .assert()
        .code(0)
        .stdout("y\ny\ny\n")
        .stderr("");
}

/// Only the last stage writes to pipeline's stdout.
#[test]
fn only_last_stage_writes_stdout_part_b() {
    common::run(&["echo", "first", "|", "echo", "second"], b"")
        .assert()
        .code(0)
        .stdout("second\n");
}

/// Every stage writes to the same stderr, which no pipe carries.
#[test]
fn stderr_shared_part_b() {
    let args = [
        "sh",
        "-c",
        "echo first-err >&2; echo out",
        "|",
        "sh",
        "-c",
        "cat; echo second-err >&2",
        "|",
        "tr",
        "a-z",
        "A-Z",
    ];
    common::run(&args, b"")
        .assert()
        .code(0)
        .stdout("OUT\n")
        .stderr(predicate::str::contains("first-err\n"))
        .stderr(predicate::str::contains("second-err\n"));
}

/// A missing program in the middle: its message, its stage reads nothing, the others run.
#[rstest]
#[case::middle(&["echo", "hi", "|", MISSING, "|", "wc", "-c"], 1)]
#[case::two_missing(&[MISSING, "a", "|", MISSING, "b", "|", "wc", "-c"], 2)]
fn command_not_found_in_middle_part_b(#[case] args: &[&str], #[case] messages: usize) {
    let outcome = common::run(args, b"");
    outcome.assert().code(0);
    assert_eq!(outcome.stdout_trimmed(), "0", "`{}`", outcome.command);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let expected = format!("pipeline: {MISSING}: command not found\n");
    assert_eq!(
        stderr.matches(&expected).count(),
        messages,
        "`{}`: expected {messages} line(s) {expected:?} on stderr, got {stderr:?}",
        outcome.command
    );
}

/// pipeline waits for every stage, not only the last: a slow first stage still runs when
/// `true` has ended, and its message still arrives.
#[test]
fn waits_for_every_stage_part_b() {
    common::run(&["sh", "-c", "sleep 0.3; echo late >&2", "|", "true"], b"")
        .assert()
        .code(0)
        .stderr("late\n");
}

/// Every stage starts with SIGPIPE at its default action, though pipeline ignores it.
#[test]
fn sigpipe_default_in_every_stage_part_b() {
    let stage = "cat /proc/self/status >&2; exec cat";
    let args = [
        "sh", "-c", stage, "|", "sh", "-c", stage, "|", "sh", "-c", stage,
    ];
    let outcome = common::run(&args, b"");
    outcome.assert().code(0);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let masks: Vec<u64> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).expect("SigIgn is hex"))
        .collect();
    assert_eq!(masks.len(), 3, "`{}`: stderr {stderr:?}", outcome.command);
    let sigpipe = 1 << (libc::SIGPIPE - 1);
    for (stage, mask) in masks.iter().enumerate() {
        assert_eq!(
            mask & sigpipe,
            0,
            "a stage of `{}` started with SIGPIPE ignored (SigIgn: {mask:016x}, report {} of \
             3); reset it to SIG_DFL in the child before exec",
            outcome.command,
            stage + 1
        );
    }
}

/// A stage has exactly the fds of a program started directly: no pipe end leaks into it.
#[test]
fn no_leaked_fds_part_b() {
    let direct = Command::new("ls")
        .arg("/proc/self/fd")
        .output()
        .expect("cannot run ls");
    let direct = String::from_utf8_lossy(&direct.stdout).into_owned();
    let args = ["true", "|", "ls", "/proc/self/fd", "|", "cat", "|", "cat"];
    let outcome = common::run(&args, b"");
    outcome.assert().code(0);
    let staged = outcome.stdout_trimmed();
    let fds = |text: &str| {
        let mut fds: Vec<i32> = text
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        fds.sort_unstable();
        fds
    };
    assert_eq!(
        fds(&staged),
        fds(&direct),
        "the fds of `ls` as the middle stage of `{}` (left) differ from those of `ls` started \
         directly (right): the extra ones are pipe ends it inherited; make every pipe \
         O_CLOEXEC or close the ends a child does not use",
        outcome.command
    );
}
