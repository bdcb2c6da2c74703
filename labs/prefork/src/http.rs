//! Part A: HTTP/1.1 requests and responses, as pure functions: parsing a request head,
//! the status line and headers of a response, content types, and mapping a URL path to a
//! file under the document root without ever leaving it.

#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::path::{Path, PathBuf};

/// Longest request line accepted (without its CRLF); longer: 414.
pub const MAX_REQUEST_LINE: usize = 8192;
/// Most bytes of header lines accepted after the request line; more: 431.
pub const MAX_HEADERS: usize = 16384;

/// A request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`: the headers and the body.
    Get,
    /// `HEAD`: the headers `GET` would send, no body.
    Head,
    /// Any other well-formed method (`POST`, `DELETE`, ...): answered 405 with `Allow`.
    Other(String),
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target exactly as sent (`/a%20b.txt?x=1`).
    pub target: String,
    /// Whether the client wants the connection kept open after the response: HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
}

/// What [`parse_request`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request head, and how many bytes of the buffer it took (its blank line
    /// included): the next request starts there.
    Complete(Request, usize),
    /// Not a whole head yet (and not too long yet): read more.
    Partial,
    /// A head that can never be valid: answer with this status (400, 414 or 431) and close.
    Error(u16),
}

/// Parses the request head at the start of `buf`.
///
/// A head is a request line `METHOD SP TARGET SP HTTP/1.x`, header lines `Name: value`, and
/// an empty line; lines end with CRLF (a bare LF is accepted too). The target must start
/// with `/`. A request with a body (`Content-Length` other than 0, or `Transfer-Encoding`)
/// is a 400: this server only serves GET and HEAD.
///
/// # Errors
///
/// [`Parsed::Error`] with 414 when the request line is longer than [`MAX_REQUEST_LINE`],
/// 431 when the header lines are longer than [`MAX_HEADERS`] in all, 400 for anything else
/// malformed. Those limits hold before the head is complete, too: a client that sends
/// 100 KiB without a line end gets its 414 without the server buffering it all.
///
/// # Example
///
/// ```no_run
/// use prefork::http::{parse_request, Method, Parsed};
/// let buf = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
/// let Parsed::Complete(req, used) = parse_request(buf) else { panic!() };
/// assert_eq!((req.method, req.target.as_str(), req.keep_alive), (Method::Get, "/index.html", true));
/// assert_eq!(&buf[used..], b"GET /next");
/// assert_eq!(parse_request(b"GET / HT"), Parsed::Partial);
/// ```
pub fn parse_request(buf: &[u8]) -> Parsed {
    todo!(
        "part A: find the request line and the blank line, enforce the limits, parse the line and the headers"
    )
}

/// The reason phrase of `status` (`"Not Found"` for 404).
pub fn reason(status: u16) -> &'static str {
    todo!("part A: the reason phrase of each status this server sends")
}

/// The `Content-Type` of a file, from its extension (case-insensitive): html/htm, txt, css,
/// js, json, png, jpg/jpeg, gif, svg, ico, pdf; anything else `application/octet-stream`.
/// Text types carry `; charset=utf-8`.
pub fn content_type(path: &Path) -> &'static str {
    todo!("part A: map the extension (any case) to a type")
}

/// The status line and headers of a response, ending with the blank line:
/// `HTTP/1.1 <status> <reason>`, `Content-Length`, `Content-Type` (when given),
/// `Connection: keep-alive` or `Connection: close`, then `extra` lines (each `Name: value`,
/// without CRLF, e.g. `Allow: GET, HEAD`).
///
/// # Example
///
/// ```no_run
/// let head = prefork::http::response_head(404, Some("text/plain; charset=utf-8"), 10, false, &[]);
/// assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"));
/// assert!(head.contains("Content-Length: 10\r\n") && head.contains("Connection: close\r\n"));
/// assert!(head.ends_with("\r\n\r\n"));
/// ```
pub fn response_head(
    status: u16,
    content_type: Option<&str>,
    length: u64,
    keep_alive: bool,
    extra: &[&str],
) -> String {
    todo!("part A: the status line, the headers, the blank line")
}

/// Decodes `%XX` escapes of a URL path; `None` for a bad escape or an encoded NUL.
pub fn percent_decode(path: &str) -> Option<Vec<u8>> {
    todo!("part A: decode %XX escapes")
}

/// The file under `root` that the request target names, or the status to answer instead.
///
/// The query (`?...`) is ignored; the path is percent-decoded; a path that ends in `/` (or
/// names a directory) means its `index.html`. The file must exist, be a regular file, and
/// lie under `root` once every symlink is resolved.
///
/// # Errors
///
/// `Err(404)` when there is no such file, it is not a regular file, or the path would leave
/// `root`: a `..` segment (sent as is or percent-encoded), or a symlink that points out of
/// `root`. `Err(400)` for a bad percent escape.
///
/// # Example
///
/// ```no_run
/// use std::path::Path;
/// use prefork::http::resolve;
/// let root = Path::new("/srv/www");
/// assert!(resolve(root, "/index.html").is_ok());
/// assert_eq!(resolve(root, "/../etc/passwd"), Err(404));
/// assert_eq!(resolve(root, "/%2e%2e/etc/passwd"), Err(404));
/// ```
pub fn resolve(root: &Path, target: &str) -> Result<PathBuf, u16> {
    todo!(
        "part A: decode, refuse .. segments, canonicalize, stay under the canonical root, directories mean index.html"
    )
}
