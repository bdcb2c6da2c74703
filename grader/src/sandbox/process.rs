//! Starting one sandboxed process ([`spawn`]) and holding it ([`Proc`]): its own process
//! group, limits, its identity, its jail, only fds 0-2 open at exec, and a capped capture of
//! its output.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::capture::Capture;
use super::spec::{Ending, Input, Rlimits, Spec};

/// A running sandboxed process.
#[derive(Debug)]
pub struct Proc {
    /// Its pid (also its process group id when it has its own group).
    pub pid: i32,
    own_group: bool,
    child: Child,
    pidfd: Option<OwnedFd>,
    stdin: Option<ChildStdin>,
    pub(super) stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    threads: Vec<JoinHandle<()>>,
    ending: Option<Ending>,
    started: Instant,
    /// Everything it starts stays in its own tree (a PID namespace under [`crate::sandbox::init`], or a
    /// grader process that forks nothing): its clean-up need not touch other runs.
    pub(super) scoped: bool,
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
        .filter(|_| crate::sandbox::isolate::worth_trying());
    let in_pid_ns = spec.pid_ns && crate::sandbox::init::provided();
    let (mut child, scoped) = match command(spec, isolation.clone())?.spawn() {
        Ok(c) => {
            if isolation.is_some() {
                crate::sandbox::isolate::worked();
            }
            (c, (isolation.is_some() && in_pid_ns) || spec.own_tree_only)
        }
        Err(e) if isolation.is_some() && crate::sandbox::isolate::is_refusal(&e) => {
            crate::sandbox::isolate::refused(&e);
            (command(spec, None)?.spawn()?, spec.own_tree_only)
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
    isolation: Option<Arc<crate::sandbox::isolate::Isolation>>,
) -> std::io::Result<std::process::Command> {
    let pid_ns = spec.pid_ns && isolation.is_some() && crate::sandbox::init::provided();
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
        .stdin(match &spec.input {
            Input::Null => Stdio::null(),
            Input::File(fd) => Stdio::from(fd.try_clone()?),
            Input::Bytes(_) | Input::Pipe => Stdio::piped(),
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
                crate::sandbox::leftovers::enter(ns.as_raw_fd())?;
            }
            if let Some(iso) = &isolation {
                iso.enter(pid_ns, &cwd)?;
            }
            child_setup(&limits, user)
        });
    }
    Ok(cmd)
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
        // Rust's runtime ignores SIGPIPE, and an ignored disposition survives exec; so does
        // one the grader inherited (a shell starts a background job with SIGINT and SIGQUIT
        // ignored): every program starts with the signals a contract names at their default.
        for sig in [
            libc::SIGPIPE,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGHUP,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
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
    pub(super) fn finish_streams(&mut self, deadline: Instant) {
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
