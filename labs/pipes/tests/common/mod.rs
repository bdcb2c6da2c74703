//! Helpers shared by the tests: `run` starts `pipeline` and `within_deadline` calls
//! `filter`, both under a real deadline that kills every process left over, and a hang is
//! explained in terms of processes, pipes and their ends, as `/proc` shows them.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::assert::{Assert, OutputAssertExt};
use assert_cmd::cargo::CommandCargoExt;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

mod procs;
use procs::{ProcInfo, children_running, describe_hang, describe_own_threads, group_members};

/// How long one `pipeline` run or one `filter` call may take. Every scenario here ends in
/// well under a second when the code is right.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// How much of each output stream `run` keeps; the rest is read and dropped.
const CAPTURE_LIMIT: usize = 16 << 20;

/// The advice that goes with a pipeline's hang.
const CLOSE_ADVICE: &str = "Every process must close the pipe ends it does not use: the \
parent right after each fork, each child before exec (or let O_CLOEXEC do it).";

/// What a `pipeline` run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, quoted as in a shell, for messages.
    pub command: String,
    /// How `pipeline` ended.
    pub status: ExitStatus,
    /// Everything it wrote on stdout (at most 16 MiB).
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr (at most 16 MiB).
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// assert_cmd's assertions on this outcome: `.code(0).stdout("HELLO\n")`.
    pub fn assert(&self) -> Assert {
        Output {
            status: self.status,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
        .assert()
        .append_context("command", self.command.clone())
    }

    /// stdout as text, with surrounding whitespace removed (`wc` pads its numbers on some
    /// systems).
    pub fn stdout_trimmed(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }
}

/// Runs `pipeline ARGS...` with `stdin` as its standard input and returns what it did.
///
/// `pipeline` runs in its own process group, with the whole of `stdin` fed and its stdout
/// and stderr read on threads, so no pipe between the test and `pipeline` can block it.
/// If it has not ended, and closed its stdout and stderr, within [`DEADLINE`], the test
/// fails with a description of every process of the group (what it waits for, which pipe
/// ends it holds), after the whole group is killed. It also fails if `pipeline` exits while
/// a stage it started still runs.
#[track_caller]
pub fn run<S: AsRef<OsStr>>(args: &[S], stdin: &[u8]) -> Outcome {
    let args: Vec<OsString> = args.iter().map(|arg| arg.as_ref().to_owned()).collect();
    let command = shell_quote("pipeline", &args);
    let mut cmd = Command::cargo_bin("pipeline")
        .unwrap_or_else(|err| panic!("cannot find the pipeline binary: {err}"));
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, which its stages join: on a hang, one kill reaches them all.
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start `{command}`: {err}"));
    let pgid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in i32"));

    let (tx, rx) = mpsc::channel();
    let mut child_stdin = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_vec();
    thread::spawn(move || {
        // An error here (EPIPE) means the first stage stopped reading: fine, as in a shell.
        // Dropping the pipe then closes it: EOF for the first stage.
        let _ = child_stdin.write_all(&input);
    });
    spawn_reader(
        child.stdout.take().expect("stdout is piped"),
        Stream::Stdout,
        &tx,
    );
    spawn_reader(
        child.stderr.take().expect("stderr is piped"),
        Stream::Stderr,
        &tx,
    );
    thread::spawn(move || {
        // WNOWAIT leaves `pipeline` a zombie until `child.wait()` below: its pid, which is
        // also the group's id, cannot be reused before the group is killed.
        while waitid(Id::Pid(pgid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            == Err(Errno::EINTR)
        {}
        let _ = tx.send(Event::Exited);
    });

    let mut stdout = Capture::default();
    let mut stderr = Capture::default();
    let (mut exited, mut open_streams) = (false, 2);
    while !exited || open_streams > 0 {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(Event::Data(Stream::Stdout, bytes)) => stdout.push(&bytes),
            Ok(Event::Data(Stream::Stderr, bytes)) => stderr.push(&bytes),
            Ok(Event::Eof) => open_streams -= 1,
            Ok(Event::Exited) => {
                exited = true;
                let stray: Vec<ProcInfo> = group_members(pgid)
                    .into_iter()
                    .filter(|p| p.pid != pgid.as_raw() && p.state != 'Z')
                    .collect();
                if !stray.is_empty() {
                    let report = describe_hang(&stray);
                    kill_group(pgid, &mut child);
                    panic!(
                        "`{command}` exited while processes it started were still running:\n\
                         {report}\n\
                         pipeline must wait (waitpid) for every stage before it exits.\n\
                         {}",
                        outputs_so_far(&stdout, &stderr)
                    );
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                let mut members = group_members(pgid);
                let report = describe_hang(&members);
                kill_group(pgid, &mut child);
                members.retain(|p| p.pid == pgid.as_raw());
                let pipeline_state = if members.iter().any(|p| p.state != 'Z') {
                    "did not exit"
                } else {
                    "exited, but its stdout or stderr stayed open (a stage still held it)"
                };
                panic!(
                    "`{command}` {pipeline_state} within {} s; its whole process group was killed.\n\
                     Its processes at the deadline:\n{report}{CLOSE_ADVICE}\n{}",
                    DEADLINE.as_secs(),
                    outputs_so_far(&stdout, &stderr)
                );
            }
        }
    }
    // Nothing is left in the group if pipeline waited for its stages; kill to be sure.
    let _ = killpg(pgid, Signal::SIGKILL);
    let status = child
        .wait()
        .unwrap_or_else(|err| panic!("cannot wait for `{command}`: {err}"));
    Outcome {
        command,
        status,
        stdout: stdout.bytes,
        stderr: stderr.bytes,
    }
}

/// Calls `f` on a thread named `filter-call` and returns its result, or fails the test if
/// it takes longer than [`DEADLINE`].
///
/// `what` names the call in messages (`filter(["cat"], 64 MiB)`). On expiry, the processes
/// this test started that still run one of `programs` (argv as given to `filter`), and
/// their descendants, are described and killed; the failure message ends with `hint`.
#[track_caller]
pub fn within_deadline<T: Send + 'static>(
    what: &str,
    programs: &[&[&str]],
    hint: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name("filter-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("cannot spawn a thread");
    match rx.recv_timeout(DEADLINE) {
        Ok(value) => value,
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
        Err(RecvTimeoutError::Timeout) => {
            let stuck = children_running(programs);
            let mut report = describe_hang(&stuck);
            report.push_str(&describe_own_threads());
            for p in &stuck {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
            let killed = if stuck.is_empty() {
                "no child process of this test was left to kill".to_owned()
            } else {
                format!("its {} process(es) were killed", stuck.len())
            };
            panic!(
                "{what} did not return within {} s; {killed}.\n{report}{hint}",
                DEADLINE.as_secs()
            );
        }
    }
}

/// What to check when a `filter` call hangs.
pub const FILTER_HINT: &str = "filter must never block for good: it reads the program's output \
while it writes its input (poll(2), or a writer thread), closes its write end once the input is \
written (EOF for the program), and closes the child's ends of the pipes in the parent right \
after fork.";

/// `pipes::filter(argv, input)` under [`within_deadline`], with [`FILTER_HINT`].
#[track_caller]
pub fn filter(argv: &[&str], input: &[u8]) -> std::io::Result<pipes::Filtered> {
    let what = format!("filter({argv:?}, {} bytes of input)", input.len());
    let owned: Vec<String> = argv.iter().map(|arg| (*arg).to_owned()).collect();
    let input = input.to_vec();
    within_deadline(&what, &[argv], FILTER_HINT, move || {
        pipes::filter(&owned, &input)
    })
}

/// `len` bytes of deterministic pseudo-random data; different seeds give different data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Fails with the length of both and the first byte that differs, rather than printing
/// megabytes.
#[track_caller]
pub fn assert_same_bytes(what: &str, expected: &[u8], actual: &[u8]) {
    if expected == actual {
        return;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e != a)
        .unwrap_or(expected.len().min(actual.len()));
    let around = |bytes: &[u8]| {
        let end = (first + 16).min(bytes.len());
        format!("{:02x?}", &bytes[first.min(end)..end])
    };
    panic!(
        "{what}: expected {} bytes, got {}; they first differ at byte {first}: \
         expected {} there, got {}",
        expected.len(),
        actual.len(),
        around(expected),
        around(actual),
    );
}

/// `prog arg...` quoted as a shell would need it, for messages.
pub fn shell_quote(prog: &str, args: &[OsString]) -> String {
    let mut line = prog.to_owned();
    for arg in args {
        let arg = arg.to_string_lossy();
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c));
        line.push(' ');
        if plain {
            line.push_str(&arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        }
    }
    line
}

// ---------------------------------------------------------------------------------------
// Reading the output of `pipeline`

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

enum Event {
    Data(Stream, Vec<u8>),
    Eof,
    Exited,
}

fn spawn_reader(mut from: impl Read + Send + 'static, stream: Stream, tx: &mpsc::Sender<Event>) {
    let tx = tx.clone();
    thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Event::Data(stream, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Event::Eof);
    });
}

/// One output stream, kept up to [`CAPTURE_LIMIT`] bytes.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    total: usize,
}

impl Capture {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len();
        let room = CAPTURE_LIMIT.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    fn excerpt(&self) -> String {
        const SHOWN: usize = 600;
        let text = String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(SHOWN)]);
        let more = if self.total > SHOWN { " ..." } else { "" };
        format!("({} bytes) {text:?}{more}", self.total)
    }
}

fn outputs_so_far(stdout: &Capture, stderr: &Capture) -> String {
    format!(
        "stdout so far {}\nstderr so far {}",
        stdout.excerpt(),
        stderr.excerpt()
    )
}

fn kill_group(pgid: Pid, child: &mut std::process::Child) {
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}
