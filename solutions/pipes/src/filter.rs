//! Part C: `filter`, which runs a program as a function from bytes to bytes.
//!
//! Two pipes connect the caller and its child: one to the child's stdin, one from its
//! stdout. Each holds only 64 KiB. Writing all the input before reading any output
//! deadlocks as soon as both are full: the child blocks writing its output, which nobody
//! reads, and the caller blocks writing its input, which the child no longer reads. So
//! the caller must read while it writes: `poll(2)` on both fds, with the write end made
//! non-blocking (or a second thread that writes).
//!
//! A missing program is known only in the child, when `execvp` fails. A third pipe,
//! close-on-exec, carries the news: the child writes its `errno` into it if `execvp`
//! fails; if `execvp` succeeds the kernel closes the child's end and the parent reads EOF.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{self, ForkResult, fork, pipe2};

use crate::run::{Program, exit_child, os_error, redirect, reset_sigpipe, wait_for, write_all_raw};

/// What a program run by [`filter`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// Its status as bash reports it: the exit code, or 128 + N if signal N killed it.
    pub status: i32,
    /// Everything it wrote on its stdout, until it closed it.
    pub stdout: Vec<u8>,
}

/// Runs `argv[0]` (looked up in `PATH`) with the arguments `argv[1..]`, writes `input` to
/// its stdin, and returns its status and everything it wrote on its stdout.
///
/// The input is written while the output is read, so the call never deadlocks, whatever
/// the sizes: not on a program that writes before it reads (`cat`), nor on one that never
/// reads (`head -c 5 /dev/zero`). If the program ends or closes its stdin before taking
/// all the input, the rest is dropped, as in a shell; that is not an error. The program's
/// stderr is the caller's, and it starts with SIGPIPE at its default action. Once the
/// input is written, its stdin is closed, so the program sees EOF.
///
/// It is made of `pipe`, `fork`, `dup2`, `execvp` and `waitpid`, not
/// `std::process::Command`. It may be called from many threads at once: no thread's
/// program inherits a pipe end of another call. The caller must ignore SIGPIPE, as every
/// Rust program does unless told otherwise.
///
/// # Errors
///
/// - [`io::ErrorKind::NotFound`] if there is no such program;
///   [`io::ErrorKind::PermissionDenied`] if it cannot be executed.
/// - [`io::ErrorKind::InvalidInput`] if `argv` is empty or an argument contains a NUL byte.
/// - Any other error of the system calls (too many open files or processes).
///
/// A program that fails or is killed is not an error: see [`Filtered::status`].
///
/// # Example
///
/// ```
/// use pipes::filter;
///
/// let out = filter(&["tr", "a-z", "A-Z"], b"hello\n")?;
/// assert_eq!(out.status, 0);
/// assert_eq!(out.stdout, b"HELLO\n");
///
/// let err = filter(&["no-such-program"], b"").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn filter<S: AsRef<OsStr>>(argv: &[S], input: &[u8]) -> io::Result<Filtered> {
    // Built before fork: in a multi-threaded process the child may not allocate (another
    // thread may have held the allocator's lock at the fork, and nobody would release it).
    let program = Program::new(argv)?;

    // O_CLOEXEC on every pipe, set atomically as it is created: another thread may fork and
    // exec at any moment, and its program must not inherit our ends. One that held our
    // stdin's write end would keep our program from ever seeing EOF.
    let (stdin_read, stdin_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| os_error("pipe", e))?;
    let (stdout_read, stdout_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| os_error("pipe", e))?;
    // The child reports a failed exec here (its errno). A successful exec closes the write
    // end (close-on-exec), and the parent reads EOF.
    let (exec_read, exec_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| os_error("pipe", e))?;

    // SAFETY: the child calls only async-signal-safe functions until it execs or exits.
    let child = match unsafe { fork() }.map_err(|e| os_error("fork", e))? {
        ForkResult::Child => {
            let errno = match redirect(Some(stdin_read.as_fd()), Some(stdout_write.as_fd())) {
                Ok(()) => {
                    reset_sigpipe();
                    program.exec()
                }
                Err(errno) => errno,
            };
            let _ = write_all_raw(exec_write.as_fd(), &(errno as i32).to_ne_bytes());
            exit_child(127)
        }
        ForkResult::Parent { child } => child,
    };
    // The child's ends. Were they open here, we would never read EOF on its stdout nor on
    // the exec pipe.
    drop((stdin_read, stdout_write, exec_write));

    // Blocks only until the child has exec'd or failed to.
    let output = match read_exec_error(exec_read) {
        Ok(None) => pump(stdin_write, stdout_read, input),
        Ok(Some(errno)) => {
            wait_for(child)?; // no zombie left behind
            let name = String::from_utf8_lossy(program.name());
            return Err(io::Error::new(
                io::Error::from(errno).kind(),
                format!("cannot run {name}: {}", errno.desc()),
            ));
        }
        Err(err) => {
            drop((stdin_write, stdout_read));
            Err(err)
        }
    };
    // Reap the child even if something failed: our ends are closed by now, so it ends too.
    let status = wait_for(child)?;
    Ok(Filtered {
        status,
        stdout: output?,
    })
}

/// Reads the exec pipe to its end: `None` if the exec succeeded (EOF, nothing written), the
/// child's errno if it failed.
fn read_exec_error(fd: OwnedFd) -> io::Result<Option<Errno>> {
    let mut buf = [0; 4];
    let mut len = 0;
    while len < buf.len() {
        match unistd::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(os_error("read", errno)),
        }
    }
    match len {
        0 => Ok(None),
        4 => Ok(Some(Errno::from_raw(i32::from_ne_bytes(buf)))),
        _ => Err(io::Error::other("the child's exec report was cut short")),
    }
}

/// Feeds `input` into `stdin` while it collects everything from `stdout`, until the program
/// has closed its stdout and taken (or refused) all of the input.
fn pump(stdin: OwnedFd, stdout: OwnedFd, input: &[u8]) -> io::Result<Vec<u8>> {
    // Non-blocking, so a full pipe makes write fail with EAGAIN instead of blocking us:
    // blocked there we would stop reading, the program would block on its full stdout, and
    // neither would ever move again. The flag is on our end only; the program's stays
    // blocking.
    fcntl(&stdin, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| os_error("fcntl", e))?;
    // No input: close at once, so the program sees EOF.
    let mut stdin = (!input.is_empty()).then_some(stdin);
    let mut stdout = Some(stdout);
    let mut unwritten = input;
    let mut output = Vec::new();
    let mut buf = vec![0; 64 * 1024];

    while stdin.is_some() || stdout.is_some() {
        let mut fds = Vec::with_capacity(2);
        fds.extend(
            stdout
                .as_ref()
                .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
        );
        fds.extend(
            stdin
                .as_ref()
                .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLOUT)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(os_error("poll", errno)),
        }
        // POLLHUP and POLLERR count as ready: the read then returns EOF, the write EPIPE.
        let mut ready = fds.iter().map(|fd| fd.any().unwrap_or(true));
        let can_read = stdout.is_some() && ready.next() == Some(true);
        let can_write = stdin.is_some() && ready.next() == Some(true);

        if let (true, Some(fd)) = (can_read, &stdout) {
            match unistd::read(fd, &mut buf) {
                // EOF: the program, and everyone else, closed the write end.
                Ok(0) => stdout = None,
                Ok(n) => output.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(errno) => return Err(os_error("read", errno)),
            }
        }
        if let (true, Some(fd)) = (can_write, &stdin) {
            match unistd::write(fd, unwritten) {
                Ok(n) => {
                    unwritten = &unwritten[n..];
                    if unwritten.is_empty() {
                        stdin = None; // closed: EOF for the program
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                // The program closed its stdin, or ended, without reading it all: as in a
                // shell, the rest of the input is not wanted.
                Err(Errno::EPIPE) => stdin = None,
                Err(errno) => return Err(os_error("write", errno)),
            }
        }
    }
    Ok(output)
}
