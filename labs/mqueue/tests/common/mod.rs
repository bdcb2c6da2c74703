//! Helpers shared by the tests: unique queue names that are removed whatever happens,
//! calls under a deadline, and `run_dispatch`, which runs `mq-dispatch` in its own process
//! group, kills the whole group at a deadline and removes the queues it may have left.
//!
//! The helpers remove queues with the system calls themselves, never with your code, so a
//! bug in your `unlink` or `remove` cannot leave queues behind on your machine.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

/// How long one library call or one `mq-dispatch` run may take. Every scenario here ends
/// in well under a second when the code is right.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// A POSIX queue name for one test, `/mqlab-test-<pid>-<counter>`, unlinked on drop.
pub struct QueueName(pub String);

impl QueueName {
    /// A name no other test, and no other test process, uses.
    pub fn new() -> QueueName {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        QueueName(format!("/mqlab-test-{}-{n}", std::process::id()))
    }

    /// The name, as `Mailbox::create` takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for QueueName {
    fn drop(&mut self) {
        let _ = nix::mqueue::mq_unlink(self.0.as_str());
    }
}

/// Whether a POSIX queue of this name exists now (checked with `mq_open` itself).
pub fn queue_exists(name: &str) -> bool {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_open};
    use nix::sys::stat::Mode;
    match mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None) {
        Ok(q) => {
            let _ = mq_close(q);
            true
        }
        Err(e) => e != nix::errno::Errno::ENOENT,
    }
}

/// A System V queue id, removed (`IPC_RMID`) on drop.
pub struct SysvGuard(pub i32);

impl Drop for SysvGuard {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no buffer; an id already removed gives EINVAL, ignored.
        unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// Calls `f` on a thread and returns its result, or fails the test if it takes longer
/// than [`DEADLINE`]: a call that waits for good (a full queue, an empty one) is a failure
/// with `hint` and what this test's threads wait in, not a hang.
#[track_caller]
pub fn within_deadline<T: Send + 'static>(
    what: &str,
    hint: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    testkit::within(what, DEADLINE, hint, f)
}

/// What one `mq-dispatch` run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, for messages.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// The queues `/mq-dispatch-PID-jobs` and `-results` that still existed once it had
    /// exited (removed by this helper).
    pub left_queues: Vec<String>,
}

impl Outcome {
    /// The result lines, sorted by line number.
    pub fn sorted_results(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.stdout.lines().map(str::to_owned).collect();
        lines.sort_by_key(|l| {
            l.split_once(' ')
                .and_then(|(n, _)| n.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        });
        lines
    }
}

/// Runs `mq-dispatch ARGS...` with `stdin`, in its own process group, and returns what it
/// did. Past [`DEADLINE`] the test fails with what each process of the group waits for,
/// and the whole group is killed. Its queues (named
/// after its pid) are removed afterwards, whatever happened.
#[track_caller]
pub fn run_dispatch(args: &[&str], stdin: &[u8]) -> Outcome {
    let command = format!("mq-dispatch {}", args.join(" "));
    let mut cmd = Command::cargo_bin("mq-dispatch")
        .unwrap_or_else(|e| panic!("cannot find the mq-dispatch binary: {e}"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own group, which its workers join: one kill reaches them all, on drop too.
    let mut group = testkit::Group::spawn(&mut cmd, command.clone());
    let pid = group.pid();
    let names = [
        format!("/mq-dispatch-{pid}-jobs"),
        format!("/mq-dispatch-{pid}-results"),
    ];
    // Whatever happens from here on (a panic included), the group dies and the queues go.
    let _cleanup = Cleanup {
        names: names.clone(),
    };
    let mut input = group.child().stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let reader = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(
        group.child().stdout.take().expect("stdout is piped"),
    ));
    let err = reader(Box::new(
        group.child().stderr.take().expect("stderr is piped"),
    ));
    let status = group.wait_or_explain(
        DEADLINE,
        "A dispatcher that blocks sending to the full job queue while its workers block \
         sending to the full result queue waits forever: keep draining results.",
    );
    // Workers still running hold stdout open: kill them before reading to the end.
    group.kill();
    let left_queues: Vec<String> = names.iter().filter(|n| queue_exists(n)).cloned().collect();
    Outcome {
        command,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        left_queues,
    }
}

struct Cleanup {
    names: [String; 2],
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = nix::mqueue::mq_unlink(name.as_str());
        }
    }
}

/// The input line of a job and the result line `mq-dispatch` must print for it.
pub fn job(line: usize, priority: u8, payload: &str) -> (String, String) {
    let reversed: String = payload.chars().rev().collect();
    (
        format!("{priority} {payload}"),
        format!("{line} {reversed}"),
    )
}
