//! Hidden tests, part C: `filter` leaks nothing, however often it is called, and a call on
//! one thread never hands its pipe ends to the program another thread starts.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use testkit::procfs::{self, FdKind};

/// What to do about a descriptor, process or thread that `filter` leaves behind.
const LEAK_ADVICE: &str = "filter must close every pipe end it made: the child's ends in the \
parent right after fork, its own write end once the input is written, the child's stdout pipe \
once it has read EOF (and the exec-error pipe), and it must waitpid for the child before it \
returns";

/// 300 calls of `filter(["cat"], ...)` leave no descriptor, child, zombie or thread behind.
#[test]
fn filter_leaks_nothing_part_c() {
    testkit::assert_no_leak(300, "filter", LEAK_ADVICE, |i| {
        let input = format!("call {i}\n");
        let out = common::filter_ok(&["cat"], input.as_bytes());
        testkit::assert_same_bytes(
            &format!("filter([\"cat\"], {input:?})"),
            input.as_bytes(),
            &out.stdout,
        );
    });
}

/// 300 calls of `filter` on a missing program (an `Err` each time) leak nothing either.
#[test]
fn failed_calls_leak_nothing_part_c() {
    testkit::assert_no_leak(
        300,
        "filter on a missing program",
        LEAK_ADVICE,
        |_| {
            let err = common::filter(&["no-such-program-pipes-lab"], b"input");
            testkit::expect_err_kind(
                err,
                "filter([\"no-such-program-pipes-lab\"])",
                std::io::ErrorKind::NotFound,
            );
        },
    );
}

/// The fds `ls /proc/self/fd` lists: stdio, plus the one `ls` opens to read the directory.
fn listed_fds(stdout: &[u8]) -> BTreeSet<i32> {
    String::from_utf8_lossy(stdout)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Many threads call `filter(["ls", "/proc/self/fd"])` at once, again and again: every
/// `ls` sees only 0, 1, 2 and the directory it opened itself, never a pipe end of a call
/// on another thread (which it gets if the pipes are marked close-on-exec only after they
/// are made: another thread may fork in between).
#[test]
fn concurrent_calls_share_no_pipe_end_part_c() {
    const THREADS: usize = 12;
    // The race is short: keep trying for a while, bounded, and stop at the first leak.
    const FOR: Duration = Duration::from_secs(3);
    let direct = std::process::Command::new("ls")
        .arg("/proc/self/fd")
        .output()
        .expect("cannot run ls");
    let expected = listed_fds(&direct.stdout);
    // Where the pipe ends of this process are, to name them when they turn up in `ls`.
    let found = common::within_deadline(
        "12 threads calling filter([\"ls\", \"/proc/self/fd\"]) for 3 s",
        common::FILTER_HINT,
        move || {
            let barrier = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let barrier = Arc::clone(&barrier);
                    let expected = expected.clone();
                    thread::spawn(move || {
                        barrier.wait();
                        let end = Instant::now() + FOR;
                        let mut calls = 0;
                        while Instant::now() < end {
                            calls += 1;
                            let out = match pipes::filter(&["ls", "/proc/self/fd"], b"") {
                                Ok(out) => out,
                                Err(e) => {
                                    return Err(Failure::Call(format!(
                                        "thread {t}, call {calls} of filter([\"ls\", \"/proc/self/fd\"]) \
                                         failed: {e}"
                                    )));
                                }
                            };
                            let seen = listed_fds(&out.stdout);
                            if seen != expected {
                                let extra: Vec<i32> =
                                    seen.difference(&expected).copied().collect();
                                return Err(Failure::Inherited(format!(
                                    "thread {t}, call {calls}: `ls /proc/self/fd` run by filter \
                                     listed fds {seen:?}, started directly it lists {expected:?}; \
                                     the extra fds {extra:?} are pipe ends of another thread's \
                                     call, inherited through fork"
                                )));
                            }
                        }
                        Ok(calls)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|h| h.join().expect("a thread panicked"))
                .collect::<Vec<_>>()
        },
    );
    for result in found {
        match result {
            Ok(_) => {}
            Err(Failure::Call(why)) => panic!("{why}; {LEAK_ADVICE}"),
            Err(Failure::Inherited(why)) => panic!(
                "{why}. A pipe made with pipe() and then marked close-on-exec with fcntl() is \
                 inheritable in between, and another thread may fork right then: create every \
                 pipe with pipe2(O_CLOEXEC), the only way that leaves no such moment"
            ),
        }
    }
}

/// How a call of [`concurrent_calls_share_no_pipe_end_part_c`] went wrong.
enum Failure {
    /// filter returned an error.
    Call(String),
    /// `ls` saw a descriptor it should not have.
    Inherited(String),
}

/// After `filter` returns, this process holds no pipe end it made, even on error paths.
#[test]
fn no_pipe_end_survives_a_call_part_c() {
    let _serial = testkit::leak::serial();
    let pipes_now = || {
        procfs::fds("self")
            .into_iter()
            .filter(|f| matches!(f.kind, FdKind::PipeRead(_) | FdKind::PipeWrite(_)))
            .count()
    };
    let before = pipes_now();
    let _ = common::filter_ok(&["head", "-c", "1"], &common::data(1 << 20, 31));
    let _ = common::filter(&["/"], b"x");
    let after = pipes_now();
    assert!(
        after <= before,
        "{} pipe ends more are open after two calls of filter (one that stops reading its \
         input, one that cannot exec): {LEAK_ADVICE}",
        after - before
    );
}

/// Every pipe `filter` makes is close-on-exec from the moment it exists. On a thread where the
/// kernel refuses (EPERM) any pipe made without O_CLOEXEC, by a seccomp filter, `filter` must
/// still work: this judges the moment the race above can only hope to hit.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_pipe_is_close_on_exec_from_its_creation_part_c() {
    let result = thread::spawn(|| {
        refuse_inheritable_pipes();
        pipes::filter(&["cat"], b"through cat")
    })
    .join()
    .expect("the thread calling filter panicked");
    match result {
        Ok(out) => assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "through cat",
            "filter([\"cat\"], \"through cat\") on a thread where only pipes made with \
             O_CLOEXEC are allowed returned another output"
        ),
        Err(e) => panic!(
            "filter([\"cat\"], ...) failed with `{e}` on a thread where the kernel refuses every \
             pipe made without O_CLOEXEC (a pipe() followed by fcntl(FD_CLOEXEC) is inheritable \
             in between, and another thread may fork right then): create every pipe with \
             pipe2(O_CLOEXEC)"
        ),
    }
}

/// Installs, on this thread only (and what it forks), a seccomp filter under which `pipe`
/// and a `pipe2` without O_CLOEXEC fail with EPERM; every other call is allowed.
#[cfg(target_arch = "x86_64")]
fn refuse_inheritable_pipes() {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // struct seccomp_data: the call's number at offset 0, its arguments from offset 16, eight
    // bytes each (the low half first on x86_64).
    let (nr, flags) = (0, 16 + 8);
    let refuse = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let program = [
        stmt(BPF_LD | BPF_W | BPF_ABS, nr),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_pipe as u32, 3, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_pipe2 as u32, 0, 3),
        stmt(BPF_LD | BPF_W | BPF_ABS, flags),
        jump(BPF_JMP | BPF_JSET | BPF_K, libc::O_CLOEXEC as u32, 1, 0),
        stmt(BPF_RET | BPF_K, refuse),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut sock_filter,
    };
    // SAFETY: prctl with plain integers, and a pointer to a filter that outlives the call
    // (the kernel copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0, "no_new_privs");
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
                0,
                0
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}
