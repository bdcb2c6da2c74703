//! Hidden tests, part B: edge cases of pipelines.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

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
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    assert!(
        outcome.status.code() == Some(0) && outcome.stdout == [0xff, 0xfe, b'x'],
        "`pipeline printf %s ARG '|' cat`, where ARG is the bytes ff fe 78 (not UTF-8): \
         expected printf to get ARG byte for byte and status 0, got {} with stdout {:02x?} and \
         stderr {:?}. Build each argument's C string from its bytes (OsStr::as_bytes), never \
         through str or String, which cannot hold it",
        exit_status(outcome.status),
        outcome.stdout,
        stderr
            .lines()
            .filter(|l| !l.is_empty())
            .take(2)
            .collect::<Vec<_>>(),
    );
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

/// The `pipeline` binary under test, as a path.
fn pipeline_path() -> OsString {
    Command::cargo_bin("pipeline")
        .unwrap_or_else(|err| panic!("cannot find the pipeline binary: {err}"))
        .get_program()
        .to_owned()
}

/// A pipe that cannot be created once the first stage runs (`ulimit -n` leaves room for one
/// pipe only): one line `pipeline: <why>` on stderr, exit 1, and the stage already started
/// is killed and waited for, not left running.
#[test]
fn pipe_fails_halfway_part_b() {
    // The shell finds the two lowest free fds a < b and allows fds below b + 1 only:
    // pipeline's first pipe gets a and b; its second finds one free fd, not two (EMFILE).
    let script = r#"a=; k=3
while :; do
  if [ ! -h /proc/$$/fd/$k ]; then
    if [ -z "$a" ]; then a=$k; else break; fi
  fi
  k=$((k + 1))
done
ulimit -n $((k + 1)) && exec "$0" "$@""#;
    let stages = ["sleep", "30", "|", "cat", "|", "cat"];
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(pipeline_path()).args(stages);
    let what = "pipeline sleep 30 '|' cat '|' cat, under `ulimit -n` that leaves room for one pipe";
    let done = testkit::run(
        &mut cmd,
        what,
        b"",
        common::DEADLINE,
        "When a pipe or a fork fails, pipeline kills (SIGKILL) and waits for the stages it \
         has already started, then exits 1 with one line on stderr.",
    );
    let stderr = String::from_utf8_lossy(&done.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let advice = "Return the error of pipe2 or fork to main (no unwrap, expect or panic), which \
                  prints it on one line and exits 1";
    assert!(
        done.status.code() == Some(1),
        "`{what}`: its second pipe cannot be created (EMFILE), which is a runtime error: \
         expected exit 1 and one line `pipeline: <why>` on stderr, got {} and on stderr \
         {stderr:?}. {advice}",
        exit_status(done.status),
    );
    assert!(
        done.strays.is_empty(),
        "`{what}` exited 1 as it should when its second pipe failed, but the stage it had \
         already started was still running:\n{}When a pipe or a fork fails halfway, kill \
         (SIGKILL) and waitpid every stage already started before returning the error: \
         nothing may outlive a pipeline that could not be built.",
        done.strays
    );
    assert!(
        lines.len() == 1 && lines[0].starts_with("pipeline: "),
        "`{what}`: its second pipe cannot be created (EMFILE): it exited 1 as it should, but \
         a runtime error is one line `pipeline: <why>` on stderr, and it printed {} line(s): \
         {stderr:?}. {advice}",
        lines.len(),
    );
}

/// An exit status in words: "status 1", "killed by signal 9".
fn exit_status(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{status}"),
    }
}

/// SIGINT or SIGTERM sent to pipeline's process group (what Ctrl-C in a terminal does)
/// ends pipeline and every stage at once: no stage starts with the signal ignored.
#[rstest]
#[case::sigint(Signal::SIGINT)]
#[case::sigterm(Signal::SIGTERM)]
fn signal_ends_every_stage_part_b(#[case] sig: Signal) {
    const WITHIN: Duration = Duration::from_secs(2);
    let what = "pipeline sleep 30 '|' sleep 30";
    let mut cmd = Command::cargo_bin("pipeline")
        .unwrap_or_else(|err| panic!("cannot find the pipeline binary: {err}"));
    cmd.args(["sleep", "30", "|", "sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut group = testkit::Group::spawn(&mut cmd, what);
    let pid = group.pid();
    // Both stages have exec'd `sleep` before the signal is sent.
    let start = Instant::now();
    loop {
        let sleeping = testkit::procfs::children(pid)
            .iter()
            .filter(|child| child.comm == "sleep")
            .count();
        if sleeping == 2 {
            break;
        }
        if start.elapsed() > common::DEADLINE || group.exited_within(Duration::ZERO) {
            let report = group.hang_report();
            group.kill();
            panic!(
                "`{what}` did not have its two stages running `sleep` within {}: {sleeping} \
                 did. Its processes:\n{report}",
                testkit::deadline::secs(common::DEADLINE)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = killpg(Pid::from_raw(pid), sig);
    let sent = Instant::now();
    let exited = group.exited_within(WITHIN);
    // The stages end on their own: wait, within the same time, until none runs any more.
    let mut strays = group.strays();
    while !strays.is_empty() && sent.elapsed() < WITHIN {
        std::thread::sleep(Duration::from_millis(5));
        strays = group.strays();
    }
    if !exited || !strays.is_empty() {
        let report = group.hang_report();
        group.kill();
        panic!(
            "`{what}`: {sig} sent to its process group (as Ctrl-C in a terminal) did not end \
             {} within {}. Still running:\n{report}A stage starts with every signal pipeline \
             ignores still ignored (exec keeps SIG_IGN): pipeline must leave {sig} at its \
             default action, or reset it to SIG_DFL in each child before exec, as it does \
             for SIGPIPE.",
            match (exited, strays.is_empty()) {
                (false, false) => "pipeline nor its stages",
                (false, true) => "pipeline",
                _ => "every stage",
            },
            testkit::deadline::secs(WITHIN)
        );
    }
    let status = group.wait_timeout(Duration::ZERO).expect("it has exited");
    assert_eq!(
        status.signal(),
        Some(sig as i32),
        "`{what}` ended with {} after {sig} to its process group; expected it to be killed by \
         {sig}, as bash's `sleep 30 | sleep 30` is",
        exit_status(status)
    );
}
