//! Part A and part B: the ring in a POSIX shared memory object, and its two halves.
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
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open, shm_unlink};
use nix::sys::stat::{Mode, fchmod, fstat};
use nix::unistd::ftruncate;

use crate::futex::{self, Peer};

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
struct Meta {
    magic: AtomicU64,
    version: AtomicU32,
    capacity: AtomicU64,
}

/// One side's line: written by that side (its position, pid, closed flag, sleeping flag),
/// except `bell`, which the other side bumps to wake it.
#[repr(C, align(128))]
struct Side {
    /// head for the producer, tail for the consumer.
    pos: AtomicU64,
    /// The process that attached as this side, 0 before.
    pid: AtomicI32,
    /// 1 once this side closed its half.
    closed: AtomicU32,
    /// The futex word this side sleeps on.
    bell: AtomicU32,
    /// 1 while this side is about to sleep or sleeps on `bell`.
    sleeping: AtomicU32,
}

#[repr(C)]
struct Header {
    meta: Meta,
    producer: Side,
    consumer: Side,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_SIZE);

/// A mapping of a whole ring object, unmapped on drop.
struct Mapping {
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

    fn header(&self) -> &Header {
        // SAFETY: the mapping is page-aligned and at least HEADER_SIZE long; Header holds
        // atomics only, which may be shared freely.
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }

    fn data(&self) -> *mut u8 {
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
    map: Mapping,
    capacity: usize,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }
    fn side(self, h: &Header) -> &Side {
        match self {
            Role::Producer => &h.producer,
            Role::Consumer => &h.consumer,
        }
    }
    fn other(self) -> Role {
        match self {
            Role::Producer => Role::Consumer,
            Role::Consumer => Role::Producer,
        }
    }
}

/// What both halves share: the mapping, which side they are, and the watched peer.
struct Half {
    ring: Ring,
    role: Role,
    peer: Option<Peer>,
}

impl Half {
    fn new(ring: Ring, role: Role) -> Half {
        Half {
            ring,
            role,
            peer: None,
        }
    }
    fn mine(&self) -> &Side {
        self.role.side(self.ring.map.header())
    }
    fn theirs(&self) -> &Side {
        self.role.other().side(self.ring.map.header())
    }

    /// Whether the other side has attached (taken its half) by now.
    fn peer_attached(&self) -> bool {
        self.theirs().pid.load(Ordering::SeqCst) != 0
    }

    /// Rings the other side's bell if it sleeps or is about to. The SeqCst fence orders our
    /// position store before the load of its `sleeping`, matching the fence in `wait`:
    /// either we see it sleeping, or it sees our new position before it sleeps.
    #[inline]
    fn ring_peer(&self) {
        fence(Ordering::SeqCst);
        let theirs = self.theirs();
        if theirs.sleeping.load(Ordering::Relaxed) != 0 {
            theirs.bell.fetch_add(1, Ordering::Release);
            futex::wake(&theirs.bell);
        }
    }

    /// An error if the other side attached and then died without closing its half.
    fn check_peer(&mut self) -> Result<()> {
        let theirs = self.role.other().side(self.ring.map.header());
        let pid = theirs.pid.load(Ordering::Acquire);
        if pid == 0 {
            return Ok(()); // not there yet: wait for it
        }
        if self.peer.as_ref().is_none_or(|p| p.pid() != pid) {
            self.peer = Some(Peer::watch(pid));
        }
        let dead = self.peer.as_ref().is_some_and(Peer::is_dead);
        // Closed and then exited is a normal end, not a death.
        if dead && theirs.closed.load(Ordering::Acquire) == 0 {
            return Err(RingError::PeerDied {
                role: self.role.other().name(),
                pid,
            });
        }
        Ok(())
    }

    /// Blocks until `ready()`: a bounded spin, then futex sleeps of at most
    /// [`futex::WAIT_SLICE`], checking the peer after each.
    fn wait(&mut self, ready: impl Fn(&Header) -> bool) -> Result<()> {
        let h = self.ring.map.header();
        let start = Instant::now();
        // 1. Spin: on another core the other side usually acts within a microsecond or two,
        //    and a round trip that never enters the kernel is the point of a ring.
        let mut spins = 0u32;
        while !ready(h) {
            std::hint::spin_loop();
            spins += 1;
            if spins % 16 == 0 && start.elapsed() > futex::SPIN_PURE {
                break;
            }
        }
        // 2. Yield: if the other side shares our core, spinning only keeps it from running.
        while !ready(h) && start.elapsed() < futex::SPIN {
            std::thread::yield_now();
        }
        loop {
            let h = self.ring.map.header();
            let mine = self.role.side(h);
            let seen = mine.bell.load(Ordering::Acquire);
            mine.sleeping.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if ready(h) {
                mine.sleeping.store(0, Ordering::Relaxed);
                return Ok(());
            }
            futex::wait(&mine.bell, seen, futex::WAIT_SLICE);
            mine.sleeping.store(0, Ordering::Relaxed);
            if ready(h) {
                return Ok(());
            }
            self.check_peer()?;
        }
    }

    fn close(&self) {
        self.mine().closed.store(1, Ordering::Release);
        self.ring_peer();
    }
}

/// The writing half of a ring. Dropping it closes it.
pub struct Producer {
    half: Half,
    /// Our own head, never re-read from shared memory (only we write it).
    head: u64,
    /// The consumer's tail as last read; re-read only when the ring looks full.
    tail_seen: u64,
    closed: bool,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &self.half.ring)
            .finish()
    }
}

impl Producer {
    /// The ring's name.
    pub fn name(&self) -> &str {
        self.half.ring.name()
    }

    /// Data bytes the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.half.ring.capacity
    }

    /// Whether the consumer has attached.
    pub fn peer_attached(&self) -> bool {
        self.half.peer_attached()
    }

    /// An error if the consumer died without closing, or closed.
    pub fn check_peer(&mut self) -> Result<()> {
        if self.half.theirs().closed.load(Ordering::Acquire) != 0 {
            return Err(RingError::PeerClosed);
        }
        self.half.check_peer()
    }

    /// Writes some of `buf` (at least one byte, unless `buf` is empty), blocking while the
    /// ring is full; returns how many bytes it wrote.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let cap = self.half.ring.capacity as u64;
        loop {
            if self.half.theirs().closed.load(Ordering::Acquire) != 0 {
                return Err(RingError::PeerClosed);
            }
            let mut free = cap - (self.head - self.tail_seen);
            if free == 0 {
                self.tail_seen = self.half.theirs().pos.load(Ordering::Acquire);
                free = cap - (self.head - self.tail_seen);
            }
            if free > 0 {
                let n = (free as usize).min(buf.len());
                self.copy_in(&buf[..n]);
                self.head += n as u64;
                // Release: the bytes copied above are visible before the new head is.
                self.half.mine().pos.store(self.head, Ordering::Release);
                self.half.ring_peer();
                return Ok(n);
            }
            let head = self.head;
            self.half.wait(|h| {
                h.consumer.pos.load(Ordering::Acquire) != head - cap
                    || h.consumer.closed.load(Ordering::Acquire) != 0
            })?;
        }
    }

    /// Writes all of `buf`, blocking while the ring is full.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Closes the producer half: once the consumer has read what is in the ring, its `read`
    /// returns 0.
    pub fn close(mut self) {
        self.close_now();
    }

    fn close_now(&mut self) {
        if !self.closed {
            self.closed = true;
            self.half.close();
        }
    }

    /// Copies `src` into the ring at `head`, in two pieces when it straddles the end.
    fn copy_in(&mut self, src: &[u8]) {
        let cap = self.half.ring.capacity;
        let at = (self.head as usize) & (cap - 1);
        let first = src.len().min(cap - at);
        let data = self.half.ring.map.data();
        // SAFETY: [at, at + first) and [0, len - first) lie in the data area, and the
        // consumer does not touch them until the head store publishes them.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(at), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, src.len() - first);
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.close_now();
    }
}

/// The reading half of a ring. Dropping it closes it.
pub struct Consumer {
    half: Half,
    /// Our own tail, never re-read from shared memory (only we write it).
    tail: u64,
    /// The producer's head as last read; re-read only when the ring looks empty.
    head_seen: u64,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("ring", &self.half.ring)
            .finish()
    }
}

impl Consumer {
    /// The ring's name.
    pub fn name(&self) -> &str {
        self.half.ring.name()
    }

    /// Data bytes the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.half.ring.capacity
    }

    /// Whether the producer has attached.
    pub fn peer_attached(&self) -> bool {
        self.half.peer_attached()
    }

    /// Reads into `buf` what the ring holds, up to its length, blocking while the ring is
    /// empty; returns how many bytes it read, 0 at the end of the stream (the producer
    /// closed and everything it wrote has been read).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.head_seen == self.tail {
                self.head_seen = self.half.theirs().pos.load(Ordering::Acquire);
            }
            let avail = (self.head_seen - self.tail) as usize;
            if avail > 0 {
                let n = avail.min(buf.len());
                self.copy_out(&mut buf[..n]);
                self.tail += n as u64;
                // Release: we are done reading those bytes before the producer may reuse them.
                self.half.mine().pos.store(self.tail, Ordering::Release);
                self.half.ring_peer();
                return Ok(n);
            }
            let theirs = self.half.theirs();
            if theirs.closed.load(Ordering::Acquire) != 0 {
                // The producer stores its last head before `closed`: look once more.
                self.head_seen = theirs.pos.load(Ordering::Acquire);
                if self.head_seen == self.tail {
                    return Ok(0);
                }
                continue;
            }
            let tail = self.tail;
            self.half.wait(|h| {
                h.producer.pos.load(Ordering::Acquire) != tail
                    || h.producer.closed.load(Ordering::Acquire) != 0
            })?;
        }
    }

    /// Closes the consumer half: the producer's next `write` fails with
    /// [`RingError::PeerClosed`].
    pub fn close(self) {}

    /// Copies bytes at `tail` out of the ring into `dst`, in two pieces when they straddle
    /// the end.
    fn copy_out(&self, dst: &mut [u8]) {
        let cap = self.half.ring.capacity;
        let at = (self.tail as usize) & (cap - 1);
        let first = dst.len().min(cap - at);
        let data = self.half.ring.map.data();
        // SAFETY: the bytes were published by the head the Acquire load returned, and the
        // producer does not reuse them until our tail store frees them.
        unsafe {
            std::ptr::copy_nonoverlapping(data.add(at), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.half.close();
    }
}

/// The path of the ring `name` under /dev/shm, where Linux keeps POSIX shared memory.
pub fn shm_path(name: &str) -> CString {
    CString::new(format!("/dev/shm{name}")).unwrap_or_default()
}
