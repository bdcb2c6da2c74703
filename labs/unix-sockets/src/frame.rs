//! Part A: framing and back-pressure, as pure code the bus is built on.
//!
//! What this part is about:
//!
//! - **A stream socket has no message boundaries.** One `write` of `"hello\n"` may arrive as
//!   `"hel"` and `"lo\n"`, and two writes may arrive in one `read`. A server that forwards
//!   whatever one `read` returned interleaves half-lines of different senders. [`Lines`]
//!   keeps the unfinished tail of each client's stream until its `\n` arrives, and hands out
//!   whole lines only.
//! - **A limit on what a peer may make you hold.** A client that never sends `\n` would make
//!   the server buffer without end: a line is at most [`MAX_LINE`] bytes.
//! - **A slow reader must not stall the others.** Writing to it with a blocking `write`
//!   would stop the whole one-threaded server as soon as its socket buffer is full. The
//!   server writes without blocking and keeps what did not fit in that client's [`Outbox`],
//!   which is bounded: past [`OUTBOX_LIMIT`] the client is dropped.

// Until your code uses them: the imports below are the calls this part needs.
#![allow(unused_imports, unused_variables, dead_code, clippy::ptr_arg)]

use std::collections::VecDeque;
use std::io::{self, Write};

/// The longest line a client may send, its `\n` included.
pub const MAX_LINE: usize = 4096;

/// How many bytes the bus keeps for one client that does not read fast enough (beyond what
/// the kernel's socket buffer holds): 256 KiB. Past this, the client is dropped.
pub const OUTBOX_LIMIT: usize = 256 * 1024;

/// A line longer than [`MAX_LINE`] bytes, `\n` included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {MAX_LINE} bytes (at least {len} bytes without a newline)")]
pub struct TooLong {
    /// How many bytes of the line had arrived when it was found too long.
    pub len: usize,
}

/// Cuts one client's byte stream into whole lines.
#[derive(Debug, Default)]
pub struct Lines {
    /// The start of a line whose `\n` has not arrived yet (at most [`MAX_LINE`] - 1 bytes).
    partial: Vec<u8>,
}

impl Lines {
    /// A decoder at the start of a stream.
    pub fn new() -> Lines {
        Lines::default()
    }

    /// Feeds the bytes of one `read` and appends every line they complete to `out`, in
    /// order, each with its `\n`. The bytes after the last `\n` are kept for the next call.
    ///
    /// # Errors
    ///
    /// [`TooLong`] as soon as a line is longer than [`MAX_LINE`] bytes with its `\n` (or
    /// [`MAX_LINE`] bytes have arrived without one). The lines before it were already
    /// appended to `out`; the decoder must not be used again.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let mut lines = unix_sockets::frame::Lines::new();
    /// let mut out = Vec::new();
    /// lines.feed(b"hel", &mut out).unwrap();
    /// assert!(out.is_empty());
    /// lines.feed(b"lo\nwor", &mut out).unwrap();
    /// assert_eq!(out, b"hello\n");
    /// assert_eq!(lines.pending(), 3);
    /// ```
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), TooLong> {
        todo!("part A: cut {} more bytes into whole lines", bytes.len())
    }

    /// How many bytes of an unfinished line are held.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// The outbox is full: the bytes were not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output buffer full ({queued} bytes unread, at most {limit})")]
pub struct Overflow {
    /// Bytes already queued.
    pub queued: usize,
    /// The outbox's limit.
    pub limit: usize,
}

/// The bytes waiting to be written to one client, at most `limit` of them.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<u8>,
    limit: usize,
}

impl Outbox {
    /// An empty outbox that holds at most `limit` bytes.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            limit,
        }
    }

    /// Queues `bytes` behind what is already queued, all or nothing.
    ///
    /// # Errors
    ///
    /// [`Overflow`] if the outbox would then hold more than its limit; nothing is queued.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use unix_sockets::frame::Outbox;
    /// let mut out = Outbox::new(8);
    /// out.push(b"hello\n").unwrap();
    /// assert!(out.push(b"world\n").is_err());
    /// assert_eq!(out.len(), 6);
    /// ```
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        todo!(
            "part A: queue {} bytes, at most {} in all",
            bytes.len(),
            self.limit
        )
    }

    /// Writes queued bytes to `to` until the outbox is empty or `to` would block
    /// (`ErrorKind::WouldBlock`: a non-blocking socket whose buffer is full); `Interrupted`
    /// is retried. Returns how many bytes were written. What was not written stays queued,
    /// in order.
    ///
    /// # Errors
    ///
    /// Any other error of `write` (`EPIPE`, `ECONNRESET`: the client has gone), and
    /// `WriteZero` if `write` returns 0.
    pub fn flush(&mut self, to: &mut impl Write) -> io::Result<usize> {
        todo!("part A: write the queued bytes without blocking")
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
