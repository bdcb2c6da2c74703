//! Part A: RESP2, the protocol of Redis: requests parsed from a byte stream, replies encoded
//! into a buffer (and parsed back, for the client).
//!
//! A request is an array of bulk strings, each with its length in front:
//!
//! ```text
//! *3\r\n $3\r\n SET\r\n $3\r\n key\r\n $5\r\n va\r\nl\r\n      (spaces added for reading)
//! ^count  ^len  ^bytes    ^len  ^bytes    ^len ^5 bytes, any bytes at all
//! ```
//!
//! or an inline command, a line of words as typed into `nc`: `PING\r\n`, `SET k v\n`.
//!
//! TCP is a byte stream: one `read` may return half a request, or twenty requests and the
//! start of another. So the parser never assumes anything about where a read ended: it
//! looks at the bytes received so far and says "here is one whole request of N bytes",
//! "not complete yet, read more", or "this is not RESP".

// The imports name the calls you will need. Delete this attribute once every `todo!` is gone:
#![allow(
    unused_imports,
    unused_variables,
    unused_mut,
    dead_code,
    clippy::ptr_arg
)]

use std::ops::Range;

/// The most arguments one request may have (Redis's own limit).
pub const MAX_ARGS: i64 = 1024 * 1024;

/// What is wrong with the bytes a client sent. The server answers `-ERR <this>` and closes
/// that connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The request is, or announces that it will be, larger than the cap: `size` bytes
    /// (announced or already received) against `limit`.
    #[error("request too large: {size} bytes, the limit is {limit} bytes")]
    TooLarge {
        /// The size announced by a length, or buffered without a complete request.
        size: u64,
        /// The cap (`--max-request`).
        limit: usize,
    },
    /// Bytes that are not RESP: what was expected.
    #[error("Protocol error: {0}")]
    Malformed(String),
}

/// The arguments of one request: ranges into the buffer it was parsed from, so that parsing
/// copies nothing.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    /// The buffer the request was parsed from.
    pub buf: &'a [u8],
    /// Where each argument lies in `buf`.
    pub ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    /// How many arguments (the command's name included).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there is none (an empty inline line).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i` (0 is the command's name).
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.buf[self.ranges[i].clone()]
    }
}

/// Parses one request at the start of `buf`.
///
/// - `Ok(Some(n))`: the first `n` bytes of `buf` are one whole request; `args` (cleared
///   first) holds the range of each argument in `buf`. An empty inline line, `*0\r\n` and
///   `*-1\r\n` are requests with no argument, to be skipped.
/// - `Ok(None)`: the request is not complete yet: read more and call again with the same
///   start (more bytes after it).
/// - `Err`: not RESP, or larger than `max` bytes. A length announced in a header is checked
///   against `max` when the header arrives, before any byte of it: never allocate what a
///   client merely announces.
///
/// A request starting with `*` is an array of bulk strings (`$<len>\r\n<len bytes>\r\n`,
/// the bytes may be anything, `\r\n` included); anything else is an inline command, a line
/// ending in `\n` (a `\r` before it is dropped) of words separated by spaces or tabs.
///
/// # Errors
///
/// [`ProtocolError::TooLarge`] when the request (announced, or buffered while incomplete)
/// is over `max` bytes; [`ProtocolError::Malformed`] for bytes that break the grammar (a
/// header that is not a number, a `$` missing, a bulk string not followed by `\r\n`).
///
/// # Example
///
/// ```no_run
/// use tcp_sockets::resp::parse_request;
/// let mut args = Vec::new();
/// let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI";
/// assert_eq!(parse_request(buf, 1 << 20, &mut args), Ok(Some(20)));
/// assert_eq!(&buf[args[1].clone()], b"k");
/// assert_eq!(parse_request(&buf[20..], 1 << 20, &mut args), Ok(None));
/// ```
pub fn parse_request(
    buf: &[u8],
    max: usize,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    todo!(
        "part A: an array of bulk strings (check each announced length against max before waiting for its bytes), or an inline line"
    )
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK\r\n`: a short status line.
    Simple(String),
    /// `-ERR message\r\n`: the message, `ERR` included.
    Error(String),
    /// `:42\r\n`.
    Integer(i64),
    /// `$5\r\nhello\r\n`: any bytes.
    Bulk(Vec<u8>),
    /// `$-1\r\n`: no value (GET of a missing key).
    Nil,
    /// `*2\r\n...`: replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// Appends the encoding of this reply to `out`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use tcp_sockets::Reply;
    /// let mut out = Vec::new();
    /// Reply::Bulk(b"a\r\nb".to_vec()).encode(&mut out);
    /// assert_eq!(out, b"$4\r\na\r\nb\r\n");
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        todo!("part A: append the RESP2 encoding of this reply (the write_* helpers below)")
    }

    /// Parses one reply at the start of `buf`: the reply and its length in bytes, `None`
    /// when it is not complete yet.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::Malformed`] for bytes that are not a RESP2 reply.
    pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
        todo!(
            "part A: parse one reply at the start of buf: its kind byte, its line, a bulk's bytes by its length, an array's items"
        )
    }
}

/// Appends a request of `args` (an array of bulk strings) to `out`.
///
/// # Example
///
/// ```no_run
/// let mut out = Vec::new();
/// tcp_sockets::resp::encode_request(&[&b"GET"[..], b"k"], &mut out);
/// assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
/// ```
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    todo!("part A: `*<n>` and then each argument as a bulk string")
}

/// `+<s>\r\n`.
pub fn write_simple(out: &mut Vec<u8>, s: &[u8]) {
    todo!("part A: +<s>\\r\\n")
}

/// `-<message>\r\n` (the message starts with `ERR `; no `\r` or `\n` inside).
pub fn write_error(out: &mut Vec<u8>, message: &[u8]) {
    todo!("part A: -<message>\\r\\n")
}

/// `:<n>\r\n`.
pub fn write_int(out: &mut Vec<u8>, n: i64) {
    todo!("part A: :<n>\\r\\n")
}

/// `$<len>\r\n<bytes>\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    todo!("part A: $<len>\\r\\n<bytes>\\r\\n")
}

/// `$-1\r\n`.
pub fn write_nil(out: &mut Vec<u8>) {
    todo!("part A: $-1\\r\\n")
}
