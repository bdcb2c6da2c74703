//! Part B: running every stage of a pipeline at once, connected by pipes.
//!
//! The steps, for a pipeline of n stages:
//!
//! 1. Before any `fork`, build everything a child will need: each stage's arguments as
//!    `CString`s, the null-terminated array of pointers that `execvp` takes, the
//!    "command not found" message. Between `fork` and `exec` a child may only call
//!    async-signal-safe functions (`dup2`, `close`, `signal`, `execvp`, `write`, `_exit`):
//!    no allocation, no `format!`, no `println!`.
//! 2. For each stage from left to right: create the pipe to the next stage (`pipe2` with
//!    `O_CLOEXEC`) and `fork`. The child `dup2`s the previous pipe's read end onto fd 0 and
//!    the new pipe's write end onto fd 1, sets SIGPIPE back to its default action and
//!    calls `execvp`. The parent closes at once every end it no longer needs.
//! 3. Once every stage runs, `waitpid` for each of them.

use std::ffi::{CString, OsStr, OsString, c_char};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{self, ForkResult, Pid, dup2_stdin, dup2_stdout, fork, pipe2};

use crate::args::{Plan, status_code};

/// Runs every stage of `plan` at the same time, each stage's stdout connected by a pipe to
/// the next stage's stdin, and waits for all of them.
///
/// The first stage reads the caller's stdin, the last one writes to the caller's stdout,
/// and every stage shares the caller's stderr. Each stage's program is looked up in `PATH`
/// (`execvp`). Every stage starts with only fds 0, 1 and 2 open (plus whatever the caller
/// itself inherited without close-on-exec, as under bash) and with SIGPIPE at its default
/// disposition, even though the Rust runtime ignores SIGPIPE in the caller.
///
/// A stage whose program cannot be found writes `pipeline: CMD: command not found` on
/// stderr and its status is 127; the other stages run all the same.
///
/// Returns one status per stage, left to right, as bash reports them (see
/// [`status_code`](crate::status_code())): the exit code, or 128 + N if signal N killed it.
/// When it returns, every stage has ended and been waited for, and every pipe it created
/// is closed.
///
/// # Errors
///
/// An error if a pipe cannot be created or a process cannot be forked (too many processes
/// or open files). Stages already started are then killed and waited for. A program that
/// cannot be found or executed is not an error: it is that stage's status.
///
/// # Example
///
/// ```no_run
/// use std::ffi::OsString;
/// use pipes::{parse_args, run};
///
/// let args = ["echo", "hello", "|", "tr", "a-z", "A-Z"].map(OsString::from);
/// let plan = parse_args(args).unwrap();
/// assert_eq!(run(&plan)?, [0, 0]); // and HELLO is on stdout
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run(plan: &Plan) -> io::Result<Vec<i32>> {
    // Everything a child needs is built now, before the first fork: between fork and exec a
    // child may only call async-signal-safe functions, so it can neither allocate nor format.
    let stages = plan
        .stages
        .iter()
        .map(|argv| Stage::new(argv))
        .collect::<io::Result<Vec<_>>>()?;

    let mut pids: Vec<Pid> = Vec::with_capacity(stages.len());
    // The read end of the previous stage's pipe: the next stage's stdin.
    let mut prev_read: Option<OwnedFd> = None;
    for (i, stage) in stages.iter().enumerate() {
        // O_CLOEXEC: a child inherits every fd the parent holds at fork, and this flag closes
        // each copy at exec, so a stage keeps only what it dup2'ed onto 0 and 1. Without it
        // `yes` in `yes | head` would hold the read end of its own pipe, and never get SIGPIPE.
        let next = if i + 1 < stages.len() {
            match pipe2(OFlag::O_CLOEXEC) {
                Ok(pipe) => Some(pipe),
                Err(errno) => return Err(abort(&pids, "pipe", errno)),
            }
        } else {
            None
        };
        let stdin = prev_read.as_ref().map(AsFd::as_fd);
        let stdout = next.as_ref().map(|(_, write)| write.as_fd());
        // SAFETY: the child calls only async-signal-safe functions until it execs or exits.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => stage.exec(stdin, stdout),
            Ok(ForkResult::Parent { child }) => pids.push(child),
            Err(errno) => return Err(abort(&pids, "fork", errno)),
        }
        // The parent needs neither end it just handed over, and closes both now (assigning
        // drops the old `prev_read`). A write end left open here would keep the next stage
        // from ever seeing EOF; a read end, the stage before from ever getting SIGPIPE.
        prev_read = next.map(|(read, write)| {
            drop(write);
            read
        });
    }

    // Every stage runs now. Wait for each one (even if waiting for another fails), in
    // order, so that each status lands in its stage's place.
    let statuses: Vec<io::Result<i32>> = pids.into_iter().map(wait_for).collect();
    statuses.into_iter().collect()
}

/// One stage, made ready before any fork: what `execvp` needs, and the messages the child
/// writes if it fails.
struct Stage {
    program: Program,
    /// `pipeline: CMD: command not found\n`, written with one `write`.
    not_found: Vec<u8>,
    /// `pipeline: CMD: `, followed by the reason when `execvp` fails otherwise.
    prefix: Vec<u8>,
}

impl Stage {
    fn new(argv: &[OsString]) -> io::Result<Stage> {
        let program = Program::new(argv)?;
        let mut prefix = b"pipeline: ".to_vec();
        prefix.extend_from_slice(program.name());
        prefix.extend_from_slice(b": ");
        let mut not_found = prefix.clone();
        not_found.extend_from_slice(b"command not found\n");
        Ok(Stage {
            program,
            not_found,
            prefix,
        })
    }

    /// In the child, just after `fork`: puts the pipe ends in place, resets SIGPIPE and
    /// execs the program. Only async-signal-safe calls. Never returns.
    fn exec(&self, stdin: Option<BorrowedFd<'_>>, stdout: Option<BorrowedFd<'_>>) -> ! {
        if redirect(stdin, stdout).is_err() {
            let _ = write_all_raw(
                stderr(),
                b"pipeline: cannot redirect a stage's stdin or stdout\n",
            );
            exit_child(126);
        }
        reset_sigpipe();
        let errno = self.program.exec();
        // As bash: 127 if there is no such program, 126 if it exists but cannot be run.
        if errno == Errno::ENOENT {
            let _ = write_all_raw(stderr(), &self.not_found);
            exit_child(127);
        }
        let _ = write_all_raw(stderr(), &self.prefix);
        let _ = write_all_raw(stderr(), errno.desc().as_bytes());
        let _ = write_all_raw(stderr(), b"\n");
        exit_child(126)
    }
}

/// A program and its arguments as `execvp` wants them, built before `fork`.
pub(crate) struct Program {
    /// The arguments; `argv_ptrs` points into their heap buffers.
    argv: Vec<CString>,
    /// Pointers to `argv`'s strings, then a null pointer.
    argv_ptrs: Vec<*const c_char>,
}

impl Program {
    /// Converts `argv` (the program, then its arguments) to C strings.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `argv` is empty or an argument contains a NUL byte.
    pub(crate) fn new<S: AsRef<OsStr>>(argv: &[S]) -> io::Result<Program> {
        if argv.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty argv: no program to run",
            ));
        }
        let argv = argv
            .iter()
            .map(|arg| CString::new(arg.as_ref().as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        let argv_ptrs = argv
            .iter()
            .map(|arg| arg.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        Ok(Program { argv, argv_ptrs })
    }

    /// The program's name as given (`argv[0]`).
    pub(crate) fn name(&self) -> &[u8] {
        self.argv[0].as_bytes()
    }

    /// Replaces the calling process's program, looking it up in `PATH`. Returns only if
    /// `execvp` failed, with its errno. Async-signal-safe: it calls libc's `execvp`
    /// directly, because nix's wrapper allocates the pointer array.
    pub(crate) fn exec(&self) -> Errno {
        // SAFETY: both pointers stay valid for the call: `argv_ptrs` is null-terminated and
        // points into `argv`, which `self` owns.
        unsafe { libc::execvp(self.argv[0].as_ptr(), self.argv_ptrs.as_ptr()) };
        Errno::last()
    }
}

/// In a child after `fork`: makes `stdin` fd 0 and `stdout` fd 1 (`None` leaves that fd as
/// inherited). Async-signal-safe.
///
/// The originals stay open but are close-on-exec; `dup2` clears that flag on the copy.
pub(crate) fn redirect(
    stdin: Option<BorrowedFd<'_>>,
    stdout: Option<BorrowedFd<'_>>,
) -> Result<(), Errno> {
    // A pipe end is fd 0, 1 or 2 only if the caller closed that fd. Then move it up first:
    // a dup2 could overwrite the other source, and dup2 onto itself would leave
    // close-on-exec set.
    let stdin = stdin.map(above_stdio).transpose()?;
    let stdout = stdout.map(above_stdio).transpose()?;
    if let Some(fd) = stdin {
        retry_eintr(|| dup2_stdin(fd))?;
    }
    if let Some(fd) = stdout {
        retry_eintr(|| dup2_stdout(fd))?;
    }
    Ok(())
}

/// `fd` itself if it is above 2, else a close-on-exec copy of it numbered 3 or more.
fn above_stdio(fd: BorrowedFd<'_>) -> Result<BorrowedFd<'_>, Errno> {
    if fd.as_raw_fd() > libc::STDERR_FILENO {
        return Ok(fd);
    }
    let copy = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: `copy` was just opened; the child execs or exits without closing it.
    Ok(unsafe { BorrowedFd::borrow_raw(copy) })
}

/// In a child after `fork`: gives SIGPIPE back its default action (terminate).
///
/// The Rust runtime ignores SIGPIPE, and an ignored signal stays ignored across exec. A
/// program started with SIGPIPE ignored gets EPIPE instead: `yes | head -n 1` would then
/// print "Broken pipe" and exit 1 rather than end quietly of SIGPIPE.
pub(crate) fn reset_sigpipe() {
    // SAFETY: SIG_DFL installs no handler; signal(2) is async-signal-safe.
    let _ = unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Writes all of `bytes` to `fd`, retrying after a signal. Async-signal-safe.
pub(crate) fn write_all_raw(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Waits until `pid` ends, then gives its status as bash reports it.
///
/// # Errors
///
/// If `waitpid` fails for another reason than a signal (`pid` is not our child).
pub(crate) fn wait_for(pid: Pid) -> io::Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(status) => {
                if let Some(code) = status_code(status) {
                    return Ok(code);
                }
            }
            // A signal handler ran while we waited: the child is still there.
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(os_error("waitpid", errno)),
        }
    }
}

/// An `io::Error` that names the call that failed: `fork: Resource temporarily unavailable`.
pub(crate) fn os_error(call: &str, errno: Errno) -> io::Error {
    io::Error::new(
        io::Error::from(errno).kind(),
        format!("{call}: {}", errno.desc()),
    )
}

/// After a failed `pipe` or `fork`: kills and reaps the stages already started, which
/// would otherwise wait on a pipeline that will never be complete.
fn abort(pids: &[Pid], call: &str, errno: Errno) -> io::Error {
    for &pid in pids {
        let _ = signal::kill(pid, Signal::SIGKILL);
        let _ = wait_for(pid);
    }
    os_error(call, errno)
}

/// Runs `f` again for as long as it fails with EINTR.
fn retry_eintr<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::EINTR) => {}
            other => return other,
        }
    }
}

/// Ends a child that could not exec, at once. `_exit`, not `std::process::exit`: `exit`
/// would run atexit handlers and flush stdio buffers copied from the parent. nix has no
/// wrapper for it.
pub(crate) fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and takes no pointer.
    unsafe { libc::_exit(code) }
}

/// fd 2, for messages written by a child.
fn stderr() -> BorrowedFd<'static> {
    // SAFETY: fd 2 is only written to; if it is closed the write fails with EBADF.
    unsafe { BorrowedFd::borrow_raw(libc::STDERR_FILENO) }
}
