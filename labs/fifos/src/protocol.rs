//! Part A: the protocol, as pure functions: no system call in this file.
//!
//! Every client writes its requests into one FIFO, `DIR/seqnum.fifo`, which the server
//! reads. A request is one line, `<pid> <count>\n`, written with ONE `write(2)`: a FIFO
//! keeps each write of at most `PIPE_BUF` (4096) bytes in one piece, so the lines of many
//! clients never mix. The server answers on the client's own FIFO,
//! `DIR/client.<pid>.fifo`, with one line: `<start>\n` or `error <reason>\n`.
//!
//! The server reads a byte stream, not messages: one `read` may return half a line, or
//! several lines. [`Decoder`] turns the bytes back into requests.

use std::fmt;
use std::path::{Path, PathBuf};

/// The name of the server's FIFO inside the service directory.
pub const SERVER_FIFO: &str = "seqnum.fifo";

/// The largest `count` a request may ask for.
pub const MAX_COUNT: u64 = 1_000_000;

/// The longest request line, newline included. Anything longer is rejected as
/// [`BadRequest::TooLong`].
pub const MAX_LINE: usize = 64;

/// `DIR/seqnum.fifo`: the FIFO the server reads and every client writes.
pub fn server_fifo(dir: &Path) -> PathBuf {
    todo!("part A: the path of seqnum.fifo in {}", dir.display())
}

/// `DIR/client.<pid>.fifo`: the FIFO on which the client with this pid reads its reply.
pub fn client_fifo(dir: &Path, pid: u32) -> PathBuf {
    todo!(
        "part A: the path of the reply FIFO of client {pid} in {}",
        dir.display()
    )
}

/// A well-formed request: the client `pid` asks for `count` consecutive numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The client's process id; names its reply FIFO.
    pub pid: u32,
    /// How many numbers it wants, 1..=[`MAX_COUNT`].
    pub count: u64,
}

impl Request {
    /// The request as it goes on the wire: `"<pid> <count>\n"`.
    pub fn to_line(&self) -> String {
        todo!("part A: {self:?} as a line")
    }
}

/// Why a request line was rejected; its `Display` is the reason sent in `error <reason>\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// The line is longer than [`MAX_LINE`] bytes.
    TooLong,
    /// Not two fields separated by one space.
    Malformed,
    /// The pid is not a number in 1..=2147483647.
    BadPid,
    /// The count is not a number in 1..=[`MAX_COUNT`].
    BadCount,
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadRequest::TooLong => "request too long",
            BadRequest::Malformed => "expected <pid> <count>",
            BadRequest::BadPid => "bad pid",
            BadRequest::BadCount => "count must be 1..=1000000",
        })
    }
}

/// A rejected request line: why, and the pid to send the error to, if the line starts with
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// The first field, when it is a valid pid: the error goes to its reply FIFO.
    pub pid: Option<u32>,
    /// Why the line was rejected.
    pub reason: BadRequest,
}

/// Parses one request line, without its newline.
///
/// The line must be exactly `<pid> <count>`: two fields of ASCII digits separated by one
/// space, the pid in 1..=2147483647 and the count in 1..=[`MAX_COUNT`]. On a rejection,
/// [`Rejected::pid`] is the first field when it is a valid pid (so the server can tell that
/// client what was wrong), else `None`.
///
/// # Errors
///
/// [`Rejected`] with [`BadRequest::Malformed`] (not two fields), [`BadRequest::BadPid`] or
/// [`BadRequest::BadCount`]; this function never returns [`BadRequest::TooLong`] (that is
/// the [`Decoder`]'s call).
///
/// # Example
///
/// ```no_run
/// use fifos::protocol::{parse_request, BadRequest, Rejected, Request};
///
/// assert_eq!(parse_request(b"412 10"), Ok(Request { pid: 412, count: 10 }));
/// assert_eq!(
///     parse_request(b"412 0"),
///     Err(Rejected { pid: Some(412), reason: BadRequest::BadCount })
/// );
/// ```
pub fn parse_request(line: &[u8]) -> Result<Request, Rejected> {
    todo!(
        "part A: parse the request line {:?}",
        String::from_utf8_lossy(line)
    )
}

/// The server's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The client owns `start .. start + count`.
    Start(u64),
    /// The request was rejected, for this reason.
    Error(String),
}

impl Reply {
    /// The reply as it goes on the wire: `"<start>\n"` or `"error <reason>\n"`.
    pub fn to_line(&self) -> String {
        todo!("part A: {self:?} as a line")
    }

    /// Parses one reply line, without its newline: a number, or `error ` and a reason.
    /// `None` for anything else.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use fifos::protocol::Reply;
    ///
    /// assert_eq!(Reply::parse(b"42"), Some(Reply::Start(42)));
    /// assert_eq!(Reply::parse(b"error bad pid"), Some(Reply::Error("bad pid".into())));
    /// assert_eq!(Reply::parse(b"forty-two"), None);
    /// ```
    pub fn parse(line: &[u8]) -> Option<Reply> {
        todo!(
            "part A: parse the reply line {:?}",
            String::from_utf8_lossy(line)
        )
    }
}

/// Turns the bytes the server reads from its FIFO back into request lines.
///
/// Bytes arrive in arbitrary pieces: a read may end in the middle of a line, and the next
/// read completes it. The decoder keeps the unfinished line between calls. A line longer
/// than [`MAX_LINE`] is not kept whole: its first bytes are kept (to find its pid), the
/// rest is dropped up to the next newline, and the line is rejected as
/// [`BadRequest::TooLong`]. Memory use is bounded whatever the input.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The current, unfinished line (at most [`MAX_LINE`] bytes).
    #[allow(dead_code)] // until you write `feed`
    line: Vec<u8>,
    /// Whether the current line has already grown past [`MAX_LINE`].
    #[allow(dead_code)] // until you write `feed`
    too_long: bool,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Feeds the bytes of one read and returns every line they complete, parsed, in order.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use fifos::protocol::{Decoder, Request};
    ///
    /// let mut d = Decoder::new();
    /// assert_eq!(d.feed(b"12 3\n45"), [Ok(Request { pid: 12, count: 3 })]);
    /// assert_eq!(d.feed(b" 6\n"), [Ok(Request { pid: 45, count: 6 })]);
    /// ```
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<Request, Rejected>> {
        todo!("part A: cut {} more bytes into lines", bytes.len())
    }
}
