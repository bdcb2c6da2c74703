//! Running untrusted processes: each in its own process group, with only fds 0-2 open at
//! exec, SIGPIPE at its default, resource limits, a capped capture of its output, a deadline
//! that is a real wait (pidfd + poll), and a clean-up that kills and reaps every descendant.
//!
//! The grader process is a child subreaper ([`become_subreaper`]), so a process that double
//! forks or calls setsid is reparented to the grader rather than to init, and
//! [`kill_descendants`] still finds and ends it.

//!
//! # Layout
//! - `spec.rs`: what to run ([`Spec`], [`Rlimits`], [`Input`]) and how it ended ([`Ending`]).
//! - `capture.rs`: capped capture of stdout and stderr.
//! - `reap.rs`: subreaper, hang diagnosis, killing and reaping descendants.
//! - here: starting a process ([`spawn`], [`Proc`]) and running one to the end ([`run`]).

mod capture;
mod reap;
mod spec;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::procinfo::{self, Stat};
use capture::Capture;
use reap::settle;
pub use reap::{become_subreaper, diagnose_tree, kill_descendants};
pub use spec::{DEFAULT_CAP, Ending, Input, Rlimits, Spec, minimal_env};

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
    /// Everything it starts stays in its own tree (a PID namespace under [`crate::init`], or a
    /// grader process that forks nothing): its clean-up need not touch other runs.
    scoped: bool,
}

/// Starts `spec`.
pub fn spawn(spec: &Spec) -> std::io::Result<Proc> {
    // The kernel says only "No such file or directory" when the folder to start in is
    // missing (or, in a jail, not shown there): name it.
    if !spec.cwd.is_absolute() || !spec.cwd.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "the folder to start `{}` in, {}, {}",
                spec.program.to_string_lossy(),
                spec.cwd.display(),
                if spec.cwd.is_absolute() {
                    "does not exist"
                } else {
                    "is a relative path (the grader makes every path absolute first)"
                }
            ),
        ));
    }
    let isolation = spec
        .isolation
        .clone()
        .filter(|_| crate::isolate::worth_trying());
    let in_pid_ns = spec.pid_ns && crate::init::provided();
    let (mut child, scoped) = match command(spec, isolation.clone()).spawn() {
        Ok(c) => {
            if isolation.is_some() {
                crate::isolate::worked();
            }
            (c, (isolation.is_some() && in_pid_ns) || spec.own_tree_only)
        }
        Err(e) if isolation.is_some() && crate::isolate::is_refusal(&e) => {
            crate::isolate::refused(&e);
            (command(spec, None).spawn()?, spec.own_tree_only)
        }
        Err(e) if isolation.is_some() && e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the folder to start `{}` in, {}, is not shown in its jail",
                    spec.program.to_string_lossy(),
                    spec.cwd.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("{e}: `{}`", spec.program.to_string_lossy()),
            ));
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
        scoped,
    })
}

fn command(
    spec: &Spec,
    isolation: Option<Arc<crate::isolate::Isolation>>,
) -> std::process::Command {
    let pid_ns = spec.pid_ns && isolation.is_some() && crate::init::provided();
    let mut cmd = if pid_ns {
        // The init shim drops to `spec.user` itself, after it has mounted the namespace's
        // /proc (which needs the privilege).
        let mut c = std::process::Command::new("/proc/self/exe");
        c.arg("__init");
        if let Some((uid, gid)) = spec.user {
            c.args(["--user", &format!("{uid}:{gid}")]);
        }
        c.args(["--".as_ref(), spec.program.as_os_str()]);
        c
    } else {
        std::process::Command::new(&spec.program)
    };
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
    let user = if pid_ns { None } else { spec.user };
    let cgroup = spec.cgroup.clone();
    let join_ipc = spec.join_ipc.clone();
    let cwd = std::ffi::CString::new(spec.cwd.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: the closure only makes async-signal-safe system calls (close_range or fcntl,
    // setrlimit, sigprocmask, signal, unshare, mount, pivot_root, mkdir, open/write,
    // setgroups/setgid/setuid, prctl) and allocates nothing: every path was made into a C
    // string before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(cg) = &cgroup {
                cg.join();
            }
            if let Some(ns) = &join_ipc {
                crate::leftovers::enter(ns.as_raw_fd())?;
            }
            if let Some(iso) = &isolation {
                iso.enter(pid_ns, &cwd)?;
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
        if let Some(user) = user {
            drop_privileges(user)?;
        }
    }
    Ok(())
}

/// Becomes `uid`/`gid` for good: no supplementary groups, no capabilities (a setuid from
/// root to another uid clears them), and `no_new_privs`, so that no set-user-ID program can
/// give any back. Async-signal-safe.
pub fn drop_privileges((uid, gid): (u32, u32)) -> std::io::Result<()> {
    // SAFETY: plain system calls on integers.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(gid, gid, gid) != 0
            || libc::setresuid(uid, uid, uid) != 0
            || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        {
            return Err(std::io::Error::last_os_error());
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
    // A run in a PID namespace keeps everything it starts under its own process: its
    // clean-up looks there only, and other runs may go on beside it. Any other run may have
    // left orphans anywhere under the grader (its subreaper): every descendant goes.
    let root = if proc.scoped {
        proc.pid
    } else {
        std::process::id() as i32
    };
    let deadline = Instant::now() + timeout;
    let mut diagnosis = None;
    let ending = match proc.wait_until(deadline) {
        Some(e) => e,
        None => {
            let crowd = procinfo::descendants(root).len();
            if crowd > 64 {
                // Far more processes than any lab needs: a fork loop. Stop it before reading
                // /proc process by process.
                if proc.scoped {
                    reap::kill_tree(root);
                } else {
                    let _ = killpg(Pid::from_raw(proc.pid), Signal::SIGKILL);
                    kill_descendants();
                }
                diagnosis = Some(format!(
                    "- {crowd} processes were running when it was stopped: a process that forks \
                     without end (check every loop around fork, and that a child never returns \
                     into the parent's code: it must exec or _exit)\n"
                ));
            } else {
                diagnosis = Some(reap::diagnose_under(root));
            }
            // SIGTERM first so that well-behaved programs remove their IPC objects.
            for s in procinfo::descendants(root) {
                let _ = kill(Pid::from_raw(s.pid), Signal::SIGTERM);
            }
            if proc
                .wait_until(Instant::now() + Duration::from_millis(300))
                .is_none()
            {
                if proc.scoped {
                    // The namespace's init first, so that it never outlives the shim that
                    // waits for it (it would be reparented to the grader).
                    reap::kill_tree(root);
                }
                proc.kill();
            }
            Ending::TimedOut
        }
    };
    let elapsed = proc.elapsed();
    let leftovers = if proc.scoped {
        // It has been reaped, and with it everything it started: the shim exits only once
        // the namespace's init has, which takes every process of the namespace along (and
        // its pid may already be another run's).
        Vec::new()
    } else {
        if ending != Ending::TimedOut {
            settle(Instant::now() + Duration::from_millis(300));
        }
        kill_descendants()
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `run` ends every descendant of this process, so tests that spawn take turns.
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

    /// A folder to start in that is missing or relative is named in the error (the kernel
    /// would only say "No such file or directory", as if the program were missing).
    #[test]
    fn a_missing_working_folder_is_named() {
        for cwd in ["/no/such/folder", "relative/folder"] {
            let spec = Spec::new("/bin/true", Path::new(cwd));
            let e = spawn(&spec).unwrap_err().to_string();
            assert!(e.contains(cwd) && e.contains("/bin/true"), "{e}");
        }
        let e = spawn(&Spec::new("/no/such/program", &std::env::temp_dir()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/program"), "{e}");
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
