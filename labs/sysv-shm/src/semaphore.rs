//! Part B: [`Semaphore`], a System V semaphore used as a lock between processes.
//!
//! A System V semaphore set holds one or more counters that never go below 0; this type
//! uses sets of exactly one. `wait` (`semop` with -1) blocks while the value is 0, `post`
//! (`semop` with +1) wakes a waiter. With the value 1 meaning "free", `wait` is lock and
//! `post` is unlock.
//!
//! A process that dies holding the lock (SIGKILL, a crash) never posts. `SEM_UNDO` makes
//! the kernel keep, per process, the sum of its operations on the semaphore (`semadj`) and
//! undo it when the process exits, however it exits: the lock is released for it.

use std::io;

use crate::Key;

/// A System V semaphore set of one semaphore. Dropping it does nothing: the set stays in
/// the kernel until [`Semaphore::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Semaphore {
    id: libc::c_int,
}

/// Holds the lock of a [`Semaphore`]; dropping it posts.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SemGuard<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// Creates a new set of one semaphore with `key`, permissions `mode` and the initial
    /// value `value` (1 for a free lock). It fails if a set with `key` exists already.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] (`EEXIST`) if `key` is taken; any other error of
    /// `semget(2)` or `semctl(2)`. On an error nothing is left behind.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use sysv_shm::{Key, Semaphore};
    ///
    /// let sem = Semaphore::create(Key::PRIVATE, 1, 0o600)?;
    /// {
    ///     let _guard = sem.lock()?;
    ///     assert_eq!(sem.value()?, 0);
    /// }
    /// assert_eq!(sem.value()?, 1);
    /// sem.remove()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(key: Key, value: u16, mode: u32) -> io::Result<Semaphore> {
        todo!("part B: semget({key}, 1, IPC_CREAT | IPC_EXCL | {mode:#o}), then SETVAL {value}")
    }

    /// Opens the existing set with `key`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] (`ENOENT`) if there is none; any other error of
    /// `semget(2)`.
    pub fn open(key: Key) -> io::Result<Semaphore> {
        todo!("part B: semget({key}, 0, 0)")
    }

    /// Its id (`semid`, as `ipcs -s` shows it).
    pub const fn id(&self) -> i32 {
        self.id
    }

    /// Decrements the value by 1, first waiting as long as it is 0 (`semop` -1 with
    /// `SEM_UNDO`). Retries when a signal interrupts the wait.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] (`EINVAL`) or `EIDRM` if the set is removed, before
    /// or during the wait; [`io::ErrorKind::PermissionDenied`] (`EACCES`) if the caller may
    /// not change it.
    pub fn wait(&self) -> io::Result<()> {
        todo!("part B: semop({}, -1, SEM_UNDO)", self.id)
    }

    /// Increments the value by 1, waking a waiter (`semop` +1 with `SEM_UNDO`).
    ///
    /// # Errors
    ///
    /// As [`Semaphore::wait`].
    pub fn post(&self) -> io::Result<()> {
        todo!("part B: semop({}, +1, SEM_UNDO)", self.id)
    }

    /// [`wait`](Semaphore::wait)s, and returns a guard that [`post`](Semaphore::post)s
    /// when dropped. If this process dies while it holds the guard, `SEM_UNDO` releases the
    /// lock.
    ///
    /// # Errors
    ///
    /// As [`Semaphore::wait`].
    pub fn lock(&self) -> io::Result<SemGuard<'_>> {
        todo!("part B: wait, then a guard that posts on drop")
    }

    /// The current value (`semctl(GETVAL)`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] (`EINVAL`) if the set was removed;
    /// [`io::ErrorKind::PermissionDenied`] (`EACCES`) if the caller may not read it.
    pub fn value(&self) -> io::Result<i32> {
        todo!("part B: semctl({}, 0, GETVAL)", self.id)
    }

    /// Removes the set at once (`semctl(IPC_RMID)`); processes waiting on it wake up with
    /// an error.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] (`EINVAL`) if it is already gone;
    /// [`io::ErrorKind::PermissionDenied`] (`EPERM`) if the caller neither owns nor created
    /// it.
    pub fn remove(self) -> io::Result<()> {
        todo!("part B: semctl({}, 0, IPC_RMID)", self.id)
    }
}

impl Drop for SemGuard<'_> {
    fn drop(&mut self) {
        todo!("part B: post semaphore {}", self.sem.id)
    }
}
