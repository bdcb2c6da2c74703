//! `shmctr`: a counter in System V shared memory, guarded by a System V semaphore.
//!
//! ```text
//! shmctr create PATH      make the counter of PATH (0), mode 0600; exit 1 if it exists
//! shmctr add PATH N       add 1 to it N times, each time under the lock
//! shmctr get PATH         print its value
//! shmctr stat PATH        print size=<bytes> nattch=<n> mode=<octal> cpid=<pid>
//! shmctr remove PATH      remove its segment and its semaphore; exit 1 if absent
//! ```
//!
//! The counter of PATH is a segment of [`SIZE`] bytes (one `u64`, native endian, 0 when
//! created) and a set of one semaphore (1 = free, 0 = taken), both with the key
//! `ftok(PATH, 'c')` and the mode 0600. PATH must be an existing file; `shmctr` never
//! creates or changes it.
//!
//! - `add` makes each increment in three steps under the lock: take the lock, read the
//!   counter, `std::thread::yield_now()`, write the value + 1, release the lock. The yield
//!   widens the window between the read and the write, so that a missing lock shows at once.
//!   Every semop has `SEM_UNDO`: a killed `add` never keeps the lock.
//! - `get` prints the value and a newline.
//! - `stat` prints `size=8 nattch=0 mode=600 cpid=4242`: `shm_segsz`, `shm_nattch`, the
//!   permission bits in octal and `shm_cpid`, from `shmctl(IPC_STAT)`, without attaching.
//! - `remove` removes both objects; if either was missing it still removes the other, and
//!   exits 1.
//!
//! Exit status: 0 on success; 1 on an error, with one line `shmctr: <what went wrong>` on
//! stderr that ends with the OS error (`Permission denied (os error 13)`); 2 on a usage
//! error (an unknown command, a missing or extra argument, N not a number), with the usage
//! on stderr.

// Parts of the skeleton are unused until you write part C; delete this line then.
#![allow(dead_code, unused_imports)]

use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use sysv_shm::{Key, Segment, Semaphore};

/// The usage, printed on a usage error.
const USAGE: &str = "usage: shmctr create PATH | add PATH N | get PATH | stat PATH | remove PATH";

/// The size of the counter's segment: one `u64`.
const SIZE: usize = 8;

/// The permissions of the segment and the semaphore: only their owner may use them.
const MODE: u32 = 0o600;

/// The project id given to `ftok`.
const PROJ: u8 = b'c';

/// A command line, parsed.
enum Command<'a> {
    Create(&'a str),
    Add(&'a str, u64),
    Get(&'a str),
    Stat(&'a str),
    Remove(&'a str),
}

fn parse(args: &[String]) -> Option<Command<'_>> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["create", path] => Some(Command::Create(path)),
        ["add", path, n] => Some(Command::Add(path, n.parse().ok()?)),
        ["get", path] => Some(Command::Get(path)),
        ["stat", path] => Some(Command::Stat(path)),
        ["remove", path] => Some(Command::Remove(path)),
        _ => None,
    }
}

/// Adds `what` in front of an error's message, keeping its kind.
fn context(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |err| io::Error::new(err.kind(), format!("{what}: {err}"))
}

fn key_of(path: &str) -> io::Result<Key> {
    Key::from_path(Path::new(path), PROJ).map_err(context(path.to_owned()))
}

fn create(path: &str) -> io::Result<()> {
    todo!("part C: create the segment and the semaphore of {path}")
}

fn add(path: &str, n: u64) -> io::Result<()> {
    todo!("part C: add 1 to the counter of {path}, {n} times, each under the lock")
}

fn get(path: &str) -> io::Result<()> {
    todo!("part C: print the counter of {path}")
}

fn stat(path: &str) -> io::Result<()> {
    todo!("part C: print size, nattch, mode and cpid of the segment of {path}")
}

fn remove(path: &str) -> io::Result<()> {
    todo!("part C: remove the segment and the semaphore of {path}")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = parse(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command {
        Command::Create(path) => create(path),
        Command::Add(path, n) => add(path, n),
        Command::Get(path) => get(path),
        Command::Stat(path) => stat(path),
        Command::Remove(path) => remove(path),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shmctr: {err}");
            ExitCode::from(1)
        }
    }
}
