//! Part A: the ring in a POSIX shared memory object: its header, create, open, unlink.
//!
//! The object is a 4096-byte header followed by the data area of `capacity` bytes (a power
//! of two). In the header, every field one side writes often sits on a cache line of its own
//! (128 bytes apart, so that the adjacent-line prefetcher does not pair them either):
//!
//! ```text
//! offset    0  Meta      magic, version, capacity      written once, by the creator
//! offset  128  producer  head, pid, closed, bell, sleeping
//! offset  256  consumer  tail, pid, closed, bell, sleeping
//! offset 4096  data      capacity bytes
//! ```
//!
//! `head` and `tail` count bytes since the start and never wrap; the byte at position `p`
//! lives at `data[p & (capacity - 1)]`. The ring holds `head - tail` bytes. The producer
//! copies bytes in, then publishes them with a Release store of `head`; the consumer loads
//! `head` with Acquire before it copies them out, then frees the room with a Release store
//! of `tail`. No `&mut` ever points into the shared bytes: the other process may change
//! them at any time, so they are reached through atomics and raw-pointer copies only.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open, shm_unlink};
use nix::sys::stat::{Mode, fchmod, fstat};
use nix::unistd::ftruncate;

use crate::half::{Consumer, Half, Producer, Role};

/// The first 8 bytes of every ring: "SHMRING1" (little-endian).
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMRING1");
/// The layout version.
pub const VERSION: u32 = 1;
/// Bytes before the data area.
pub const HEADER_SIZE: usize = 4096;
/// The smallest capacity.
pub const MIN_CAPACITY: usize = 1 << 12;
/// The largest capacity.
pub const MAX_CAPACITY: usize = 1 << 26;
/// The capacity `ring-send` and `ring-recv` create when not told otherwise.
pub const DEFAULT_CAPACITY: usize = 1 << 18;
/// How long [`Ring::open`] waits for a creator to finish the object.
pub const INIT_WAIT: Duration = Duration::from_secs(1);

/// What can go wrong with a ring. Every message names the ring or the process.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// The name is not `/` followed by 1 to 254 characters without another `/`.
    #[error("bad ring name {0:?}: it must be `/` followed by 1 to 254 characters, no other `/`")]
    BadName(String),
    /// The capacity is not a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    #[error("bad capacity {0}: it must be a power of two from 4096 to 67108864")]
    BadCapacity(usize),
    /// `create` found an object of that name already.
    #[error("ring {0} already exists")]
    Exists(String),
    /// `open` found no object of that name.
    #[error("ring {0} does not exist")]
    NotFound(String),
    /// The object exists but is not a ring of this version, or its size does not match.
    #[error("{name} is not a ring: {why}")]
    Mismatch {
        /// The ring's name.
        name: String,
        /// What does not match.
        why: String,
    },
    /// That side of the ring is taken by a process that is still there.
    #[error("ring {name} already has a {role} (pid {pid})")]
    Busy {
        /// The ring's name.
        name: String,
        /// "producer" or "consumer".
        role: &'static str,
        /// The process that has it.
        pid: i32,
    },
    /// The other process exited or was killed without closing its half.
    #[error("the {role} (pid {pid}) died without closing the ring")]
    PeerDied {
        /// "producer" or "consumer".
        role: &'static str,
        /// Its pid.
        pid: i32,
    },
    /// The consumer closed its half: nothing written now would ever be read.
    #[error("the consumer closed the ring")]
    PeerClosed,
    /// A system call failed.
    #[error("{call}: {errno}")]
    Sys {
        /// The call.
        call: &'static str,
        /// Its error.
        errno: Errno,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, RingError>;

fn sys(call: &'static str) -> impl FnOnce(Errno) -> RingError {
    move |errno| RingError::Sys { call, errno }
}

/// Checks a ring name: `/` then 1 to 254 characters, none of them `/` or NUL, and not `/.`
/// or `/..`.
pub fn check_name(name: &str) -> Result<()> {
    let rest = name.strip_prefix('/').unwrap_or("");
    let ok = !rest.is_empty()
        && rest.len() <= 254
        && !rest.contains(['/', '\0'])
        && rest != "."
        && rest != "..";
    if ok {
        Ok(())
    } else {
        Err(RingError::BadName(name.to_owned()))
    }
}

/// Line 0 of the header: what a ring is.
#[repr(C, align(128))]
pub(crate) struct Meta {
    magic: AtomicU64,
    version: AtomicU32,
    capacity: AtomicU64,
}

/// One side's line: written by that side (its position, pid, closed flag, sleeping flag),
/// except `bell`, which the other side bumps to wake it.
#[repr(C, align(128))]
pub(crate) struct Side {
    /// head for the producer, tail for the consumer.
    pub(crate) pos: AtomicU64,
    /// The process that attached as this side, 0 before.
    pub(crate) pid: AtomicI32,
    /// 1 once this side closed its half.
    pub(crate) closed: AtomicU32,
    /// The futex word this side sleeps on.
    pub(crate) bell: AtomicU32,
    /// 1 while this side is about to sleep or sleeps on `bell`.
    pub(crate) sleeping: AtomicU32,
}

#[repr(C)]
pub(crate) struct Header {
    pub(crate) meta: Meta,
    pub(crate) producer: Side,
    pub(crate) consumer: Side,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_SIZE);

/// A mapping of a whole ring object, unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access to it goes through atomics and
// raw-pointer copies whose races the ring's protocol rules out.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize) -> Result<Mapping> {
        let size = NonZeroUsize::new(len).expect("a ring is never empty");
        // SAFETY: a fresh shared mapping of the object; nothing else refers to it yet.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd.as_fd(),
                0,
            )
        }
        .map_err(sys("mmap"))?;
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned and at least HEADER_SIZE long; Header holds
        // atomics only, which may be shared freely.
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }

    pub(crate) fn data(&self) -> *mut u8 {
        // SAFETY: within the mapping.
        unsafe { self.ptr.as_ptr().add(HEADER_SIZE) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped; no reference into it outlives `self`.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

/// A ring buffer in a POSIX shared memory object, mapped but not yet taken as one half.
///
/// Turn it into its [`Producer`] or [`Consumer`] half; each process takes one.
pub struct Ring {
    name: String,
    pub(crate) map: Mapping,
    pub(crate) capacity: usize,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Ring {
    /// Creates the ring `name` with `capacity` data bytes: exclusively (an existing object
    /// is an error), mode 0600 whatever the umask, and fully initialised before the magic
    /// number is published.
    ///
    /// # Errors
    ///
    /// [`RingError::BadName`], [`RingError::BadCapacity`] (nothing is made then),
    /// [`RingError::Exists`] if the name is taken, [`RingError::Sys`] for a failed call.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use shm_ring::Ring;
    /// let mut tx = Ring::create("/demo", 1 << 16)?.producer()?;
    /// tx.write_all(b"hello")?;
    /// tx.close();
    /// # Ok::<(), shm_ring::RingError>(())
    /// ```
    pub fn create(name: &str, capacity: usize) -> Result<Ring> {
        check_name(name)?;
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(RingError::BadCapacity(capacity));
        }
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
        let fd = shm_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|e| match e {
            Errno::EEXIST => RingError::Exists(name.to_owned()),
            e => RingError::Sys {
                call: "shm_open",
                errno: e,
            },
        })?;
        let made = (|| {
            // The umask may have taken bits away: set exactly 0600.
            fchmod(fd.as_fd(), Mode::S_IRUSR | Mode::S_IWUSR).map_err(sys("fchmod"))?;
            let len = HEADER_SIZE + capacity;
            ftruncate(fd.as_fd(), len as libc::off_t).map_err(sys("ftruncate"))?;
            let map = Mapping::new(&fd, len)?;
            let meta = &map.header().meta;
            meta.version.store(VERSION, Ordering::Relaxed);
            meta.capacity.store(capacity as u64, Ordering::Relaxed);
            // Last, and Release: whoever sees the magic sees a finished header.
            meta.magic.store(MAGIC, Ordering::Release);
            Ok(map)
        })();
        match made {
            Ok(map) => Ok(Ring {
                name: name.to_owned(),
                map,
                capacity,
            }),
            Err(e) => {
                let _ = shm_unlink(name);
                Err(e)
            }
        }
    }

    /// Opens the existing ring `name` and checks that it is one: size, magic, version and
    /// capacity. A ring whose creator has not finished yet (size 0, or no magic yet) is
    /// waited for, up to [`INIT_WAIT`]; it is never read half-made.
    ///
    /// # Errors
    ///
    /// [`RingError::BadName`], [`RingError::NotFound`], [`RingError::Mismatch`] (with the
    /// reason: size, magic, version, capacity, or not initialised within 1 s),
    /// [`RingError::Sys`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// use shm_ring::Ring;
    /// let mut rx = Ring::open("/demo")?.consumer()?;
    /// let mut buf = [0u8; 4096];
    /// while rx.read(&mut buf)? > 0 {}
    /// # Ok::<(), shm_ring::RingError>(())
    /// ```
    pub fn open(name: &str) -> Result<Ring> {
        check_name(name)?;
        let fd = shm_open(name, OFlag::O_RDWR, Mode::empty()).map_err(|e| match e {
            Errno::ENOENT => RingError::NotFound(name.to_owned()),
            e => RingError::Sys {
                call: "shm_open",
                errno: e,
            },
        })?;
        let mismatch = |why: String| RingError::Mismatch {
            name: name.to_owned(),
            why,
        };
        let deadline = Instant::now() + INIT_WAIT;
        let len = loop {
            let len = fstat(fd.as_fd()).map_err(sys("fstat"))?.st_size as usize;
            if len > HEADER_SIZE + MAX_CAPACITY {
                return Err(mismatch(format!(
                    "its size {len} bytes is larger than any ring (at most {})",
                    HEADER_SIZE + MAX_CAPACITY
                )));
            }
            if len >= HEADER_SIZE + MIN_CAPACITY {
                break len;
            }
            if len != 0 || Instant::now() >= deadline {
                return Err(mismatch(format!(
                    "its size {len} bytes is smaller than any ring (at least {})",
                    HEADER_SIZE + MIN_CAPACITY
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let map = Mapping::new(&fd, len)?;
        let meta = &map.header().meta;
        let magic = loop {
            let magic = meta.magic.load(Ordering::Acquire);
            if magic != 0 || Instant::now() >= deadline {
                break magic;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if magic != MAGIC {
            return Err(mismatch(if magic == 0 {
                format!("it was not initialised within {} s", INIT_WAIT.as_secs())
            } else {
                format!("wrong magic number {magic:#018x}")
            }));
        }
        let version = meta.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(mismatch(format!("version {version}, expected {VERSION}")));
        }
        let capacity = meta.capacity.load(Ordering::Relaxed) as usize;
        if !capacity.is_power_of_two() || HEADER_SIZE + capacity != len {
            return Err(mismatch(format!(
                "its header says capacity {capacity} but the object has {len} bytes"
            )));
        }
        Ok(Ring {
            name: name.to_owned(),
            map,
            capacity,
        })
    }

    /// Removes the name `name` (`shm_unlink`). Processes that mapped the ring keep it.
    ///
    /// # Errors
    ///
    /// [`RingError::BadName`], [`RingError::NotFound`], [`RingError::Sys`].
    pub fn unlink(name: &str) -> Result<()> {
        check_name(name)?;
        shm_unlink(name).map_err(|e| match e {
            Errno::ENOENT => RingError::NotFound(name.to_owned()),
            e => RingError::Sys {
                call: "shm_unlink",
                errno: e,
            },
        })
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Data bytes the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes the producer half: this process's pid goes into the header.
    ///
    /// # Errors
    ///
    /// [`RingError::Busy`] if a process already took the producer half.
    pub fn producer(self) -> Result<Producer> {
        let head = self.attach(Role::Producer)?;
        Ok(Producer {
            half: Half::new(self, Role::Producer),
            head,
            tail_seen: 0,
            closed: false,
        })
    }

    /// Takes the consumer half: this process's pid goes into the header.
    ///
    /// # Errors
    ///
    /// [`RingError::Busy`] if a process already took the consumer half.
    pub fn consumer(self) -> Result<Consumer> {
        let tail = self.attach(Role::Consumer)?;
        Ok(Consumer {
            half: Half::new(self, Role::Consumer),
            tail,
            head_seen: tail,
        })
    }

    fn attach(&self, role: Role) -> Result<u64> {
        let side = role.side(self.map.header());
        let me = std::process::id() as i32;
        if let Err(pid) = side
            .pid
            .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
        {
            return Err(RingError::Busy {
                name: self.name.clone(),
                role: role.name(),
                pid,
            });
        }
        Ok(side.pos.load(Ordering::Acquire))
    }
}

/// The path of the ring `name` under /dev/shm, where Linux keeps POSIX shared memory.
pub fn shm_path(name: &str) -> CString {
    CString::new(format!("/dev/shm{name}")).unwrap_or_default()
}
