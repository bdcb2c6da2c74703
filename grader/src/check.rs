//! Step 4, checks: a lab's multi-process scenarios, written against [`Ctx`].
//!
//! Each check runs in a child process of the grader (`grader __check ...`) that is itself a
//! child subreaper, under the item's timeout. The scenario starts the student's binaries
//! with [`Ctx::bin`] and [`Ctx::spawn`]/[`Ctx::run`], waits on conditions with deadlines,
//! and judges the outcome. When the scenario returns, every process it started is killed
//! and reaped; if it overruns, the grader kills the whole tree and reports what each process
//! was waiting for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sandbox::{self, Ending, Input, Proc, Rlimits, Spec};

mod child;
mod peers;
pub use child::{Verdict, child_main, run_in_child};
pub use peers::{Frozen, peer_identity, with_fs_identity};

/// A failed check: the message is what the student reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail(pub String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail(format!("the grader could not run this check: {e}"))
    }
}

/// What a check returns.
pub type CheckResult = Result<(), Fail>;

/// Fails the check with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::check::Fail(format!($($arg)*))) };
}

/// Fails the check with the message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => { if !$cond { $crate::fail!($($arg)*); } };
}

/// One scenario of a lab.
#[derive(Clone, Copy)]
pub struct Check {
    /// Its name, as lab.toml's items refer to it.
    pub name: &'static str,
    /// The scenario.
    pub run: fn(&mut Ctx) -> CheckResult,
}

/// What a check can use: the student's binaries, a scratch folder, a seed.
pub struct Ctx {
    /// The student's binaries by name.
    pub bins: BTreeMap<String, PathBuf>,
    /// A fresh folder, the cwd of every process the check starts; removed afterwards.
    pub scratch: PathBuf,
    /// The seed for every random choice of the check (printed in the report).
    pub seed: u64,
    /// The unprivileged identity (uid, gid) the student's programs run as, when the grader
    /// is root; [`Ctx::bin`] and [`Ctx::bash`] use it. Files the check creates belong to it
    /// too (the check process works with it as its filesystem identity).
    pub student: Option<(u32, u32)>,
    /// The grader's fixtures folder (`grader/fixtures`), read-only: see [`Ctx::npm_module`].
    pub fixtures: Option<PathBuf>,
    /// The peers' folder (see [`Ctx::peer_dir`]); the scratch folder when absent.
    pub peers: Option<PathBuf>,
    /// Whether a program of the student's has started: from then on a peer's failure may
    /// be the submission's doing (see [`Ctx::not_gradable_here`]).
    student_started: bool,
    rng: u64,
    notes: Vec<String>,
    not_gradable_here: Option<String>,
}

/// The captured result of [`Ctx::run`].
#[derive(Debug, Clone)]
pub struct Output {
    /// How the process ended.
    pub ending: Ending,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Output {
    /// The status as bash shows it.
    pub fn status(&self) -> i32 {
        self.ending.bash_status()
    }
    /// Stdout as text (lossy).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Stderr as text (lossy).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl Ctx {
    /// A context over `bins` and `scratch`.
    pub fn new(
        bins: BTreeMap<String, PathBuf>,
        scratch: PathBuf,
        seed: u64,
        student: Option<(u32, u32)>,
    ) -> Ctx {
        Ctx {
            bins,
            scratch,
            seed,
            student,
            fixtures: None,
            peers: None,
            student_started: false,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            notes: Vec::new(),
            not_gradable_here: None,
        }
    }

    /// A spec for the student's binary `name` (sandboxed, cwd in scratch).
    pub fn bin(&self, name: &str) -> Spec {
        let path = self
            .bins
            .get(name)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(name));
        let mut spec = Spec::new(path.into_os_string(), &self.scratch);
        spec.rlimits = Rlimits::untrusted(Duration::from_secs(60));
        spec.cap = 16 << 20;
        spec.user = self.student;
        spec
    }

    /// A spec for `bash -c script`: the reference the student's programs are compared to.
    pub fn bash(&self, script: &str) -> Spec {
        let mut spec = Spec::new("bash", &self.scratch).args(["-c", script]);
        spec.cap = 16 << 20;
        spec.user = self.student;
        spec
    }

    /// Starts `spec`; the process is killed when the check ends, whatever happens.
    pub fn spawn(&mut self, spec: &Spec) -> Result<Proc, Fail> {
        let theirs = self.bins.values().any(|b| b.as_os_str() == spec.program)
            || (self.student.is_some() && spec.user == self.student);
        self.student_started |= theirs;
        sandbox::spawn(spec).map_err(|e| {
            Fail(format!(
                "could not start `{}`: {e}",
                spec.program.to_string_lossy()
            ))
        })
    }

    /// Runs `spec` to completion within `limit`. Past it, the check fails with what every
    /// process was waiting for; `what` names the command for the student.
    pub fn run(&mut self, what: &str, spec: &Spec, limit: Duration) -> Result<Output, Fail> {
        let mut p = self.spawn(spec)?;
        self.finish(what, &mut p, limit)
    }

    /// Starts `spec`, a server, and waits up to `limit` for its first line on stdout, the
    /// line that says it is ready (`listening on 127.0.0.1:PORT`). Returns the process and
    /// that line. When no line comes, the check fails saying what `what` must print
    /// (`promise`) and what happened instead: it exited (how, and its stderr), or it printed
    /// nothing, and what it waits in.
    pub fn start_server(
        &mut self,
        spec: &Spec,
        what: &str,
        promise: &str,
        limit: Duration,
    ) -> Result<(Proc, String), Fail> {
        let mut p = self.spawn(spec)?;
        if p.wait_stdout(Instant::now() + limit, |out| out.contains(&b'\n')) {
            let out = p.stdout().0;
            let line = out.split(|&b| b == b'\n').next().unwrap_or_default();
            let line = String::from_utf8_lossy(line).into_owned();
            return Ok((p, line));
        }
        let why = match p.try_ending() {
            Some(e) => format!("{}; {}", e.describe(), stderr_of(&p)),
            None => format!(
                "printed no line within {} s; {}",
                limit.as_secs_f64(),
                doing(p.pid)
            ),
        };
        fail!("`{what}` must print {promise} as its first line on stdout, but it {why}")
    }

    /// Waits for `p` to end within `limit`, then collects its output.
    pub fn finish(&mut self, what: &str, p: &mut Proc, limit: Duration) -> Result<Output, Fail> {
        let deadline = Instant::now() + limit;
        match p.wait_until(deadline) {
            Some(ending) => {
                // Output may still be in flight from processes that inherited the pipes.
                let until = Instant::now() + Duration::from_secs(2);
                p.wait_stdout(until, |_| false);
                p.wait_stderr(until, |_| false);
                Ok(Output {
                    ending,
                    stdout: p.stdout().0,
                    stderr: p.stderr().0,
                    elapsed: p.elapsed(),
                })
            }
            None => {
                let diagnosis = sandbox::diagnose_tree();
                p.kill();
                Err(Fail(format!(
                    "{what} did not finish within {:.0} s. What its processes were waiting for:\n{}",
                    limit.as_secs_f64(),
                    diagnosis.trim_end()
                )))
            }
        }
    }

    /// Feeds `spec` the bytes `input` on stdin.
    pub fn with_input(spec: Spec, input: impl Into<Vec<u8>>) -> Spec {
        Spec {
            input: Input::Bytes(input.into()),
            ..spec
        }
    }

    /// Adds a line to the report of a check that passes (a failing check's message is its
    /// `Fail`): e.g. the figures of a performance item, shown whether it passes or not.
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Ends the check as "not gradable here" for `why`: a peer the check needs failed. The
    /// item is left out of the score instead of failing the student, as long as none of the
    /// student's programs has started yet. Once one has, the peer's failure may be its doing
    /// (it can exhaust ports, memory or disk, or answer in a way that breaks the peer): the
    /// item fails, and the message says why. Use as
    /// `return Err(ctx.not_gradable_here("..."))`.
    pub fn not_gradable_here(&mut self, why: impl Into<String>) -> Fail {
        let why = why.into();
        if self.student_started {
            return Fail(format!(
                "{why}. This happened while your programs ran, and may be their doing (a \
                 process that takes the ports, memory or disk the grader's peer needs, or \
                 answers in a way that breaks it), so it counts as a failure"
            ));
        }
        self.grader_problem(why)
    }

    /// The path of the peer program `program` (e.g. `socat`, `redis-cli`, `node`) from the
    /// system folders the check can see, or "not gradable here: install the Debian package
    /// `package`" when this machine does not have it.
    pub fn tool(&mut self, program: &str, package: &str) -> Result<PathBuf, Fail> {
        match find_tool(program) {
            Some(p) => Ok(p),
            None => Err(self.grader_problem(format!(
                "`{program}` is not installed on this machine: install it with `sudo apt-get \
                 install {package}` (Debian, Ubuntu; the autograder's setup.sh installs it)"
            ))),
        }
    }

    /// The folder of the npm package `name` that `grader/peers.sh nodejs` installed from the
    /// grader's lock file (`grader/fixtures/npm`), for `node` with `NODE_PATH`; "not gradable
    /// here" when it is not installed.
    pub fn npm_module(&mut self, name: &str) -> Result<PathBuf, Fail> {
        let modules = self
            .fixtures
            .as_ref()
            .map(|f| f.join("npm").join("node_modules"));
        match modules {
            Some(m) if m.join(name).join("package.json").is_file() => Ok(m),
            _ => Err(self.grader_problem(format!(
                "the npm package `{name}` is not installed for the grader (run \
                 `grader/peers.sh nodejs`, as the autograder's setup.sh does)"
            ))),
        }
    }

    /// Fails as "not gradable here: needs root" unless the check runs with root's power (to
    /// start a peer as another user): a grader that is not root cannot judge such items.
    pub fn require_root(&mut self) -> Result<(), Fail> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            Ok(())
        } else {
            Err(self.grader_problem(
                "the check needs root, to start a client as another user; the grader is not root"
                    .into(),
            ))
        }
    }

    /// A pseudo-random number from the check's seed (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `n` pseudo-random bytes.
    pub fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Polls `cond` every millisecond until it holds or `deadline` passes; whether it held. For
/// conditions that no event announces (a process state in /proc, a file appearing): never
/// a fixed sleep in its place.
pub fn poll_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Bytes written to the pipe `fd` (either end) and not read yet (FIONREAD), or `None` on
/// error: a check that must write only once a program has read what it had waits for 0.
pub fn pipe_unread(fd: i32) -> Option<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    (r == 0).then_some(n)
}

/// What a process says on stderr, for messages (once it has ended, all of it).
pub fn stderr_of(p: &Proc) -> String {
    p.wait_stderr(Instant::now() + Duration::from_millis(500), |_| false);
    let err = String::from_utf8_lossy(&p.stderr().0).trim().to_owned();
    if err.is_empty() {
        "(nothing on stderr)".into()
    } else {
        format!("its stderr: {}", crate::run::clip(&err, 600))
    }
}

/// What a running process is doing, from /proc, for messages about a stall.
pub fn doing(pid: i32) -> String {
    match testkit::procfs::Process::read(pid) {
        Some(s) if s.stat.state == 'Z' => "it has exited".into(),
        Some(s) if s.wchan.is_empty() => format!("its state is {}", s.stat.state),
        Some(s) => format!("it {}", testkit::hang::describe_wait(&s.wchan)),
        None => "it is gone".into(),
    }
}

/// Where a check looks for peer programs: the system folders every jail shows.
pub const TOOL_DIRS: &[&str] = &["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"];

/// The first executable `program` in [`TOOL_DIRS`].
pub fn find_tool(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    TOOL_DIRS
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing peer program makes the check "not gradable here", which the verdict carries
    /// apart from a failure; a present one is found in the system folders.
    #[test]
    fn a_missing_peer_is_not_gradable_here() {
        let mut ctx = Ctx::new(BTreeMap::new(), std::env::temp_dir(), 1, None);
        assert!(ctx.tool("sh", "dash").is_ok());
        let Err(Fail(msg)) = ctx.tool("no-such-peer-program", "no-such-package") else {
            panic!("found a program that does not exist");
        };
        assert!(msg.contains("no-such-package"), "{msg}");
        assert!(ctx.not_gradable_here.is_some());
        assert!(
            ctx.npm_module("jayson").is_err(),
            "no fixtures: not installed"
        );
    }
}
