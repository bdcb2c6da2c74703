//! Part C: what `ring-send` and `ring-recv` share: finding or making the ring, cleaning up
//! its name, signals and exit statuses.
//!
//! Either program may start first. Each tries to create the ring; if it exists, it opens it
//! instead. Once both halves are attached nobody needs the name any more, so whichever side
//! sees both attached removes it at once: after that, a crash of either process can leave
//! nothing behind in /dev/shm. Until then, the name is removed on every error path and on
//! SIGINT/SIGTERM.

// The imports name the calls you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::ffi::CString;
use std::sync::OnceLock;

use crate::ring::{self, Ring, RingError};

/// The usage line of `prog`.
pub fn usage(prog: &str) -> String {
    format!("usage: {prog} [--capacity BYTES] NAME   (NAME like /myring)")
}

/// The parsed command line: the ring's name and the capacity to create it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The ring's name (`/` and then a name).
    pub name: String,
    /// The capacity if this program creates the ring.
    pub capacity: usize,
}

/// Parses `[--capacity BYTES] NAME`; `Err` is a usage error. The name itself is checked
/// later, by the library (a bad name is a runtime error: exit 1).
pub fn parse_args(args: &[String]) -> Result<Args, String> {
    todo!("part C: parse `[--capacity BYTES] NAME`")
}

/// Creates the ring, or opens it when the other program created it first. `Ok(true)` with
/// the ring when this process created it.
pub fn create_or_open(name: &str, capacity: usize) -> Result<(Ring, bool), RingError> {
    todo!("part C: create; if it exists, open; if it vanished in between, try again")
}

/// The path removed by the signal handler.
static CLEANUP: OnceLock<CString> = OnceLock::new();

/// Removes the ring's name on SIGINT or SIGTERM, then dies of that signal as usual.
pub fn remove_on_signal(name: &str) {
    todo!("part C: on SIGINT/SIGTERM unlink the object's path, then die of the signal")
}

/// Removes the name once both halves are attached; a missing name is fine (the other side
/// removed it, or it never got this far).
pub fn unlink_quietly(name: &str) {
    todo!("part C: Ring::unlink, ignoring errors")
}

/// Runs `body` as program `prog`: its error becomes `prog: <error>` on stderr and exit 1,
/// after the ring's name is removed.
pub fn main_with(prog: &str, body: impl FnOnce(&Args) -> Result<(), String>) -> ! {
    todo!(
        "part C: parse the arguments (usage error: exit 2), run body, print `prog: error` and exit 1 on error, else exit 0"
    )
}
