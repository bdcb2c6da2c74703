//! Part A and part B: the two halves of a ring. The [`Producer`] copies bytes in at `head`,
//! the [`Consumer`] copies them out at `tail`; both wait (part B) when the ring is full or
//! empty, and both close on drop.

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
        //    and a round trip that never enters the kernel is the point of a ring. With one
        //    CPU it cannot act while we spin: no spin then.
        let mut spins = 0u32;
        while futex::spinning_pays() && !ready(h) {
            std::hint::spin_loop();
            spins += 1;
            if spins & 15 == 0 && start.elapsed() > futex::SPIN_PURE {
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
        if self.half.theirs().closed.load(Ordering::Acquire) != 0 {
            return Err(RingError::PeerClosed);
        }
        self.half.check_peer()
    }

    /// Writes some of `buf` (at least one byte, unless `buf` is empty), blocking while the
    /// ring is full; returns how many bytes it wrote.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerClosed`] once the consumer closed; [`RingError::PeerDied`] when
    /// the consumer died without closing while this waited for room (noticed within 1 s).
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
