//! Part B: `pipeline` runs its stages at once, connected by pipes, and exits as bash would.

mod common;

use predicates::prelude::*;
use rstest::rstest;

/// Each stage's output is the next stage's input; the last one writes to stdout.
#[rstest]
#[case::one_stage(&["echo", "one"], "one\n")]
#[case::two_stages(&["echo", "hello", "|", "tr", "a-z", "A-Z"], "HELLO\n")]
#[case::three_stages(
    &["printf", "c\\nb\\na\\n", "|", "sort", "|", "head", "-n", "2"],
    "a\nb\n"
)]
#[case::four_stages(
    &["echo", "pipes", "|", "cat", "|", "tr", "a-z", "A-Z", "|", "cat"],
    "PIPES\n"
)]
fn connects_stages_part_b(#[case] args: &[&str], #[case] expected: &'static str) {
    common::run(args, b"").assert().code(0).stdout(expected);
}

/// pipeline's stdin feeds the first stage.
#[test]
fn stdin_feeds_first_stage_part_b() {
    common::run(&["tr", "a-z", "A-Z", "|", "cat"], b"hello pipes\n")
        .assert()
        .code(0)
        .stdout("HELLO PIPES\n");
}

/// EOF reaches the last stage through every pipe: `wc` prints only once all input ended.
#[test]
fn eof_reaches_last_stage_part_b() {
    let outcome = common::run(&["cat", "|", "cat", "|", "wc", "-c"], b"12345");
    outcome.assert().code(0);
    assert_eq!(outcome.stdout_trimmed(), "5", "`{}`", outcome.command);
}

/// All stages run at once: `head` ends `yes`, and more than a pipe holds flows through.
#[rstest]
#[case::yes_head(&["yes", "|", "head", "-n", "2"], "y\ny")]
#[case::more_than_a_pipe_holds(&["seq", "1", "100000", "|", "wc", "-l"], "100000")]
fn runs_stages_at_once_part_b(#[case] args: &[&str], #[case] expected: &str) {
    let outcome = common::run(args, b"");
    outcome.assert().code(0);
    assert_eq!(outcome.stdout_trimmed(), expected, "`{}`", outcome.command);
}

/// The exit status is the last stage's, whatever the others did.
#[rstest]
#[case::exit_3(&["sh", "-c", "exit 3"], 3)]
#[case::last_exits_5(&["true", "|", "sh", "-c", "exit 5"], 5)]
#[case::first_exits_7(&["sh", "-c", "exit 7", "|", "true"], 0)]
#[case::false_then_true(&["false", "|", "true"], 0)]
#[case::true_then_false(&["true", "|", "false"], 1)]
fn status_of_last_stage_part_b(#[case] args: &[&str], #[case] status: i32) {
    common::run(args, b"").assert().code(status);
}

/// A stage killed by signal N gives 128 + N.
#[rstest]
#[case::sigterm(&["sh", "-c", "kill -TERM $$"], 143)]
#[case::sigkill_last(&["true", "|", "sh", "-c", "kill -KILL $$"], 137)]
fn killed_stage_part_b(#[case] args: &[&str], #[case] status: i32) {
    common::run(args, b"").assert().code(status).stdout("");
}

/// A missing program: its stage says so and gets 127, and the other stages still run.
#[rstest]
#[case::missing_first(&["no-such-command-pipes-lab", "|", "echo", "ran"], 0, "ran\n")]
#[case::missing_last(&["echo", "ran", "|", "no-such-command-pipes-lab"], 127, "")]
#[case::missing_alone(&["no-such-command-pipes-lab", "arg"], 127, "")]
fn command_not_found_part_b(
    #[case] args: &[&str],
    #[case] status: i32,
    #[case] stdout: &'static str,
) {
    common::run(args, b"")
        .assert()
        .code(status)
        .stdout(stdout)
        .stderr(predicate::str::contains(
            "pipeline: no-such-command-pipes-lab: command not found",
        ));
}

/// pipeline waits for every stage, not only the last: a first stage that is still busy when
/// `true` has ended is waited for, and its message still arrives.
#[test]
fn waits_for_every_stage_part_b() {
    common::run(&["sh", "-c", "sleep 0.3; echo late >&2", "|", "true"], b"")
        .assert()
        .code(0)
        .stderr("late\n");
}
