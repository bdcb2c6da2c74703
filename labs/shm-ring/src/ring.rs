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

// The imports name the calls you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

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
    todo!("part A: `/` then 1 to 254 characters, no other `/`, no NUL, not `/.` or `/..`")
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
        todo!("part A: mmap len bytes of fd, PROT_READ | PROT_WRITE, MAP_SHARED")
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
    todo!("part A: munmap the mapping")
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
        todo!("part A: check name and capacity; shm_open O_CREAT|O_EXCL|O_RDWR 0600; fchmod; ftruncate; mmap; fill the header, the magic last with Release; unlink on failure")
    }

    /// Opens the existing ring `name` and checks that it is one: size, magic, version and
    /// capacity. A ring whose creator has not finished yet (size 0, or no magic yet) is
    /// waited for, up to [`INIT_WAIT`]; it is never read half-made.
    pub fn open(name: &str) -> Result<Ring> {
        todo!("part A: shm_open O_RDWR; wait (up to INIT_WAIT) for a size and for the magic; check size, magic, version, capacity")
    }

    /// Removes the name `name` (`shm_unlink`). Processes that mapped the ring keep it.
    pub fn unlink(name: &str) -> Result<()> {
        todo!("part A: shm_unlink; ENOENT is NotFound")
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
        todo!("part A: attach as the producer, then build the Producer")
    }

    /// Takes the consumer half: this process's pid goes into the header.
    pub fn consumer(self) -> Result<Consumer> {
        todo!("part A: attach as the consumer, then build the Consumer")
    }

    fn attach(&self, role: Role) -> Result<u64> {
        todo!("part A: compare_exchange this side's pid from 0 to ours (Busy if taken); return its position")
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
        todo!("part C: whether the other side's pid is set")
    }

    /// Rings the other side's bell if it sleeps or is about to. The SeqCst fence orders our
    /// position store before the load of its `sleeping`, matching the fence in `wait`:
    /// either we see it sleeping, or it sees our new position before it sleeps.
    #[inline]
    fn ring_peer(&self) {
        todo!("part B: SeqCst fence; if the other side is sleeping, bump its bell and futex::wake it")
    }

    /// An error if the other side attached and then died without closing its half.
    fn check_peer(&mut self) -> Result<()> {
        todo!("part B: if the other side attached, died (watch it with a Peer) and did not close: PeerDied")
    }

    /// Blocks until `ready()`: a bounded spin, then futex sleeps of at most
    /// [`futex::WAIT_SLICE`], checking the peer after each.
    fn wait(&mut self, ready: impl Fn(&Header) -> bool) -> Result<()> {
        todo!("part B: spin briefly, yield, then futex::wait on our bell with WAIT_SLICE timeouts, checking the peer after each")
    }

    fn close(&self) {
        todo!("part B: set our closed flag (Release) and ring the peer")
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
        todo!("part B: PeerClosed if the consumer closed, else the common peer check")
    }

    /// Writes some of `buf` (at least one byte, unless `buf` is empty), blocking while the
    /// ring is full; returns how many bytes it wrote.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize> {
        todo!("part A: copy what fits at head, publish head with Release, ring the peer; wait while full")
    }

    /// Writes all of `buf`, blocking while the ring is full.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<()> {
        todo!("part A: write until all of buf is in")
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
        todo!("part A: copy src to data[head & (cap - 1)..], in two pieces across the end")
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
        todo!("part A: load head with Acquire, copy out what is there, store tail with Release, ring the peer; 0 once closed and empty; wait while empty")
    }

    /// Closes the consumer half: the producer's next `write` fails with
    /// [`RingError::PeerClosed`].
    pub fn close(self) {}

    /// Copies bytes at `tail` out of the ring into `dst`, in two pieces when they straddle
    /// the end.
    fn copy_out(&self, dst: &mut [u8]) {
        todo!("part A: copy data[tail & (cap - 1)..] to dst, in two pieces across the end")
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.half.close();
    }
}

/// The path of the ring `name` under /dev/shm, where Linux keeps POSIX shared memory.
pub fn shm_path(name: &str) -> CString {
    todo!("part C: the path of the object under /dev/shm")
}
