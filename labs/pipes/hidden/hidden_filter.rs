//! Hidden tests, part C: `filter` under load: big inputs and outputs, programs that do not
//! read, many threads at once.

mod common;

use std::io::ErrorKind;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;

use pipes::Filtered;
use rstest::rstest;

/// Why a big `filter` call hangs, most of the time.
const DEADLOCK_HINT: &str = "filter must read the program's output while it writes its input. \
A pipe holds 64 KiB: once the program's stdout pipe is full it blocks writing and stops reading \
its stdin, and a filter that writes all its input before reading blocks too, forever. Use \
poll(2) on both fds with the write end non-blocking, or a writer thread.";

/// 64 MiB through `cat` come back whole, in order, without deadlock.
#[test]
fn cat_64_mib_part_c() {
    let input = common::data(64 << 20, 21);
    // The input comes back from the thread, so that it is not held twice in memory.
    let (input, out) = common::within_deadline(
        "filter([\"cat\"], 64 MiB of input)",
        DEADLOCK_HINT,
        move || {
            let out = pipes::filter(&["cat"], &input);
            (input, out)
        },
    );
    let out = testkit::Expect::expect_success(out, "filter([\"cat\"], 64 MiB)");
    assert_eq!(out.status, 0, "filter([\"cat\"], 64 MiB): status");
    testkit::assert_same_bytes("filter([\"cat\"], 64 MiB)", &input, &out.stdout);
}

/// 1 MiB into `wc -c`: every byte is counted, so all of it reached the program's stdin.
#[test]
fn wc_counts_a_mebibyte_part_c() {
    let input = common::data(1 << 20, 22);
    let out = common::filter_ok(&["wc", "-c"], &input);
    assert_eq!(out.status, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1048576");
}

/// A program that writes a lot and never reads its big input: no deadlock, all its output.
#[rstest]
#[case::head_of_zero(&["head", "-c", "1000000", "/dev/zero"], 1_000_000)]
#[case::shell_pipeline(&["sh", "-c", "yes | head -c 2000000"], 2_000_000)]
fn writes_without_reading_part_c(#[case] argv: &'static [&'static str], #[case] len: usize) {
    let input = common::data(1 << 20, 23);
    let out = common::within_deadline(
        &format!("filter({argv:?}, 1 MiB of input)"),
        DEADLOCK_HINT,
        move || pipes::filter(argv, &input),
    );
    let out = testkit::Expect::expect_success(out, &format!("filter({argv:?}, 1 MiB)"));
    assert_eq!(out.status, 0, "filter({argv:?}): status");
    assert_eq!(out.stdout.len(), len, "filter({argv:?}): bytes of output");
}

/// A program that reads only part of its input: the rest is dropped, and that is no error.
#[rstest]
#[case::head(&["head", "-c", "10"], 10)]
#[case::true_(&["true"], 0)]
#[case::closes_stdin(&["sh", "-c", "exec 0<&-; echo done"], 5)]
fn reads_part_of_input_part_c(#[case] argv: &[&str], #[case] len: usize) {
    let input = common::data(1 << 20, 24);
    let out = common::filter_ok(argv, &input);
    assert_eq!(out.status, 0, "filter({argv:?}): status");
    assert_eq!(out.stdout.len(), len, "filter({argv:?}): bytes of output");
    if argv[0] == "head" {
        assert_eq!(out.stdout, input[..len], "filter({argv:?})");
    }
}

/// A large output and a failing status come back together.
#[test]
fn big_output_and_status_part_c() {
    let argv = ["sh", "-c", "head -c 3000000 /dev/zero; exit 3"];
    let out = common::filter_ok(&argv, b"");
    assert_eq!(out.status, 3, "filter({argv:?}): status");
    assert_eq!(
        out.stdout.len(),
        3_000_000,
        "filter({argv:?}): bytes of output"
    );
}

/// 8 threads call filter at once, several times each, each with its own input: each gets
/// exactly its own output back.
#[test]
fn eight_threads_part_c() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 4;
    let results = common::within_deadline(
        "8 threads each calling filter([\"tr\", \"a-z\", \"A-Z\"]) 4 times",
        "Each call's pipes must be O_CLOEXEC (pipe2): otherwise a program started by another \
         thread inherits this call's ends, and this call's program never sees EOF. And filter \
         must read while it writes.",
        || {
            let barrier = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|i| {
                    let barrier = Arc::clone(&barrier);
                    thread::Builder::new()
                        .name(format!("filter-call-{i}"))
                        .spawn(move || {
                            barrier.wait();
                            (0..ROUNDS)
                                .map(|round| {
                                    let input =
                                        lowercase(150_000 + 7_000 * i, (i * 10 + round) as u64);
                                    let out = pipes::filter(&["tr", "a-z", "A-Z"], &input);
                                    (i, round, input, out)
                                })
                                .collect::<Vec<_>>()
                        })
                        .expect("cannot spawn a thread")
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("a thread panicked"))
                .collect::<Vec<_>>()
        },
    );
    for (i, round, input, out) in results {
        let what = format!("thread {i}, call {round}: filter([\"tr\", \"a-z\", \"A-Z\"])");
        let out = out.unwrap_or_else(|err| panic!("{what} failed: {err}"));
        assert_eq!(out.status, 0, "{what}: status");
        testkit::assert_same_bytes(&what, &input.to_ascii_uppercase(), &out.stdout);
    }
}

/// A program killed by signal N: status 128 + N.
#[rstest]
#[case::sigterm(&["sh", "-c", "kill -TERM $$"], 143)]
#[case::sigkill_after_reading(&["sh", "-c", "head -c 100 >/dev/null; kill -KILL $$"], 137)]
fn killed_program_part_c(#[case] argv: &[&str], #[case] status: i32) {
    let out = common::filter_ok(argv, &common::data(200_000, 25));
    assert_eq!(out.status, status, "filter({argv:?}): status");
}

/// The program starts with SIGPIPE at its default action, though the caller ignores it.
#[test]
fn program_sigpipe_default_part_c() {
    let out = common::filter_ok(&["cat", "/proc/self/status"], b"");
    let status = String::from_utf8_lossy(&out.stdout);
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).expect("SigIgn is hex"))
        .expect("no SigIgn line in /proc/self/status");
    assert_eq!(
        mask & (1 << (libc::SIGPIPE - 1)),
        0,
        "the program started with SIGPIPE ignored (SigIgn: {mask:016x}); reset it to SIG_DFL \
         in the child before exec"
    );
}

/// The program gets the same fds as one started directly: no pipe end of filter leaks.
#[test]
fn program_gets_only_stdio_part_c() {
    let direct = Command::new("ls")
        .arg("/proc/self/fd")
        .output()
        .expect("cannot run ls");
    let fds = |bytes: &[u8]| {
        let mut fds: Vec<i32> = String::from_utf8_lossy(bytes)
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        fds.sort_unstable();
        fds
    };
    let out = common::filter_ok(&["ls", "/proc/self/fd"], b"");
    assert_eq!(
        fds(&out.stdout),
        fds(&direct.stdout),
        "the fds of `ls` run by filter (left) differ from those of `ls` started directly \
         (right): the extra ones are pipe ends it inherited; create every pipe with O_CLOEXEC"
    );
}

/// A program that is missing, or cannot be executed, is an error of the matching kind, and
/// a later call still works.
#[rstest]
#[case::not_in_path(&["no-such-program-pipes-lab", "arg"], ErrorKind::NotFound)]
#[case::absolute_path(&["/no/such/program"], ErrorKind::NotFound)]
#[case::directory(&["/"], ErrorKind::PermissionDenied)]
fn cannot_run_part_c(#[case] argv: &[&str], #[case] kind: ErrorKind) {
    match common::filter(argv, &common::data(100_000, 26)) {
        Err(err) => assert_eq!(err.kind(), kind, "filter({argv:?}): {err}"),
        Ok(out) => panic!("filter({argv:?}) gave {out:?}, expected an error of kind {kind:?}"),
    }
    let after = common::filter_ok(&["echo", "still works"], b"");
    assert_eq!(
        after,
        Filtered {
            status: 0,
            stdout: b"still works\n".to_vec()
        }
    );
}

/// `len` lowercase letters and newlines, deterministic for a seed.
fn lowercase(len: usize, seed: u64) -> Vec<u8> {
    common::data(len, seed)
        .into_iter()
        .map(|b| match b % 27 {
            26 => b'\n',
            letter => b'a' + letter,
        })
        .collect()
}
