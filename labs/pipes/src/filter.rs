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
/// ```no_run
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
    let argv: Vec<&OsStr> = argv.iter().map(AsRef::as_ref).collect();
    todo!(
        "part C: run {argv:?} with {} bytes on its stdin",
        input.len()
    )
}
