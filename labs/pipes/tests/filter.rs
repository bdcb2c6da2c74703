//! Part C: `filter` runs a program, feeding its stdin and collecting its stdout.

mod common;

use std::io::ErrorKind;

use pipes::Filtered;
use rstest::rstest;

/// A program that ignores its input: its output and status come back.
#[rstest]
#[case::echo(&["echo", "hello"], "hello\n")]
#[case::printf(&["printf", "%s-%s", "a b", "c"], "a b-c")]
#[case::seq(&["seq", "3"], "1\n2\n3\n")]
#[case::nothing(&["true"], "")]
fn output_of_program_part_c(#[case] argv: &[&str], #[case] expected: &str) {
    let out = common::filter_ok(argv, b"");
    assert_eq!(
        out,
        Filtered {
            status: 0,
            stdout: expected.into()
        },
        "filter({argv:?})"
    );
}

/// The status is the program's exit code.
#[rstest]
#[case::success(&["true"], 0)]
#[case::failure(&["false"], 1)]
#[case::exit_42(&["sh", "-c", "echo out; exit 42"], 42)]
fn status_of_program_part_c(#[case] argv: &[&str], #[case] status: i32) {
    let out = common::filter_ok(argv, b"");
    assert_eq!(out.status, status, "filter({argv:?})");
}

/// The input reaches the program's stdin, and then EOF.
#[rstest]
#[case::tr(&["tr", "a-z", "A-Z"], "hello pipes\n", "HELLO PIPES\n")]
#[case::cat(&["cat"], "line 1\nline 2\n", "line 1\nline 2\n")]
#[case::sort(&["sort"], "b\nc\na\n", "a\nb\nc\n")]
#[case::wc(&["wc", "-c"], "12345", "5")]
fn input_reaches_stdin_part_c(#[case] argv: &[&str], #[case] input: &str, #[case] expected: &str) {
    let out = common::filter_ok(argv, input.as_bytes());
    assert_eq!(out.status, 0, "filter({argv:?}, {input:?})");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .trim_start(),
        expected.trim_end_matches('\n'),
        "filter({argv:?}, {input:?})"
    );
}

/// Empty input: the program sees EOF at once.
#[rstest]
#[case::cat(&["cat"], "")]
#[case::wc(&["wc", "-c"], "0")]
fn empty_input_part_c(#[case] argv: &[&str], #[case] expected: &str) {
    let out = common::filter_ok(argv, b"");
    assert_eq!(out.status, 0, "filter({argv:?})");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        expected,
        "filter({argv:?})"
    );
}

/// A program that does not exist is an error of kind NotFound.
#[rstest]
#[case::not_in_path(&["no-such-program-pipes-lab"])]
#[case::no_such_path(&["/no/such/dir/program"])]
fn missing_program_part_c(#[case] argv: &[&str]) {
    match common::filter(argv, b"some input") {
        Err(err) => assert_eq!(err.kind(), ErrorKind::NotFound, "filter({argv:?}): {err}"),
        Ok(out) => panic!("filter({argv:?}) gave {out:?}, expected an error of kind NotFound"),
    }
}

/// An empty argv names no program: an error of kind InvalidInput.
#[test]
fn empty_argv_part_c() {
    match common::filter(&[], b"") {
        Err(err) => assert_eq!(err.kind(), ErrorKind::InvalidInput, "filter([]): {err}"),
        Ok(out) => panic!("filter([]) gave {out:?}, expected an error of kind InvalidInput"),
    }
}

/// The program's stderr is the caller's: what it writes there never comes back in `stdout`.
#[test]
fn stderr_stays_the_callers_part_c() {
    let argv = [
        "sh",
        "-c",
        "echo to-stdout; echo to-stderr-of-the-caller >&2",
    ];
    let out = common::filter_ok(&argv, b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "to-stdout\n",
        "filter({argv:?}) returned in `stdout` what the program wrote on its stderr too: the \
         program's stderr is the caller's, so the child must dup2 a pipe onto fds 0 and 1 only \
         and leave fd 2 as it inherited it"
    );
    assert_eq!(out.status, 0, "filter({argv:?})");
}
