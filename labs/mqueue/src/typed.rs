//! Part B: [`TypedQueue`], a System V message queue (`msgget`, `msgsnd`, `msgrcv`, `msgctl`).
//!
//! System V queues predate POSIX ones. A queue is found by a numeric key (agreed in advance,
//! often made from a path with `ftok`) or created private (`IPC_PRIVATE`) and its id handed
//! to the processes that need it. Each message carries a type, a number > 0, and `msgrcv`
//! selects by it: `msgtyp == 0` takes the oldest message, `msgtyp > 0` the oldest message of
//! exactly that type, `msgtyp < 0` the oldest message of the lowest type `<= |msgtyp|`.
//! The queue lives until `msgctl(IPC_RMID)`, even when nobody uses it: `ipcs -q` lists it.
//!
//! nix wraps none of this, so the calls go through `libc`. A message in memory is a
//! `long` (the type) directly followed by the bytes; `msgsnd`'s size counts only the bytes.

use std::io;
use std::path::Path;

/// The largest message a queue takes by default, in bytes (`/proc/sys/kernel/msgmax`).
pub const MAX_TYPED_MESSAGE: usize = 8192;

/// Which message [`TypedQueue::receive`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The oldest message, whatever its type (`msgtyp` 0).
    Any,
    /// The oldest message of exactly this type (`msgtyp` > 0).
    Exactly(i64),
    /// The oldest message of the lowest type that is at most this (`msgtyp` < 0).
    AtMost(i64),
}

/// A System V message queue, by its id. Dropping it does not remove the queue: call
/// [`TypedQueue::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypedQueue {
    id: i32,
}

/// A key for [`TypedQueue::create`]: `ftok(path, project)`. Processes that agree on the
/// path (which must exist) and the project number get the same key.
///
/// # Errors
///
/// [`io::ErrorKind::NotFound`] if `path` does not exist; [`io::ErrorKind::InvalidInput`]
/// if `project` is 0 or the path contains a NUL byte.
pub fn key_for(path: &Path, project: u8) -> io::Result<libc::key_t> {
    let _ = (path, project);
    todo!("part B: ftok")
}

impl TypedQueue {
    /// Creates a new queue that no key finds (`IPC_PRIVATE`), mode 0600. Processes forked
    /// afterwards, or told its [`id`](Self::id), can use it.
    ///
    /// # Errors
    ///
    /// Any error of `msgget` (`ENOSPC`: too many queues).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use mqueue::{Select, TypedQueue};
    ///
    /// let q = TypedQueue::private()?;
    /// q.send(2, b"second")?;
    /// q.send(1, b"first")?;
    /// assert_eq!(q.receive(Select::AtMost(5))?, (1, b"first".to_vec()));
    /// q.remove()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn private() -> io::Result<TypedQueue> {
        todo!("part B: msgget(IPC_PRIVATE, ...)")
    }

    /// Creates the queue with `key`, which must not exist yet, mode 0600.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] if a queue has that key; any other error of `msgget`.
    pub fn create(key: libc::key_t) -> io::Result<TypedQueue> {
        let _ = key;
        todo!("part B: msgget with IPC_CREAT | IPC_EXCL | 0600")
    }

    /// Finds the existing queue with `key`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if there is none; [`io::ErrorKind::PermissionDenied`] if
    /// it is someone else's.
    pub fn open(key: libc::key_t) -> io::Result<TypedQueue> {
        let _ = key;
        todo!("part B: msgget of an existing key")
    }

    /// The queue with this id (as [`id`](Self::id) gave it), without any system call.
    pub fn from_id(id: i32) -> TypedQueue {
        TypedQueue { id }
    }

    /// The queue's id, as `ipcs -q` shows it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Sends `data` as a message of type `mtype`, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] if `mtype` is not > 0 or `data` is longer than
    ///   [`MAX_TYPED_MESSAGE`], before any system call.
    /// - [`io::ErrorKind::Interrupted`] if a signal handler ran while it waited.
    /// - The kernel's `EIDRM`/`EINVAL` if the queue was removed.
    pub fn send(&self, mtype: i64, data: &[u8]) -> io::Result<()> {
        let _ = (mtype, data);
        todo!("part B: msgsnd")
    }

    /// Takes the message `which` selects, waiting until there is one; returns its type and
    /// bytes.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] for `Exactly(t)` or `AtMost(t)` with `t <= 0`.
    /// - [`io::ErrorKind::Interrupted`] if a signal handler ran while it waited.
    /// - The kernel's `EIDRM`/`EINVAL` if the queue was removed.
    pub fn receive(&self, which: Select) -> io::Result<(i64, Vec<u8>)> {
        let _ = which;
        todo!("part B: msgrcv, waiting")
    }

    /// Takes the message `which` selects if there is one now; never waits.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] if no message matches; as [`receive`](Self::receive)
    /// otherwise.
    pub fn try_receive(&self, which: Select) -> io::Result<(i64, Vec<u8>)> {
        let _ = which;
        todo!("part B: msgrcv with IPC_NOWAIT")
    }

    /// How many messages are in the queue now (`msgctl(IPC_STAT)`'s `msg_qnum`).
    ///
    /// # Errors
    ///
    /// Any error of `msgctl` (`EINVAL` once the queue is removed).
    pub fn len(&self) -> io::Result<usize> {
        todo!("part B: msg_qnum from msgctl(IPC_STAT)")
    }

    /// Whether the queue holds no message now.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes the queue (`IPC_RMID`): processes waiting in `send` or `receive` wake up with
    /// an error, and its messages are gone.
    ///
    /// # Errors
    ///
    /// Any error of `msgctl` (`EINVAL` if it was already removed).
    pub fn remove(self) -> io::Result<()> {
        todo!("part B: msgctl(IPC_RMID)")
    }
}
