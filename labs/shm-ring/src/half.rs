//! Part A and part B: the two halves of a ring. The [`Producer`] copies bytes in at `head`,
//! the [`Consumer`] copies them out at `tail`; both wait (part B) when the ring is full or
//! empty, and both close on drop.

// The imports name the calls you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::sync::atomic::{Ordering, fence};
use std::time::Instant;

use crate::futex::{self, Peer};
use crate::ring::{Header, Result, Ring, RingError, Side};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Producer,
    Consumer,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }
    pub(crate) fn side(self, h: &Header) -> &Side {
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
pub(crate) struct Half {
    pub(crate) ring: Ring,
    role: Role,
    peer: Option<Peer>,
}

impl Half {
    pub(crate) fn new(ring: Ring, role: Role) -> Half {
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
        todo!(
            "part B: SeqCst fence; if the other side is sleeping, bump its bell and futex::wake it"
        )
    }

    /// An error if the other side attached and then died without closing its half.
    fn check_peer(&mut self) -> Result<()> {
        todo!(
            "part B: if the other side attached, died (watch it with a Peer) and did not close: PeerDied"
        )
    }

    /// Blocks until `ready()`: a bounded spin, then futex sleeps of at most
    /// [`futex::WAIT_SLICE`], checking the peer after each.
    fn wait(&mut self, ready: impl Fn(&Header) -> bool) -> Result<()> {
        todo!(
            "part B: spin briefly (if futex::spinning_pays()), yield, then futex::wait on our bell with WAIT_SLICE timeouts, checking the peer after each"
        )
    }

    fn close(&self) {
        todo!("part B: set our closed flag (Release) and ring the peer")
    }
}

/// The writing half of a ring. Dropping it closes it.
pub struct Producer {
    pub(crate) half: Half,
    /// Our own head, never re-read from shared memory (only we write it).
    pub(crate) head: u64,
    /// The consumer's tail as last read; re-read only when the ring looks full.
    pub(crate) tail_seen: u64,
    pub(crate) closed: bool,
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
    ///
    /// # Errors
    ///
    /// [`RingError::PeerClosed`] once the consumer closed; [`RingError::PeerDied`] when
    /// the consumer died without closing while this waited for room (noticed within 1 s).
    pub fn write(&mut self, buf: &[u8]) -> Result<usize> {
        todo!(
            "part A: copy what fits at head, publish head with Release, ring the peer; wait while full"
        )
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
    pub(crate) half: Half,
    /// Our own tail, never re-read from shared memory (only we write it).
    pub(crate) tail: u64,
    /// The producer's head as last read; re-read only when the ring looks empty.
    pub(crate) head_seen: u64,
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
    ///
    /// # Errors
    ///
    /// [`RingError::PeerDied`] when the producer died without closing while this waited
    /// for bytes (noticed within 1 s).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        todo!(
            "part A: load head with Acquire, copy out what is there, store tail with Release, ring the peer; 0 once closed and empty; wait while empty"
        )
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
