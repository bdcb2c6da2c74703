//! What to run and how it ended: [`Spec`], its limits and input, and [`Ending`].

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

/// Largest amount of one stream kept by default; the rest is read and counted, not kept.
pub const DEFAULT_CAP: usize = 256 << 10;

/// Resource limits set in the child before exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rlimits {
    /// RLIMIT_CPU, seconds.
    pub cpu_s: Option<u64>,
    /// RLIMIT_AS, bytes.
    pub address_space: Option<u64>,
    /// RLIMIT_NOFILE.
    pub nofile: Option<u64>,
    /// RLIMIT_FSIZE, bytes.
    pub fsize: Option<u64>,
    /// RLIMIT_NPROC (counts every process of the user, and root ignores it).
    pub nproc: Option<u64>,
}

impl Rlimits {
    /// The limits for a student's test or check process that may run for `timeout`.
    pub fn untrusted(timeout: Duration) -> Rlimits {
        Rlimits {
            cpu_s: Some(timeout.as_secs() * 2 + 10),
            address_space: Some(4 << 30),
            nofile: Some(1024),
            fsize: Some(256 << 20),
            nproc: nproc_limit(),
        }
    }
}

/// For a user other than root: the user's processes now plus room for a lab's, so that a
/// fork bomb stops there. A root grader runs student code as an identity of its own (see
/// [`crate::sandbox::isolate::student_identity`]), which has no other process. Root itself ignores
/// RLIMIT_NPROC.
fn nproc_limit() -> Option<u64> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return Some(1024);
    }
    let mine = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
                .filter(|e| {
                    e.metadata()
                        .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == uid.as_raw())
                })
                .count()
        })
        .unwrap_or(0);
    Some(mine as u64 + 1024)
}

/// What a process is given on stdin.
#[derive(Debug, Clone)]
pub enum Input {
    /// /dev/null.
    Null,
    /// These bytes, written by a thread, then EOF.
    Bytes(Vec<u8>),
    /// A pipe the caller writes through [`Proc::stdin`].
    Pipe,
    /// This open file, read from its current offset (shared with the caller, who may seek
    /// it back between runs). A memfd here is input that nothing can leave behind.
    File(Arc<OwnedFd>),
}

/// A command to run in the sandbox.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program (a path, or a name looked up in the given PATH).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The whole environment (nothing of the grader's is inherited).
    pub env: Vec<(OsString, OsString)>,
    /// Standard input.
    pub input: Input,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// Bytes of stdout and of stderr kept.
    pub cap: usize,
    /// Start a new process group (the default). Off, the child joins the caller's group.
    pub own_group: bool,
    /// Run as this uid and gid (needs root), e.g. to check that another user is refused.
    pub user: Option<(u32, u32)>,
    /// Private namespaces and mounts, where the kernel allows them (see [`crate::sandbox::isolate`]).
    pub isolation: Option<Arc<crate::sandbox::isolate::Isolation>>,
    /// A cgroup to run in, bounding the number of tasks and the memory.
    pub cgroup: Option<Arc<crate::sandbox::cgroup::Cgroup>>,
    /// With isolation: run under [`crate::sandbox::init`] in a PID namespace of its own, so that
    /// nothing it starts outlives it.
    pub pid_ns: bool,
    /// Join this IPC namespace (a handle from [`crate::sandbox::leftovers::Namespace`]) before exec.
    pub join_ipc: Option<Arc<OwnedFd>>,
    /// The process is the grader's own and starts no other: [`crate::sandbox::run`] cleans up
    /// only its own tree, as it does for a run in a PID namespace, so that it may run beside
    /// other runs.
    pub own_tree_only: bool,
}

impl Spec {
    /// A command with a minimal environment rooted at `scratch` (cwd, HOME, TMPDIR).
    pub fn new(program: impl Into<OsString>, scratch: &Path) -> Spec {
        Spec {
            program: program.into(),
            args: Vec::new(),
            cwd: scratch.to_owned(),
            env: minimal_env(scratch),
            input: Input::Null,
            rlimits: Rlimits::default(),
            cap: DEFAULT_CAP,
            own_group: true,
            user: None,
            isolation: None,
            cgroup: None,
            join_ipc: None,
            pid_ns: false,
            own_tree_only: false,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Spec
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets (or replaces) one environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Spec {
        let key = key.as_ref().to_owned();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.as_ref().to_owned()));
        self
    }
}

/// The environment every sandboxed process starts with.
pub fn minimal_env(scratch: &Path) -> Vec<(OsString, OsString)> {
    let s = scratch.as_os_str().to_owned();
    vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("HOME".into(), s.clone()),
        ("TMPDIR".into(), s),
        ("LANG".into(), "C.UTF-8".into()),
        ("RUST_BACKTRACE".into(), "0".into()),
    ]
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Ending {
    /// exit(code).
    Exited(i32),
    /// Killed by this signal (not by the grader).
    Signaled(i32),
    /// Still running at its deadline; the grader killed it.
    TimedOut,
}

impl Ending {
    /// The status as bash shows it: the code, or 128+N.
    pub fn bash_status(self) -> i32 {
        match self {
            Ending::Exited(c) => c,
            Ending::Signaled(s) => 128 + s,
            Ending::TimedOut => 128 + libc::SIGKILL,
        }
    }

    /// A phrase for reports.
    pub fn describe(self) -> String {
        match self {
            Ending::Exited(c) => format!("exited with status {c}"),
            Ending::Signaled(s) => {
                let name = Signal::try_from(s)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| s.to_string());
                format!("was killed by signal {name}")
            }
            Ending::TimedOut => "did not finish in time".into(),
        }
    }
}
