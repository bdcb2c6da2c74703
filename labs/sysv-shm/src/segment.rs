//! Part A: [`Segment`], a System V shared memory segment, and [`Attachment`], the segment
//! mapped into this process.
//!
//! A segment lives in the kernel, not in any process: `shmget` creates or finds it, `shmat`
//! maps it into the caller's address space (each process at its own address), `shmdt`
//! unmaps it, and `shmctl(IPC_RMID)` marks it for removal. A removed segment disappears only
//! once the last process has detached (`nattch` reaches 0); a segment nobody removes
//! outlives every process, until reboot.
//!
//! The mapped bytes can change at any moment under our feet: another process writes them.
//! Rust's references promise the opposite (`&[u8]`: nobody writes; `&mut [u8]`: nobody
//! else reads or writes), so handing out either would be undefined behaviour. The memory is
//! reached through atomics ([`Attachment::words`]) or raw pointers, which promise nothing.

use std::io;
use std::sync::atomic::AtomicU64;

use crate::Key;

/// A System V shared memory segment, known by its id. Dropping it does nothing: the segment
/// stays in the kernel until [`Segment::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    id: libc::c_int,
}

/// What the kernel knows about a segment (`struct shmid_ds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStat {
    /// Its size in bytes, as created.
    pub size: usize,
    /// Its permission bits (`0o600`), without the kernel's state flags.
    pub mode: u32,
    /// How many attachments it has, over all processes.
    pub nattch: u64,
    /// The pid of the process that created it.
    pub cpid: i32,
    /// The pid of the process that last attached or detached it (0 if none has).
    pub lpid: i32,
    /// The owner's uid.
    pub uid: u32,
}

impl Segment {
    /// Creates a new segment of `size` bytes, zero-filled, with permissions `mode` (like
    /// `0o600`). It fails if a segment with `key` exists already (`IPC_CREAT | IPC_EXCL`);
    /// with [`Key::PRIVATE`] it always makes a new one.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AlreadyExists`] (`EEXIST`) if `key` is taken;
    /// [`io::ErrorKind::InvalidInput`] (`EINVAL`) if `size` is 0 or too big; any other error
    /// of `shmget(2)`. The OS error is kept ([`io::Error::raw_os_error`]).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use sysv_shm::{Key, Segment};
    ///
    /// let seg = Segment::create(Key::PRIVATE, 4096, 0o600)?;
    /// assert_eq!(seg.stat()?.size, 4096);
    /// seg.remove()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(key: Key, size: usize, mode: u32) -> io::Result<Segment> {
        todo!("part A: shmget({key}, {size}, IPC_CREAT | IPC_EXCL | {mode:#o})")
    }

    /// Opens the existing segment with `key`, whatever its size.
    ///
    /// Opening checks no permission: attaching does.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] (`ENOENT`) if there is no segment with `key`; any other
    /// error of `shmget(2)`.
    pub fn open(key: Key) -> io::Result<Segment> {
        todo!("part A: shmget({key}, 0, 0)")
    }

    /// Opens the segment with `key`, creating it (`size` bytes, `mode`) if there is none.
    /// Many processes may call it at once: exactly one creates the segment, every one gets
    /// the same.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] (`EINVAL`) if the segment exists and is smaller than
    /// `size`; any other error of `shmget(2)`.
    pub fn open_or_create(key: Key, size: usize, mode: u32) -> io::Result<Segment> {
        todo!("part A: shmget({key}, {size}, IPC_CREAT | {mode:#o})")
    }

    /// The segment with the id `id` (as `ipcs -m` shows it, or from [`Segment::id`] in
    /// another process). Nothing is checked until it is used.
    pub const fn from_id(id: i32) -> Segment {
        Segment { id }
    }

    /// Its id (`shmid`).
    pub const fn id(&self) -> i32 {
        self.id
    }

    /// What the kernel knows about it now (`shmctl(IPC_STAT)`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] (`EINVAL`) if it was removed (or never existed);
    /// [`io::ErrorKind::PermissionDenied`] (`EACCES`) if the caller may not read it.
    pub fn stat(&self) -> io::Result<SegmentStat> {
        todo!("part A: shmctl({}, IPC_STAT, ..)", self.id)
    }

    /// Maps the segment, read-write, into this process's address space (`shmat`).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::PermissionDenied`] (`EACCES`) if the caller may not read and write
    /// it; [`io::ErrorKind::InvalidInput`] (`EINVAL`) if it was removed; any other error of
    /// `shmat(2)`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::sync::atomic::Ordering;
    /// use sysv_shm::{Key, Segment};
    ///
    /// let seg = Segment::create(Key::PRIVATE, 64, 0o600)?;
    /// let a = seg.attach()?;
    /// let b = seg.attach()?; // a second mapping of the same bytes, at another address
    /// a.words()[0].store(42, Ordering::SeqCst);
    /// assert_eq!(b.words()[0].load(Ordering::SeqCst), 42);
    /// assert_eq!(seg.stat()?.nattch, 2);
    /// drop((a, b)); // detaches
    /// seg.remove()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn attach(&self) -> io::Result<Attachment> {
        todo!("part A: shmat({}, NULL, 0)", self.id)
    }

    /// Marks the segment for removal (`shmctl(IPC_RMID)`): nobody can open it by key any
    /// more, and the kernel frees it once the last attachment is gone. Attachments that
    /// exist keep working until they are dropped.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] (`EINVAL`) if it is already gone;
    /// [`io::ErrorKind::PermissionDenied`] (`EPERM`) if the caller neither owns nor created
    /// it.
    pub fn remove(self) -> io::Result<()> {
        todo!("part A: shmctl({}, IPC_RMID, NULL)", self.id)
    }
}

/// A segment mapped into this process. Dropping it detaches it (`shmdt`).
///
/// It hands out the shared bytes only as atomics or a raw pointer, never as `&[u8]` or
/// `&mut [u8]`: other processes may write them at any time.
#[derive(Debug)]
pub struct Attachment {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the attachment is an address and a length; the memory behind it is only reached
// through atomics or raw pointers, which any thread may use.
unsafe impl Send for Attachment {}
// SAFETY: as above: `&Attachment` gives nothing but atomics and raw pointers.
unsafe impl Sync for Attachment {}

impl Attachment {
    /// The size of the mapping in bytes (the segment's size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a real segment).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address where the segment is mapped in this process. Another process sees the
    /// same bytes at another address. Valid for `len()` bytes while `self` lives; reads and
    /// writes through it race with every other process unless something (a semaphore, or
    /// atomics) orders them.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The segment as 64-bit atomic words: `len() / 8` of them (a trailing part smaller than
    /// 8 bytes is left out). `shmat` returns page-aligned memory, so every word is aligned.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::sync::atomic::Ordering;
    /// use sysv_shm::{Key, Segment};
    ///
    /// let seg = Segment::create(Key::PRIVATE, 20, 0o600)?;
    /// let at = seg.attach()?;
    /// assert_eq!(at.words().len(), 2);
    /// at.words()[1].fetch_add(5, Ordering::SeqCst);
    /// seg.remove()?; // still attached: the memory stays valid until `at` is dropped
    /// assert_eq!(at.words()[1].load(Ordering::SeqCst), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn words(&self) -> &[AtomicU64] {
        todo!(
            "part A: the {} bytes at {:p} as atomic words",
            self.len,
            self.ptr
        )
    }

    /// Detaches now, reporting an error `drop` would ignore.
    ///
    /// # Errors
    ///
    /// The error of `shmdt(2)` (none is expected for a live attachment).
    pub fn detach(self) -> io::Result<()> {
        todo!("part A: shmdt({:p}), once", self.ptr)
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        todo!("part A: shmdt({:p})", self.ptr)
    }
}
