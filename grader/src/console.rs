//! The grader's own output on stdout and stderr, written so that a closed pipe never panics,
//! hangs or stops a grading (`grader grade ... | head -8`, `grader list | head`, a terminal
//! that went away): what cannot be shown is dropped, and the result files and the exit
//! status still tell. `println!` and `eprintln!` panic on a closed stream; use [`outln!`](crate::outln)
//! and [`errln!`](crate::errln) instead.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout; `false` once stdout is closed (the reader is gone).
pub fn out(text: &str) -> bool {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    let mut o = std::io::stdout().lock();
    let ok = o
        .write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .is_ok();
    if !ok {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
    ok
}

/// Writes `text` to stderr, dropping it if stderr is closed.
pub fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
}

/// `println!` that never panics: see [`out`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::console::out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics: see [`err`].
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::console::err(&format!("{}\n", format_args!($($arg)*))) };
}
