//! Running untrusted processes: each in its own process group, with only fds 0-2 open at
//! exec, SIGPIPE at its default, resource limits, a capped capture of its output, a deadline
//! that is a real wait (pidfd + poll), and a clean-up that kills and reaps every descendant.
//!
//! The grader process is a child subreaper ([`become_subreaper`]), so a process that double
//! forks or calls setsid is reparented to the grader rather than to init, and
//! [`kill_descendants`] still finds and ends it.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use crate::procinfo::{self, Stat};

/// Largest amount of one stream kept by default; the rest is read and counted, not kept.
pub const DEFAULT_CAP: usize = 256 << 10;

/// Makes this process a child subreaper: orphaned descendants are reparented to it.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

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
/// fork bomb stops there. Root ignores RLIMIT_NPROC; the pids cgroup bounds it instead.
fn nproc_limit() -> Option<u64> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return None;
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
    /// Private namespaces and mounts, where the kernel allows them (see [`crate::isolate`]).
    pub isolation: Option<Arc<crate::isolate::Isolation>>,
    /// A pids cgroup to run in, bounding the number of processes.
    pub cgroup: Option<Arc<crate::isolate::Cgroup>>,
    /// Join this IPC namespace (a handle from [`crate::leftovers::Namespace`]) before exec.
    pub join_ipc: Option<Arc<OwnedFd>>,
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

/// Output captured from one stream.
#[derive(Debug, Default)]
struct CapState {
    data: Vec<u8>,
    dropped: u64,
    /// Past the cap: the last bytes, so that a summary printed at the end is still seen.
    tail: std::collections::VecDeque<u8>,
    eof: bool,
}

/// How much of the end of an over-long stream is kept.
const TAIL: usize = 16 << 10;

#[derive(Debug, Default)]
struct Capture {
    state: Mutex<CapState>,
    cv: Condvar,
}

impl Capture {
    fn pump(self: Arc<Self>, mut r: impl Read + Send + 'static, cap: usize) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => 0,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => 0,
                };
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    st.eof = true;
                    self.cv.notify_all();
                    return;
                }
                let room = cap.saturating_sub(st.data.len()).min(n);
                st.data.extend_from_slice(&buf[..room]);
                st.dropped += (n - room) as u64;
                let rest = &buf[room..n];
                let rest = &rest[rest.len().saturating_sub(TAIL)..];
                st.tail.extend(rest);
                let excess = st.tail.len().saturating_sub(TAIL);
                st.tail.drain(..excess);
                self.cv.notify_all();
            }
        })
    }

    fn snapshot(&self) -> (Vec<u8>, u64) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.data.clone(), st.dropped)
    }

    fn tail(&self) -> Vec<u8> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.tail.iter().copied().collect()
    }

    /// Waits until `pred(data)` holds or EOF or the deadline; returns whether `pred` held.
    fn wait_for(&self, deadline: Instant, pred: impl Fn(&[u8]) -> bool) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if pred(&st.data) {
                return true;
            }
            let now = Instant::now();
            if st.eof || now >= deadline {
                return false;
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn wait_eof(&self, deadline: Instant) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !st.eof {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// A running sandboxed process.
#[derive(Debug)]
pub struct Proc {
    /// Its pid (also its process group id when it has its own group).
    pub pid: i32,
    own_group: bool,
    child: Child,
    pidfd: Option<OwnedFd>,
    stdin: Option<ChildStdin>,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    threads: Vec<JoinHandle<()>>,
    ending: Option<Ending>,
    started: Instant,
}

/// Starts `spec`.
pub fn spawn(spec: &Spec) -> std::io::Result<Proc> {
    let isolation = spec
        .isolation
        .clone()
        .filter(|_| crate::isolate::worth_trying());
    let mut child = match command(spec, isolation.clone()).spawn() {
        Ok(c) => {
            if isolation.is_some() {
                crate::isolate::worked();
            }
            c
        }
        Err(e) if isolation.is_some() && crate::isolate::is_refusal(&e) => {
            crate::isolate::refused(&e);
            command(spec, None).spawn()?
        }
        Err(e) => return Err(e),
    };
    let pid = child.id() as i32;
    let pidfd = pidfd_open(pid);
    let stdout = Arc::new(Capture::default());
    let stderr = Arc::new(Capture::default());
    let mut threads = Vec::new();
    if let Some(out) = child.stdout.take() {
        threads.push(stdout.clone().pump(out, spec.cap));
    }
    if let Some(err) = child.stderr.take() {
        threads.push(stderr.clone().pump(err, spec.cap));
    }
    let mut stdin = child.stdin.take();
    if let Input::Bytes(data) = &spec.input {
        let data = data.clone();
        if let Some(mut w) = stdin.take() {
            threads.push(std::thread::spawn(move || {
                // EPIPE just means the process stopped reading; that is its business.
                let _ = w.write_all(&data);
            }));
        }
    }
    Ok(Proc {
        pid,
        own_group: spec.own_group,
        child,
        pidfd,
        stdin,
        stdout,
        stderr,
        threads,
        ending: None,
        started: Instant::now(),
    })
}

fn command(
    spec: &Spec,
    isolation: Option<Arc<crate::isolate::Isolation>>,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(match spec.input {
            Input::Null => Stdio::null(),
            _ => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if spec.own_group {
        cmd.process_group(0);
    }
    let limits = spec.rlimits;
    let user = spec.user;
    let cgroup = spec.cgroup.clone();
    let join_ipc = spec.join_ipc.clone();
    // SAFETY: the closure only makes async-signal-safe system calls (close_range or fcntl,
    // setrlimit, sigprocmask, signal, unshare, mount, open/write, setgroups/setgid/setuid)
    // and allocates nothing: every path was made into a C string before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(cg) = &cgroup {
                cg.join();
            }
            if let Some(ns) = &join_ipc {
                crate::leftovers::enter(ns.as_raw_fd())?;
            }
            if let Some(iso) = &isolation {
                iso.enter()?;
            }
            child_setup(&limits, user)
        });
    }
    cmd
}

/// Runs in the child between fork and exec.
fn child_setup(limits: &Rlimits, user: Option<(u32, u32)>) -> std::io::Result<()> {
    // Every fd above 2 closes at exec, whatever the grader inherited. CLOEXEC rather than
    // close: std's own exec-error pipe must survive until exec.
    // SAFETY: plain system calls on integers.
    unsafe {
        let r = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if r != 0 {
            for fd in 3..4096 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        let set = |res, v: Option<u64>| {
            if let Some(v) = v {
                let lim = libc::rlimit {
                    rlim_cur: v,
                    rlim_max: v,
                };
                libc::setrlimit(res, &lim);
            }
        };
        set(libc::RLIMIT_CPU, limits.cpu_s);
        set(libc::RLIMIT_AS, limits.address_space);
        set(libc::RLIMIT_NOFILE, limits.nofile);
        set(libc::RLIMIT_FSIZE, limits.fsize);
        set(libc::RLIMIT_NPROC, limits.nproc);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Rust's runtime ignores SIGPIPE, and an ignored disposition survives exec.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if let Some((uid, gid)) = user {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative return is a fresh fd.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Proc {
    /// The process's stdin, when it was started with [`Input::Pipe`].
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// Closes its stdin (EOF for the process).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// How it ended, if it has.
    pub fn try_ending(&mut self) -> Option<Ending> {
        if self.ending.is_none() {
            match self.child.try_wait() {
                Ok(Some(st)) => self.ending = Some(ending_of(st)),
                Ok(None) => {}
                // Reaped by a clean-up that got there first: it is gone, status unknown.
                Err(_) => self.ending = Some(Ending::Signaled(libc::SIGKILL)),
            }
        }
        self.ending
    }

    /// Waits until it exits or `deadline` passes; `None` means still running.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<Ending> {
        loop {
            if let Some(e) = self.try_ending() {
                return Some(e);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let left = deadline - now;
            match &self.pidfd {
                Some(fd) => {
                    let mut pfd = libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, ms) };
                }
                // No pidfd (very old kernel): poll the status, gently.
                None => std::thread::sleep(left.min(Duration::from_millis(5))),
            }
        }
    }

    /// Sends `sig` to the process (not its group).
    pub fn signal(&self, sig: Signal) {
        if self.ending.is_none() {
            let _ = kill(Pid::from_raw(self.pid), sig);
        }
    }

    /// SIGKILLs its whole process group (or just it, without its own group) and reaps it.
    pub fn kill(&mut self) -> Ending {
        if self.own_group {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(st) if self.ending.is_none() => self.ending = Some(ending_of(st)),
            Err(_) if self.ending.is_none() => self.ending = Some(Ending::Signaled(libc::SIGKILL)),
            _ => {}
        }
        self.ending.unwrap_or(Ending::Signaled(libc::SIGKILL))
    }

    /// Stdout so far (at most the cap) and how many bytes past the cap were dropped.
    pub fn stdout(&self) -> (Vec<u8>, u64) {
        self.stdout.snapshot()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> (Vec<u8>, u64) {
        self.stderr.snapshot()
    }

    /// Waits until stdout satisfies `pred`, stdout closes, or the deadline passes.
    pub fn wait_stdout(&self, deadline: Instant, pred: impl Fn(&[u8]) -> bool) -> bool {
        self.stdout.wait_for(deadline, pred)
    }

    /// Waits until stderr satisfies `pred`, stderr closes, or the deadline passes.
    pub fn wait_stderr(&self, deadline: Instant, pred: impl Fn(&[u8]) -> bool) -> bool {
        self.stderr.wait_for(deadline, pred)
    }

    /// Time since start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits (until `deadline`) for both output streams to close, then joins the threads.
    fn finish_streams(&mut self, deadline: Instant) {
        let closed = self.stdout.wait_eof(deadline) & self.stderr.wait_eof(deadline);
        if closed {
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.ending.is_none() {
            self.kill();
        }
    }
}

fn ending_of(st: std::process::ExitStatus) -> Ending {
    match (st.code(), st.signal()) {
        (Some(c), _) => Ending::Exited(c),
        (None, Some(s)) => Ending::Signaled(s),
        _ => Ending::Exited(-1),
    }
}

/// Everything about one finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How the process ended.
    pub ending: Ending,
    /// Captured stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most the cap).
    pub stderr: Vec<u8>,
    /// Bytes of stdout past the cap.
    pub stdout_dropped: u64,
    /// The last bytes of stdout when it went past the cap.
    pub stdout_tail: Vec<u8>,
    /// Wall time.
    pub elapsed: Duration,
    /// On a timeout: what every process of the run was waiting for, in words.
    pub diagnosis: Option<String>,
    /// Processes that were still alive after the main one ended (killed by the grader).
    pub leftovers: Vec<Stat>,
    /// The run's private IPC namespace, kept open so its leftovers can be swept.
    pub ipc_ns: Option<crate::leftovers::Namespace>,
}

/// Runs `spec` to completion or `timeout`, then kills whatever of it remains.
///
/// Call only when no other sandboxed process of this grader is meant to survive: the
/// clean-up ends every descendant of the calling process.
pub fn run(spec: &Spec, timeout: Duration) -> std::io::Result<Outcome> {
    let mut proc = spawn(spec)?;
    let ipc_ns = spec
        .isolation
        .as_ref()
        .and_then(|_| crate::leftovers::Namespace::of(proc.pid));
    let deadline = Instant::now() + timeout;
    let mut diagnosis = None;
    let ending = match proc.wait_until(deadline) {
        Some(e) => e,
        None => {
            let me = std::process::id() as i32;
            let crowd = procinfo::descendants(me).len();
            if crowd > 64 {
                // Far more processes than any lab needs: a fork loop. Stop it before reading
                // /proc process by process.
                let _ = killpg(Pid::from_raw(proc.pid), Signal::SIGKILL);
                kill_descendants();
                diagnosis = Some(format!(
                    "- {crowd} processes were running when it was stopped: a process that forks \
                     without end (check every loop around fork, and that a child never returns \
                     into the parent's code: it must exec or _exit)\n"
                ));
            } else {
                diagnosis = Some(diagnose_tree());
            }
            // SIGTERM first so that well-behaved programs remove their IPC objects.
            for s in procinfo::descendants(std::process::id() as i32) {
                let _ = kill(Pid::from_raw(s.pid), Signal::SIGTERM);
            }
            if proc
                .wait_until(Instant::now() + Duration::from_millis(300))
                .is_none()
            {
                proc.kill();
            }
            Ending::TimedOut
        }
    };
    let elapsed = proc.elapsed();
    if ending != Ending::TimedOut {
        settle(Instant::now() + Duration::from_millis(300));
    }
    let leftovers = kill_descendants();
    proc.finish_streams(Instant::now() + Duration::from_secs(2));
    let (stdout, stdout_dropped) = proc.stdout();
    let stdout_tail = proc.stdout.tail();
    let (stderr, _) = proc.stderr();
    Ok(Outcome {
        ending,
        stdout,
        stderr,
        stdout_dropped,
        stdout_tail,
        elapsed,
        diagnosis,
        leftovers,
        ipc_ns,
    })
}

/// Gives processes that are already exiting (a child just killed, a stage finishing) until
/// `deadline` to be gone, so that only real survivors count as left behind.
fn settle(deadline: Instant) {
    let me = std::process::id() as i32;
    while Instant::now() < deadline {
        let live = procinfo::descendants(me)
            .iter()
            .any(|s| s.state != 'Z' && s.state != 'X');
        if !live {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Snapshots every descendant of this process and explains what each waits for.
pub fn diagnose_tree() -> String {
    let me = std::process::id() as i32;
    let procs = procinfo::snapshot(procinfo::descendants(me).into_iter().map(|s| s.pid));
    procinfo::explain(&procs)
}

/// SIGKILLs every descendant of this process and reaps those that are its children, until
/// none is left (bounded). Returns the ones that were alive when it started.
pub fn kill_descendants() -> Vec<Stat> {
    let me = std::process::id() as i32;
    let mut first = None;
    for round in 0..400 {
        let all = procinfo::descendants(me);
        let live: Vec<Stat> = all
            .iter()
            .filter(|s| s.state != 'Z' && s.state != 'X')
            .cloned()
            .collect();
        if first.is_none() {
            first = Some(live.clone());
        }
        if all.is_empty() {
            break;
        }
        // Stop the groups first so that a fork loop cannot outrun the kills.
        for s in &live {
            let _ = killpg(Pid::from_raw(s.pgid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
        }
        for s in all.iter().filter(|s| s.ppid == me) {
            let _ = waitpid(Pid::from_raw(s.pid), Some(WaitPidFlag::WNOHANG));
        }
        if round > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    first.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run` ends every descendant of this process, so tests that spawn take turns.
    static SPAWN: Mutex<()> = Mutex::new(());

    fn sh(script: &str) -> Spec {
        let tmp = std::env::temp_dir();
        Spec::new("/bin/sh", &tmp).args(["-c", script])
    }

    #[test]
    fn output_is_captured_and_capped() {
        let _turn = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let mut spec = sh("head -c 100000 /dev/zero; echo oops >&2; exit 3");
        spec.cap = 1000;
        let out = run(&spec, Duration::from_secs(10)).unwrap();
        assert_eq!(out.ending, Ending::Exited(3));
        assert_eq!(out.stdout.len(), 1000);
        assert_eq!(out.stdout_dropped, 99_000);
        assert_eq!(out.stderr, b"oops\n");
    }

    #[test]
    fn only_the_standard_fds_are_open_at_exec() {
        let _turn = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let _leak = std::fs::File::open("/dev/null").unwrap();
        let out = run(&sh("ls /proc/self/fd"), Duration::from_secs(10)).unwrap();
        // ls itself opens one fd to read the directory.
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n3\n");
    }

    /// A run past its deadline is diagnosed and killed, daemons it left (double fork and
    /// setsid) included: nothing of it survives.
    #[test]
    fn timeouts_kill_the_whole_tree_daemons_included() {
        let _turn = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        become_subreaper().unwrap();
        let spec = sh("setsid sh -c 'sleep 1000 & exit 0' & sleep 1000 | cat");
        let out = run(&spec, Duration::from_millis(500)).unwrap();
        assert_eq!(out.ending, Ending::TimedOut);
        let diagnosis = out.diagnosis.unwrap();
        assert!(
            diagnosis.contains("`sleep`") && diagnosis.contains("is sleeping"),
            "{diagnosis}"
        );
        assert!(
            diagnosis.contains("`cat`") && diagnosis.contains("waits to read fd 0"),
            "{diagnosis}"
        );
        let me = std::process::id() as i32;
        let alive: Vec<_> = procinfo::descendants(me)
            .into_iter()
            .filter(|s| s.state != 'Z')
            .collect();
        assert!(alive.is_empty(), "survivors: {alive:?}");
    }
}
