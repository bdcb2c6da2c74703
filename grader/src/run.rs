//! Step 3, run tests: every libtest test in its own process (listed with `--list`, run with
//! `--exact`), its own scratch folder, a timeout, and the sandbox's limits.
//!
//! A test passes only if its process exited 0 *and* the harness printed its `ok` and a
//! summary, after a canary test the grader adds and runs after it in the same process: a crash,
//! an `exit(0)` from inside the test, a faked `ok` line or a timeout is a failure with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::cgroup::Cgroup;
use crate::isolate::Jail;
use crate::sandbox::{self, Ending, Rlimits, Spec};

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

/// Where and how tests run.
#[derive(Debug, Clone)]
pub struct RunEnv {
    /// The lab's binaries, exported as `CARGO_BIN_EXE_<name>` so assert_cmd finds them.
    pub bins: BTreeMap<String, PathBuf>,
    /// A folder under which each test gets a fresh scratch folder.
    pub scratch_root: PathBuf,
    /// Run every test and check in a jail of its own ([`crate::isolate`]), where the kernel
    /// allows it.
    pub jail: bool,
    /// The unprivileged identity student code runs as (when the grader is root).
    pub student: Option<(u32, u32)>,
    /// The grader's fixtures folder (`grader/fixtures`: npm packages of peer programs), shown
    /// read-only to checks.
    pub fixtures: Option<PathBuf>,
}

/// What one confined run holds on to: its cgroup, to ask afterwards whether the kernel
/// stopped it at the memory cap.
#[derive(Debug, Default)]
pub struct Confined {
    cgroup: Option<Arc<Cgroup>>,
    memory: u64,
}

impl Confined {
    /// "used more than N MiB" when the run was stopped at its memory cap: the cgroup's
    /// count of kills, or, with RLIMIT_AS in its place, Rust's own "memory allocation of N
    /// bytes failed" on `stderr`.
    pub fn memory_verdict(&self, stderr: &[u8]) -> Option<String> {
        let cap = match self.cgroup.as_ref().filter(|c| c.limits_memory()) {
            Some(cg) => cg.hit_memory_limit()?,
            None => {
                let text = String::from_utf8_lossy(stderr);
                (text.contains("memory allocation of") && text.contains("failed"))
                    .then_some(self.memory)?
            }
        };
        Some(format!(
            "it used more than {} MiB of memory, the most a test or check may use, and the \
             kernel stopped it: look for a buffer or collection that grows without bound (a \
             loop that reads into a Vec it never clears, or allocates per message)",
            cap.max(self.memory) >> 20
        ))
    }
}

impl RunEnv {
    /// Confines `spec`: a jail showing only the system, `ro` and `rw` (see
    /// [`crate::isolate`]), a cgroup of its own with a task limit and a cap of `memory`
    /// bytes (RLIMIT_AS without a memory cgroup), and the limits of untrusted code.
    pub fn confine(
        &self,
        spec: &mut Spec,
        ro: &[&Path],
        rw: &[&Path],
        memory: u64,
        timeout: Duration,
    ) -> Confined {
        let mut rlimits = Rlimits::untrusted(timeout);
        let cgroup = Cgroup::create(1024, memory).map(Arc::new);
        if !cgroup.as_ref().is_some_and(|c| c.limits_memory()) {
            rlimits.address_space = Some(memory);
        }
        spec.rlimits = rlimits;
        spec.cgroup = cgroup.clone();
        if self.jail {
            let mut jail = Jail::new();
            for p in ro {
                jail = jail.ro(p);
            }
            for p in rw {
                jail = jail.rw(p);
            }
            spec.isolation = Some(Arc::new(jail.build()));
            spec.pid_ns = true;
        }
        Confined { cgroup, memory }
    }

    fn spec(&self, exe: &Path, scratch: &Path, timeout: Duration, memory: u64) -> (Spec, Confined) {
        let mut spec = Spec::new(exe.as_os_str(), scratch);
        for (name, path) in &self.bins {
            spec = spec.env(format!("CARGO_BIN_EXE_{name}"), path);
        }
        // Colours would reach the JSON and Gradescope reports as escape codes.
        spec = spec
            .env("NO_COLOR", "1")
            .env("CLICOLOR", "0")
            .env("TERM", "dumb");
        spec.cap = 64 << 10;
        spec.user = self.student;
        let mut ro: Vec<&Path> = exe.parent().into_iter().collect();
        ro.extend(self.bins.values().filter_map(|p| p.parent()));
        let confined = self.confine(&mut spec, &ro, &[scratch], memory, timeout);
        (spec, confined)
    }

    /// A fresh folder for the peers of check `label` (see [`crate::check::Ctx::peer_dir`]),
    /// owned by the peers' identity, mode 0755: the student's programs may read it, not
    /// write it.
    pub fn fresh_peer_dir(&self, label: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.fresh_scratch(&format!("{label}.peers"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        if let Some((uid, gid)) = crate::check::peer_identity() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        }
        Ok(dir)
    }

    /// A fresh scratch folder for `label`, owned by the student's identity.
    pub fn fresh_scratch(&self, label: &str) -> std::io::Result<PathBuf> {
        let safe: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let dir = self.scratch_root.join(safe);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        crate::isolate::hand_over(&dir, self.student)?;
        Ok(dir)
    }
}

/// `grader __jail`: runs `command` confined as a test would be, passing its output and
/// status through; the scratch folder's path is the first line on stderr.
pub fn jail_main(
    ro: &[PathBuf],
    timeout_s: f64,
    command: &[std::ffi::OsString],
) -> std::io::Result<u8> {
    let work = tempfile::Builder::new().prefix("grader-jail-").tempdir()?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711))?;
    }
    let env = RunEnv {
        bins: BTreeMap::new(),
        scratch_root: work.path().to_owned(),
        jail: true,
        student: crate::isolate::student_identity(),
        fixtures: None,
    };
    let scratch = env.fresh_scratch("jail")?;
    crate::errln!("scratch {}", scratch.display());
    let Some((program, args)) = command.split_first() else {
        return Ok(2);
    };
    let timeout = Duration::from_secs_f64(timeout_s);
    let mut spec = Spec::new(program, &scratch).args(args);
    spec.user = env.student;
    let ro: Vec<&Path> = ro.iter().map(PathBuf::as_path).collect();
    let _confined = env.confine(&mut spec, &ro, &[&scratch], 1 << 30, timeout);
    let out = sandbox::run(&spec, timeout)?;
    use std::io::Write as _;
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stderr().write_all(&out.stderr)?;
    Ok(out.ending.bash_status().clamp(0, 255) as u8)
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
    let (out, left) = match crate::leftovers::around(|| sandbox::run(&spec, timeout)) {
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
                .filter_map(|l| l.strip_prefix(crate::init::LEFT_RUNNING))
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
        message.push_str(&crate::leftovers::describe(&left));
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
    Some(clip(text.trim(), 3000))
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
    }
}
