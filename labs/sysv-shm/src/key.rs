//! Part A: [`Key`], the name two processes agree on in advance.
//!
//! System V objects are not named by paths but by a 32-bit key. `ftok(path, id)` derives one
//! from the identity of an existing file (its inode and device numbers, not its name) and a
//! one-byte project id: every process that calls `ftok` on the same file with the same id
//! gets the same key, without talking to the others first. [`Key::PRIVATE`]
//! (`IPC_PRIVATE`) is the other choice: a fresh object nobody can find by key, shared only
//! by handing its id to a child or through a file.

use std::io;
use std::path::Path;

/// A System V IPC key (`key_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(libc::key_t);

impl Key {
    /// `IPC_PRIVATE`: every `create` with it makes a new object that no other process can
    /// open by key.
    pub const PRIVATE: Key = Key(libc::IPC_PRIVATE);

    /// The key of the existing file `path` and the project id `proj` (`ftok(3)`).
    ///
    /// The same file and `proj` always give the same key, in every process; another file,
    /// or another `proj`, gives another key (almost always: `ftok` keeps only part of the
    /// inode number).
    ///
    /// # Errors
    ///
    /// The error of `stat(2)` on `path` (kind [`io::ErrorKind::NotFound`] if it does not
    /// exist), with its OS error kept; [`io::ErrorKind::InvalidInput`] if `proj` is 0 or
    /// `path` contains a NUL byte.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use sysv_shm::Key;
    ///
    /// let file = std::env::temp_dir();
    /// assert_eq!(Key::from_path(&file, b'c')?, Key::from_path(&file, b'c')?);
    /// assert_ne!(Key::from_path(&file, b'c')?, Key::from_path(&file, b'd')?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_path(path: &Path, proj: u8) -> io::Result<Key> {
        todo!(
            "part A: ftok({}, {proj:?}), keeping the OS error",
            path.display()
        )
    }

    /// A key from its raw value (as `ipcs` shows it, or another program computed it).
    pub const fn from_raw(raw: libc::key_t) -> Key {
        Key(raw)
    }

    /// The raw `key_t`, for the libc calls.
    pub const fn raw(self) -> libc::key_t {
        self.0
    }
}

impl std::fmt::Display for Key {
    /// As `ipcs` shows keys: `0x` and 8 hex digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#010x}", self.0 as u32)
    }
}
