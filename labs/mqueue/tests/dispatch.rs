//! Part C: `mq-dispatch` runs jobs through forked workers and prints one result per job.

mod common;

use common::{job, run_dispatch};
use predicates::prelude::*;
use rstest::rstest;

/// Each job's payload comes back reversed, after its line number.
#[rstest]
#[case::one(&[(9, "hello")])]
#[case::three(&[(1, "abc"), (5, "queue"), (0, "x y z")])]
#[case::unicode(&[(4, "héllo wörld")])]
#[case::empty_payload(&[(2, "")])]
fn reverses_payloads_part_c(#[case] jobs: &[(u8, &str)]) {
    let (input, mut want): (Vec<String>, Vec<String>) = jobs
        .iter()
        .enumerate()
        .map(|(i, (p, payload))| job(i + 1, *p, payload))
        .unzip();
    let out = run_dispatch(&["--workers", "2"], (input.join("\n") + "\n").as_bytes());
    assert!(
        out.status.success(),
        "`{}` {}: {}",
        out.command,
        out.status,
        out.stderr
    );
    want.sort();
    let mut got = out.sorted_results();
    got.sort();
    assert_eq!(got, want, "`{}`: the result lines", out.command);
}

/// 500 jobs, 2 workers, queues of 10: every job gets exactly one result.
#[rstest]
#[case::one_worker(1)]
#[case::two_workers(2)]
#[case::five_workers(5)]
fn every_job_one_result_part_c(#[case] workers: usize) {
    let (input, want): (Vec<String>, Vec<String>) = (0..500)
        .map(|i| job(i + 1, (i % 10) as u8, &format!("job number {i}")))
        .unzip();
    let n = workers.to_string();
    let out = run_dispatch(&["--workers", &n], (input.join("\n") + "\n").as_bytes());
    assert!(
        out.status.success(),
        "`{}` {}: {}",
        out.command,
        out.status,
        out.stderr
    );
    assert_eq!(
        out.sorted_results(),
        want,
        "`{}`: one result per job",
        out.command
    );
}

/// A line that does not parse is reported with its line number and skipped; the status
/// is 1, and the other jobs still run.
#[test]
fn bad_line_reported_part_c() {
    let out = run_dispatch(&["--workers", "2"], b"1 good\nnot a job\n3 also good\n");
    assert_eq!(
        out.status.code(),
        Some(1),
        "`{}`: {}",
        out.command,
        out.stderr
    );
    assert!(
        predicate::str::contains("line 2").eval(&out.stderr),
        "stderr must name the bad line: `mq-dispatch: line 2: <reason>`; it was {:?}",
        out.stderr
    );
    assert_eq!(out.sorted_results(), ["1 doog", "3 doog osla"]);
}

/// No input: no output, status 0.
#[test]
fn empty_input_part_c() {
    let out = run_dispatch(&["--workers", "3"], b"");
    assert!(
        out.status.success(),
        "`{}` {}: {}",
        out.command,
        out.status,
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

/// Usage errors: status 2 and the usage on stderr.
#[rstest]
#[case::no_args(&[])]
#[case::no_number(&["--workers"])]
#[case::zero(&["--workers", "0"])]
#[case::not_a_number(&["--workers", "many"])]
#[case::unknown_option(&["--threads", "2"])]
fn usage_errors_part_c(#[case] args: &[&str]) {
    let out = run_dispatch(args, b"1 x\n");
    assert_eq!(
        out.status.code(),
        Some(2),
        "`{}`: {}",
        out.command,
        out.stderr
    );
    assert!(
        out.stderr.contains("usage"),
        "`{}`: the usage must be on stderr, which was {:?}",
        out.command,
        out.stderr
    );
}

/// Once mq-dispatch has exited, both of its queues are gone.
#[rstest]
#[case::after_jobs(b"1 a\n2 b\n3 c\n")]
#[case::after_bad_input(b"oops\n")]
fn queues_removed_part_c(#[case] input: &[u8]) {
    let out = run_dispatch(&["--workers", "2"], input);
    assert!(
        out.left_queues.is_empty(),
        "`{}` exited ({}) but left {:?} behind (removed by the test). A queue outlives its \
         processes: mq_unlink both queues before exiting.",
        out.command,
        out.status,
        out.left_queues
    );
}
