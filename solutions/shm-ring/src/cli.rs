//! Part C: what `ring-send` and `ring-recv` share: finding or making the ring, cleaning up
//! its name, signals and exit statuses.
//!
//! Either program may start first. Each tries to create the ring; if it exists, it opens it
//! instead. Once both halves are attached nobody needs the name any more, so whichever side
//! sees both attached removes it at once: after that, a crash of either process can leave
//! nothing behind in /dev/shm. Until then, the name is removed on every error path and on
//! SIGINT/SIGTERM.

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
    let mut capacity = ring::DEFAULT_CAPACITY;
    let mut name = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--capacity" => {
                let v = it.next().ok_or("--capacity needs a value")?;
                capacity = v.parse().map_err(|_| format!("bad capacity {v:?}"))?;
            }
            _ if name.is_none() => name = Some(a.clone()),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let name = name.ok_or("missing NAME")?;
    Ok(Args { name, capacity })
}

/// Creates the ring, or opens it when the other program created it first. `Ok(true)` with
/// the ring when this process created it.
pub fn create_or_open(name: &str, capacity: usize) -> Result<(Ring, bool), RingError> {
    loop {
        match Ring::create(name, capacity) {
            Ok(r) => return Ok((r, true)),
            Err(RingError::Exists(_)) => {}
            Err(e) => return Err(e),
        }
        match Ring::open(name) {
            Ok(r) => return Ok((r, false)),
            // Gone between our create and our open: the pair using it just paired up and
            // removed the name. Try again; a second pair is then a new ring.
            Err(RingError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The path removed by the signal handler.
static CLEANUP: OnceLock<CString> = OnceLock::new();

/// Removes the ring's name on SIGINT or SIGTERM, then dies of that signal as usual.
pub fn remove_on_signal(name: &str) {
    let _ = CLEANUP.set(ring::shm_path(name));
    extern "C" fn on_signal(sig: libc::c_int) {
        // Only async-signal-safe calls: unlink, signal, raise.
        if let Some(path) = CLEANUP.get() {
            // SAFETY: a valid C string; unlink and raise are async-signal-safe.
            unsafe { libc::unlink(path.as_ptr()) };
        }
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installing a handler that only makes async-signal-safe calls.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

/// Removes the name once both halves are attached; a missing name is fine (the other side
/// removed it, or it never got this far).
pub fn unlink_quietly(name: &str) {
    let _ = Ring::unlink(name);
}

/// Runs `body` as program `prog`: its error becomes `prog: <error>` on stderr and exit 1,
/// after the ring's name is removed.
pub fn main_with(prog: &str, body: impl FnOnce(&Args) -> Result<(), String>) -> ! {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{prog}: {e}\n{}", usage(prog));
            std::process::exit(2);
        }
    };
    match body(&args) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{prog}: {e}");
            std::process::exit(1);
        }
    }
}
