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
/// ```
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
    args.clear();
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'*' {
        return parse_inline(buf, max, args);
    }
    let too_large = |size: u64| ProtocolError::TooLarge { size, limit: max };
    let Some((count, mut pos)) = header(buf, 0, b'*')? else {
        return Ok(None);
    };
    if count > MAX_ARGS {
        return Err(ProtocolError::Malformed(format!(
            "{count} arguments announced, at most {MAX_ARGS}"
        )));
    }
    for _ in 0..count.max(0) {
        let Some((len, at)) = header(buf, pos, b'$')? else {
            return incomplete(buf, max);
        };
        if len < 0 {
            return Err(ProtocolError::Malformed(format!(
                "invalid bulk length {len}"
            )));
        }
        // Checked before waiting for the bytes: a client that announces a gigabyte gets
        // its error now, and nothing is reserved for it.
        let end = at as u64 + len as u64 + 2;
        if end > max as u64 {
            return Err(too_large(end));
        }
        let end = end as usize;
        if buf.len() < end {
            return incomplete(buf, max);
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Err(ProtocolError::Malformed(format!(
                "a bulk string of {len} bytes is not followed by \\r\\n"
            )));
        }
        args.push(at..end - 2);
        pos = end;
    }
    Ok(Some(pos))
}

/// Not complete yet: fine unless the bytes buffered already pass the cap.
fn incomplete(buf: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
    if buf.len() > max {
        return Err(ProtocolError::TooLarge {
            size: buf.len() as u64,
            limit: max,
        });
    }
    Ok(None)
}

/// The longest header line (`*<count>` or `$<len>`) accepted.
const HEADER_MAX: usize = 24;

/// Parses `<kind><integer>\r\n` at `pos`: the integer and the position after the line;
/// `None` if the line is not complete yet.
fn header(buf: &[u8], pos: usize, kind: u8) -> Result<Option<(i64, usize)>, ProtocolError> {
    let Some(&got) = buf.get(pos) else {
        return Ok(None);
    };
    if got != kind {
        return Err(ProtocolError::Malformed(format!(
            "expected '{}', got '{}'",
            kind as char,
            got.escape_ascii()
        )));
    }
    let rest = &buf[pos + 1..buf.len().min(pos + 1 + HEADER_MAX)];
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        if rest.len() == HEADER_MAX {
            return Err(ProtocolError::Malformed("header line too long".into()));
        }
        return Ok(None);
    };
    match rest.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(ProtocolError::Malformed("\\r not followed by \\n".into())),
    }
    let n = parse_int(&rest[..cr]).ok_or_else(|| {
        ProtocolError::Malformed(format!(
            "invalid {} length '{}'",
            if kind == b'*' { "multibulk" } else { "bulk" },
            rest[..cr].escape_ascii()
        ))
    })?;
    Ok(Some((n, pos + 1 + cr + 2)))
}

/// A decimal integer with an optional `-`, nothing else.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

/// An inline command: one line of words.
fn parse_inline(
    buf: &[u8],
    max: usize,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return incomplete(buf, max);
    };
    if nl + 1 > max {
        return Err(ProtocolError::TooLarge {
            size: nl as u64 + 1,
            limit: max,
        });
    }
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let mut i = 0;
    while i < line_end {
        if buf[i] == b' ' || buf[i] == b'\t' {
            i += 1;
            continue;
        }
        let start = i;
        while i < line_end && buf[i] != b' ' && buf[i] != b'\t' {
            i += 1;
        }
        args.push(start..i);
    }
    Ok(Some(nl + 1))
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
    /// ```
    /// use tcp_sockets::Reply;
    /// let mut out = Vec::new();
    /// Reply::Bulk(b"a\r\nb".to_vec()).encode(&mut out);
    /// assert_eq!(out, b"$4\r\na\r\nb\r\n");
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => write_simple(out, s.as_bytes()),
            Reply::Error(e) => write_error(out, e.as_bytes()),
            Reply::Integer(n) => write_int(out, *n),
            Reply::Bulk(b) => write_bulk(out, b),
            Reply::Nil => write_nil(out),
            Reply::Array(items) => {
                write_line(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(out);
                }
            }
        }
    }

    /// Parses one reply at the start of `buf`: the reply and its length in bytes, `None`
    /// when it is not complete yet.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::Malformed`] for bytes that are not a RESP2 reply.
    pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
        Reply::parse_at(buf, 0)
    }

    fn parse_at(buf: &[u8], pos: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
        let Some(&kind) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(nl) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = &buf[pos + 1..pos + nl];
        let next = pos + nl + 2;
        let text = || String::from_utf8_lossy(line).into_owned();
        let int = || {
            parse_int(line).ok_or_else(|| {
                ProtocolError::Malformed(format!("invalid integer '{}'", line.escape_ascii()))
            })
        };
        let reply = match kind {
            b'+' => (Reply::Simple(text()), next),
            b'-' => (Reply::Error(text()), next),
            b':' => (Reply::Integer(int()?), next),
            b'$' => match int()? {
                -1 => (Reply::Nil, next),
                len if len < 0 => {
                    return Err(ProtocolError::Malformed(format!(
                        "invalid bulk length {len}"
                    )));
                }
                len => {
                    let end = next + len as usize;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(ProtocolError::Malformed(
                            "a bulk string is not followed by \\r\\n".into(),
                        ));
                    }
                    (Reply::Bulk(buf[next..end].to_vec()), end + 2)
                }
            },
            b'*' => match int()? {
                -1 => (Reply::Nil, next),
                n if n < 0 => {
                    return Err(ProtocolError::Malformed(format!(
                        "invalid array length {n}"
                    )));
                }
                n => {
                    let mut items = Vec::new();
                    let mut at = next;
                    for _ in 0..n {
                        let Some((item, end)) = Reply::parse_at(buf, at)? else {
                            return Ok(None);
                        };
                        items.push(item);
                        at = end;
                    }
                    (Reply::Array(items), at)
                }
            },
            other => {
                return Err(ProtocolError::Malformed(format!(
                    "a reply cannot start with '{}'",
                    other.escape_ascii()
                )));
            }
        };
        Ok(Some(reply))
    }
}

/// Appends a request of `args` (an array of bulk strings) to `out`.
///
/// # Example
///
/// ```
/// let mut out = Vec::new();
/// tcp_sockets::resp::encode_request(&[&b"GET"[..], b"k"], &mut out);
/// assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
/// ```
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    write_line(out, b'*', args.len() as i64);
    for a in args {
        write_bulk(out, a.as_ref());
    }
}

/// `+<s>\r\n`.
pub fn write_simple(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// `-<message>\r\n` (the message starts with `ERR `; no `\r` or `\n` inside).
pub fn write_error(out: &mut Vec<u8>, message: &[u8]) {
    out.push(b'-');
    out.extend_from_slice(message);
    out.extend_from_slice(b"\r\n");
}

/// `:<n>\r\n`.
pub fn write_int(out: &mut Vec<u8>, n: i64) {
    write_line(out, b':', n);
}

/// `$<len>\r\n<bytes>\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    write_line(out, b'$', bytes.len() as i64);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `$-1\r\n`.
pub fn write_nil(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// `<kind><n>\r\n`, formatted without allocating.
fn write_line(out: &mut Vec<u8>, kind: u8, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push(kind);
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}
