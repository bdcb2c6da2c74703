//! Part B: the scoreboard, one anonymous shared mapping that the master makes before it
//! forks and every worker inherits: per worker slot its pid, its state and the requests it
//! served, and the total of every request served since the start.
//!
//! Several processes write the same words at once (every worker adds to the total), so
//! every access is an atomic operation on the shared memory: a plain `load` and `store`
//! of `total + 1` from two processes loses counts.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

/// What a worker is doing, as its slot shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No worker has the slot.
    Empty = 0,
    /// Started, waiting for a connection.
    Idle = 1,
    /// Reading a request (or waiting for the next one on a kept-alive connection).
    Reading = 2,
    /// Writing a response.
    Writing = 3,
}

impl State {
    /// The word `/server-status` shows: `-`, `idle`, `reading`, `writing`.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "-",
            State::Idle => "idle",
            State::Reading => "reading",
            State::Writing => "writing",
        }
    }

    fn from_u32(v: u32) -> State {
        match v {
            1 => State::Idle,
            2 => State::Reading,
            3 => State::Writing,
            _ => State::Empty,
        }
    }
}

/// One worker's slot: 64 bytes, a cache line of its own, so that workers writing their
/// own slots do not slow each other down.
#[repr(C, align(64))]
struct Slot {
    pid: AtomicI32,
    state: AtomicU32,
    requests: AtomicU64,
}

/// The start of the mapping.
#[repr(C, align(64))]
struct Header {
    total: AtomicU64,
}

/// A copy of one slot, read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotView {
    /// The slot's index.
    pub slot: usize,
    /// The worker's pid (0: none).
    pub pid: i32,
    /// Its state.
    pub state: State,
    /// Requests it served.
    pub requests: u64,
}

/// The scoreboard: `slots` worker slots and a total, in memory shared by the process that
/// made it and every process it forks afterwards.
pub struct Scoreboard {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
}

// SAFETY: the mapping is only ever accessed through atomics.
unsafe impl Send for Scoreboard {}
// SAFETY: as above.
unsafe impl Sync for Scoreboard {}

impl Scoreboard {
    /// Maps a zeroed scoreboard of `slots` slots (`mmap` of anonymous memory with
    /// `MAP_SHARED`): every slot empty, the total 0. Make it before `fork`: a child
    /// shares it with its parent, where a mapping made after the fork would be its own.
    ///
    /// # Errors
    ///
    /// The `mmap` error (`ENOMEM`), or `EINVAL` for 0 slots.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use prefork::scoreboard::{Scoreboard, State};
    /// let board = Scoreboard::new(4).unwrap();
    /// board.start(0, 1234);
    /// board.served(0);
    /// assert_eq!((board.total(), board.slot(0).requests, board.slot(0).state), (1, 1, State::Idle));
    /// ```
    pub fn new(slots: usize) -> nix::Result<Scoreboard> {
        todo!("part B: mmap_anonymous with MAP_SHARED, zeroed")
    }

    /// How many slots it has.
    pub fn slots(&self) -> usize {
        self.slots
    }

    fn header(&self) -> &Header {
        todo!("part B: the Header at the start of the mapping")
    }

    fn slot_ref(&self, i: usize) -> &Slot {
        todo!("part B: slot i after the header (check the bounds)")
    }

    /// Gives slot `i` to a new worker `pid`: state idle, 0 requests. The master calls it
    /// before the worker can serve anything, so no request of the worker is lost.
    ///
    /// # Panics
    ///
    /// When `i` is not a slot (here and in every method taking a slot).
    pub fn start(&self, i: usize, pid: i32) {
        todo!("part B: requests 0, state idle, then the pid")
    }

    /// Records that the worker `pid` of slot `i` has the pid it has (the master knows it
    /// only after `fork`): leaves the state and the count alone.
    pub fn set_pid(&self, i: usize, pid: i32) {
        todo!("part B: store the pid")
    }

    /// Empties slot `i` (its worker is gone); its requests stay in the total.
    pub fn release(&self, i: usize) {
        todo!("part B: empty the slot; the total keeps its requests")
    }

    /// Sets the state of slot `i`.
    pub fn set_state(&self, i: usize, state: State) {
        todo!("part B: store the state")
    }

    /// Counts one served request for slot `i` and in the total, each an atomic add: the
    /// total is written by every worker at once.
    pub fn served(&self, i: usize) {
        todo!("part B: one more request in the slot and in the total, atomically")
    }

    /// Requests served by every worker since the scoreboard was made (workers that died or
    /// were replaced included).
    pub fn total(&self) -> u64 {
        todo!("part B: load the total")
    }

    /// A copy of slot `i`.
    pub fn slot(&self, i: usize) -> SlotView {
        todo!("part B: a copy of the slot")
    }

    /// The first empty slot, if any.
    pub fn free_slot(&self) -> Option<usize> {
        todo!("part B: the first empty slot")
    }

    /// The text of `/server-status`: a line `total requests: N`, a line
    /// `workers: W` (slots in use), then a header `slot pid state requests` and one row per
    /// slot in use, columns separated by spaces.
    ///
    /// ```text
    /// prefork-httpd status
    /// total requests: 1234
    /// workers: 2
    /// slot pid state requests
    /// 0 4711 writing 617
    /// 1 4712 idle 617
    /// ```
    pub fn render(&self) -> String {
        todo!("part B: the status page text")
    }
}

impl Drop for Scoreboard {
    fn drop(&mut self) {
        todo!("part B: munmap the mapping")
    }
}
