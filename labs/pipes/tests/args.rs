//! Part A: the command line (`parse_args`), statuses (`status_code`, `pipeline_status`),
//! and what the `pipeline` binary does with a usage error.

mod common;

use std::ffi::OsString;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use pipes::{Plan, UsageError, parse_args, pipeline_status, status_code};
use predicates::prelude::*;
use rstest::rstest;

fn os_args(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn plan(pipefail: bool, stages: &[&[&str]]) -> Plan {
    Plan {
        pipefail,
        stages: stages.iter().map(|stage| os_args(stage)).collect(),
    }
}

/// A well-formed command line becomes one stage per `|`-separated group, arguments intact.
#[rstest]
#[case::one_stage(&["echo", "hi"], plan(false, &[&["echo", "hi"]]))]
#[case::program_alone(&["true"], plan(false, &[&["true"]]))]
#[case::two_stages(
    &["echo", "hi", "|", "wc", "-c"],
    plan(false, &[&["echo", "hi"], &["wc", "-c"]])
)]
#[case::many_stages(
    &["cat", "|", "sort", "-r", "|", "head", "-n", "2", "|", "tr", "a-z", "A-Z"],
    plan(false, &[&["cat"], &["sort", "-r"], &["head", "-n", "2"], &["tr", "a-z", "A-Z"]])
)]
#[case::pipefail(
    &["--pipefail", "false", "|", "true"],
    plan(true, &[&["false"], &["true"]])
)]
#[case::pipefail_later_is_an_argument(
    &["echo", "--pipefail"],
    plan(false, &[&["echo", "--pipefail"]])
)]
#[case::odd_arguments_kept(
    &["printf", "%s\\n", "a b", "", "a|b", "||"],
    plan(false, &[&["printf", "%s\\n", "a b", "", "a|b", "||"]])
)]
fn parse_args_splits_stages_part_a(#[case] args: &[&str], #[case] expected: Plan) {
    assert_eq!(
        parse_args(os_args(args)),
        Ok(expected),
        "parse_args({args:?})"
    );
}

/// A command line that is not a pipeline is the matching `UsageError`.
#[rstest]
#[case::nothing(&[], UsageError::NoStage)]
#[case::only_pipefail(&["--pipefail"], UsageError::NoStage)]
#[case::bar_first(&["|", "wc", "-c"], UsageError::LeadingBar)]
#[case::bar_first_after_pipefail(&["--pipefail", "|", "wc"], UsageError::LeadingBar)]
#[case::bar_alone(&["|"], UsageError::LeadingBar)]
#[case::bar_last(&["echo", "hi", "|"], UsageError::TrailingBar)]
#[case::two_bars(&["echo", "hi", "|", "|", "wc"], UsageError::EmptyStage { index: 1 })]
#[case::two_bars_later(
    &["echo", "|", "cat", "|", "|", "wc"],
    UsageError::EmptyStage { index: 2 }
)]
fn parse_args_rejects_part_a(#[case] args: &[&str], #[case] expected: UsageError) {
    assert_eq!(
        parse_args(os_args(args)),
        Err(expected),
        "parse_args({args:?})"
    );
}

/// The pipeline's status is the last stage's, or with pipefail the rightmost non-zero one.
#[rstest]
#[case::one_ok(&[0], false, 0)]
#[case::one_failed(&[3], false, 3)]
#[case::false_then_true(&[1, 0], false, 0)]
#[case::true_then_false(&[0, 1], false, 1)]
#[case::last_of_many(&[2, 3, 4], false, 4)]
#[case::killed_first_stage(&[141, 0], false, 0)]
#[case::pipefail_false_then_true(&[1, 0], true, 1)]
#[case::pipefail_rightmost_non_zero(&[2, 3, 0], true, 3)]
#[case::pipefail_all_ok(&[0, 0, 0], true, 0)]
#[case::pipefail_killed_first_stage(&[141, 0], true, 141)]
#[case::pipefail_last_fails(&[1, 0, 5], true, 5)]
fn pipeline_status_part_a(#[case] statuses: &[i32], #[case] pipefail: bool, #[case] expected: i32) {
    assert_eq!(
        pipeline_status(statuses, pipefail),
        expected,
        "pipeline_status({statuses:?}, pipefail: {pipefail})"
    );
}

/// A wait status is the exit code, 128 + N for signal N, and nothing if the child lives on.
#[rstest]
#[case::exited_ok(WaitStatus::Exited(Pid::from_raw(7), 0), Some(0))]
#[case::exited_3(WaitStatus::Exited(Pid::from_raw(7), 3), Some(3))]
#[case::exited_255(WaitStatus::Exited(Pid::from_raw(7), 255), Some(255))]
#[case::sigterm(
    WaitStatus::Signaled(Pid::from_raw(7), Signal::SIGTERM, false),
    Some(143)
)]
#[case::sigpipe(
    WaitStatus::Signaled(Pid::from_raw(7), Signal::SIGPIPE, false),
    Some(141)
)]
#[case::sigkill_core(
    WaitStatus::Signaled(Pid::from_raw(7), Signal::SIGSEGV, true),
    Some(139)
)]
#[case::stopped(WaitStatus::Stopped(Pid::from_raw(7), Signal::SIGSTOP), None)]
#[case::continued(WaitStatus::Continued(Pid::from_raw(7)), None)]
#[case::still_alive(WaitStatus::StillAlive, None)]
fn status_code_part_a(#[case] status: WaitStatus, #[case] expected: Option<i32>) {
    assert_eq!(status_code(status), expected, "status_code({status:?})");
}

/// A usage error: `pipeline` exits 2 with the usage on stderr, and runs no stage.
#[rstest]
#[case::nothing(&[])]
#[case::only_pipefail(&["--pipefail"])]
#[case::bar_first(&["|", "echo", "ran"])]
#[case::bar_last(&["echo", "ran", "|"])]
#[case::empty_stage(&["echo", "ran", "|", "|", "cat"])]
fn usage_error_runs_nothing_part_a(#[case] args: &[&str]) {
    common::run(args, b"")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("usage: pipeline"));
}
