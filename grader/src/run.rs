//! Step 3, run tests: every libtest test in its own process (listed with `--list`, run with
//! `--exact`), its own scratch folder, a timeout, and the sandbox's limits.
//!
//! A test passes only if its process exited 0 *and* the harness printed its `ok` and a
//! summary, after a canary test the grader adds and runs after it in the same process: a crash,
//! an `exit(0)` from inside the test, a faked `ok` line or a timeout is a failure with the reason.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sandbox::{self, Ending};

mod env;
pub use env::{Confined, RunEnv, jail_main};

/// The result of one test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestResult {
    /// `stem::name`.
    pub id: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Milliseconds it took.
    pub elapsed_ms: u64,
}

/// How one test ended: made where it ran, read by the schedule and the score, put into words
/// by [`TestResult::message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "why", rename_all = "snake_case")]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed, for this reason (in a student's terms).
    Failed(String),
    /// It was stopped at a deadline, the grader's or one of its own, and why; the item's
    /// other tests would most likely go the same long way.
    Hung(String),
    /// The kernel stopped it at the memory cap, and why.
    OverMemory(String),
    /// Not run, because this earlier test of its item was stopped.
    NotRun(String),
}

/// What a test says that was skipped because an earlier test of its item was stopped.
pub const NOT_RUN: &str = "not run: an earlier test of this item was stopped (it hung, gave up \
                           waiting, or used too much memory)";

impl TestResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// Whether it was stopped (hung, or over memory).
    pub fn stopped(&self) -> bool {
        matches!(self.outcome, Outcome::Hung(_) | Outcome::OverMemory(_))
    }

    /// What the student reads about it (empty for a pass).
    pub fn message(&self) -> String {
        match &self.outcome {
            Outcome::Passed => String::new(),
            Outcome::Failed(why) | Outcome::Hung(why) | Outcome::OverMemory(why) => why.clone(),
            Outcome::NotRun(after) => format!("{NOT_RUN} (`{after}`)"),
        }
    }

    /// A failure of `id` for `why`.
    pub fn failed(id: &str, why: String, elapsed_ms: u64) -> TestResult {
        TestResult {
            id: id.to_owned(),
            outcome: Outcome::Failed(why),
            elapsed_ms,
        }
    }
}

/// Words of a test's failure that mean it gave up waiting at a deadline of its own: the
/// test-support crate's and assert_cmd's phrasing.
pub const DEADLINE_WORDS: &[&str] = &[
    "did not return within",
    "did not exit within",
    "did not finish within",
    "Command interrupted",
];

/// Whether a failed test's message says it hung: [`DEADLINE_WORDS`], or a deadline the
/// test names as "within N s" (`within 8s`, `within 500ms`, `within 5 s of ...`), the way
/// the labs' test helpers word a wait that ran out.
pub fn hung(message: &str) -> bool {
    DEADLINE_WORDS.iter().any(|w| message.contains(w))
        || message.match_indices("within ").any(|(at, w)| {
            let rest = &message[at + w.len()..];
            let digits = rest
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b'.')
                .count();
            let unit = rest[digits..].trim_start();
            digits > 0
                && ["s", "ms", "µs", "sec", "second"]
                    .iter()
                    .any(|u| unit.starts_with(u))
        })
}

/// The tests in the test executable `exe` (names within that executable).
pub fn list(env: &RunEnv, exe: &Path) -> Result<Vec<String>, String> {
    let scratch = env.fresh_scratch("list").map_err(|e| e.to_string())?;
    let (spec, _confined) = env.spec(exe, &scratch, Duration::from_secs(30), 1 << 30);
    let spec = spec.args(["--list", "--format", "terse"]);
    let out = sandbox::run(&spec, Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&scratch);
    if out.ending != Ending::Exited(0) {
        return Err(format!("listing its tests {}", out.ending.describe()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|n| *n != crate::stage::CANARY)
        .map(str::to_owned)
        .collect())
}

/// Runs the test `name` of `exe` (reported as `stem::name`) with `timeout` and a cap of
/// `memory` bytes.
pub fn run_one(
    env: &RunEnv,
    exe: &Path,
    stem: &str,
    name: &str,
    timeout: Duration,
    memory: u64,
) -> TestResult {
    let id = format!("{stem}::{name}");
    let fail = |message: String, ms| TestResult::failed(&id, message, ms);
    let scratch = match env.fresh_scratch(&id) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                format!("the grader could not make a scratch folder: {e}"),
                0,
            );
        }
    };
    let secret = format!("{:016x}", canary_secret());
    let (spec, confined) = env.spec(exe, &scratch, timeout, memory);
    let spec = spec
        .args(["--exact", name, crate::stage::CANARY, "--test-threads", "1"])
        .env("GRADER_CANARY", &secret);
    let (out, left) = match crate::sandbox::leftovers::around(|| sandbox::run(&spec, timeout)) {
        Ok(o) => o,
        Err(e) => return fail(format!("the grader could not start the test: {e}"), 0),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let ms = out.elapsed.as_millis() as u64;
    // A flood is cut at the cap; the harness's last lines are in the kept tail.
    let mut seen = out.stdout.clone();
    if out.stdout_dropped > 0 {
        seen.push(b'\n');
        seen.extend_from_slice(&out.stdout_tail);
    }
    let stdout = String::from_utf8_lossy(&seen);
    let ok_line = stdout.lines().any(|l| l == format!("test {name} ... ok"));
    // The graded test, then the canary, then the harness's own summary: all three, or the
    // harness never finished this run.
    let canary = stdout.contains(&format!("grader-canary:{secret}\n"));
    let summary = stdout
        .lines()
        .any(|l| l.starts_with("test result: ok. 2 passed; 0 failed"));
    let ok_line = ok_line && canary && summary;
    let summary = ok_line;
    let mut message = match out.ending {
        Ending::Exited(0) if ok_line => String::new(),
        Ending::Exited(0) => "the test process exited with status 0 before the test harness \
                              finished its run: does the code call std::process::exit, or \
                              print test results itself?"
            .to_string(),
        Ending::TimedOut => format!(
            "did not finish within {} s. What its processes were doing when it was stopped:\n{}",
            timeout.as_secs(),
            out.diagnosis
                .as_deref()
                .unwrap_or("(no process left)\n")
                .trim_end()
        ),
        Ending::Signaled(_) => format!(
            "the test process {} (a crash in the code under test, or a signal it did not expect){}",
            out.ending.describe(),
            tail_section(&out.stderr)
        ),
        Ending::Exited(_) => match panic_section(&stdout, name) {
            Some(p) => p,
            None => format!(
                "the test process {}{}",
                out.ending.describe(),
                tail_section(&out.stderr)
            ),
        },
    };
    // A test must not leave processes behind: a daemon that outlives its test is the
    // submission escaping the grader, and fails the test whatever the harness said.
    let init_report = String::from_utf8_lossy(&out.stderr);
    let alive: Vec<String> = out
        .leftovers
        .iter()
        .filter(|s| out.ending != Ending::TimedOut && s.state != 'Z')
        .map(|s| format!("`{}` (pid {})", s.comm, s.pid))
        // In a PID namespace the init names the survivors before the kernel ends them.
        .chain(
            init_report
                .lines()
                .filter_map(|l| l.strip_prefix(crate::sandbox::init::LEFT_RUNNING))
                .map(str::to_owned),
        )
        .collect();
    let clean = alive.is_empty();
    if !clean {
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(&format!(
            "processes were still running after the test ended (killed by the grader): {}. \
             Wait for every child you start, and never leave a daemon behind",
            alive.join(", ")
        ));
    }
    if !left.is_empty() {
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(&crate::sandbox::leftovers::describe(&left));
    }
    let over_memory = confined.memory_verdict(&out.stderr);
    if let Some(why) = &over_memory {
        message = format!("{why}\n{message}").trim_end().to_owned();
    }
    let flooded = out.stdout_dropped > 0;
    if flooded {
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(&format!(
            "the test printed {} bytes on its standard output, more than the {} KiB a test may \
             print: is a loop printing without end?",
            out.stdout.len() as u64 + out.stdout_dropped,
            out.stdout.len() >> 10
        ));
    }
    let passed = out.ending == Ending::Exited(0)
        && ok_line
        && summary
        && clean
        && !flooded
        && over_memory.is_none()
        && left.is_empty();
    // A test stopped at the memory cap would be followed by others that are: one is enough.
    let outcome = if passed {
        Outcome::Passed
    } else if over_memory.is_some() {
        Outcome::OverMemory(message)
    } else if out.ending == Ending::TimedOut || hung(&message) {
        Outcome::Hung(message)
    } else {
        Outcome::Failed(message)
    };
    TestResult {
        id,
        outcome,
        elapsed_ms: ms,
    }
}

/// A fresh secret for the canary test.
fn canary_secret() -> u64 {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut x = t.as_nanos() as u64
        ^ (u64::from(std::process::id()) << 32)
        ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser: the secret does not look like the clock it came from.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The harness's `---- name stdout ----` section: the panic message and what the test printed.
fn panic_section(stdout: &str, name: &str) -> Option<String> {
    let start_marker = format!("---- {name} stdout ----\n");
    let start = stdout.find(&start_marker)? + start_marker.len();
    let rest = &stdout[start..];
    let end = rest.find("\nfailures:\n").unwrap_or(rest.len());
    let text = rest[..end].trim();
    let text = text.replace(
        "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        "",
    );
    Some(clip(&printable(text.trim()), 3000))
}

/// `text` with every control byte but newline and tab, and every byte that was not UTF-8
/// (decoded as U+FFFD), written as an escape: a test that prints what a program wrote
/// (colours, binary output) must not put raw bytes in a report that Gradescope shows.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            '\u{fffd}' => "\\u{fffd}".to_owned(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn tail_section(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let s = s.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!("; its stderr ends with:\n{}", clip_tail(s, 1500))
    }
}

/// At most `max` bytes of `s`, cut at a char boundary, with a mark when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n... (cut)", &s[..end])
}

fn clip_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("(...) {}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_message_is_extracted() {
        let out = "running 1 test\ntest two ... FAILED\n\nfailures:\n\n---- two stdout ----\n\
                   thread 'two' panicked at tests/stages.rs:9:5:\nexpected \"a\", got \"\"\n\
                   note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\
                   failures:\n    two\n";
        let p = panic_section(out, "two").unwrap();
        assert_eq!(
            p,
            "thread 'two' panicked at tests/stages.rs:9:5:\nexpected \"a\", got \"\""
        );
    }

    #[test]
    fn a_deadline_the_test_names_is_a_hang() {
        for hung_msg in [
            "after \"x\", no reply line within 8s (timed out)",
            "no whole response head to \"GET\" within 8 s (e); the server had sent",
            "`ring-recv` did not exit within 5 s of SIGTERM",
            "did not create /dev/shm/x within 1.5s",
        ] {
            assert!(hung(hung_msg), "{hung_msg}");
        }
        for plain in [
            "expected 3, got 4",
            "within a priority, each in order",
            "within one second",
        ] {
            assert!(!hung(plain), "{plain}");
        }
    }

    #[test]
    fn clip_keeps_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h\n... (cut)");
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(
            printable("a\x1b[31mb\u{fffd}\n\tc"),
            "a\\u{1b}[31mb\\u{fffd}\n\tc"
        );
        assert!(crate::verify::readable(&printable("\x00\x07\x1b\u{fffd}")));
    }
}
