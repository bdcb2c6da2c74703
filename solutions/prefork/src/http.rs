//! Part A: HTTP/1.1 requests and responses, as pure functions: parsing a request head,
//! the status line and headers of a response, content types, and mapping a URL path to a
//! file under the document root without ever leaving it.

use std::path::{Component, Path, PathBuf};

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

/// Whether `s` is an HTTP token (a method or a header name).
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The line ending at `\n` (its `\r` removed).
fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
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
/// ```
/// use prefork::http::{parse_request, Method, Parsed};
/// let buf = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
/// let Parsed::Complete(req, used) = parse_request(buf) else { panic!() };
/// assert_eq!((req.method, req.target.as_str(), req.keep_alive), (Method::Get, "/index.html", true));
/// assert_eq!(&buf[used..], b"GET /next");
/// assert_eq!(parse_request(b"GET / HT"), Parsed::Partial);
/// ```
pub fn parse_request(buf: &[u8]) -> Parsed {
    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_REQUEST_LINE + 1 {
            Parsed::Error(414)
        } else {
            Parsed::Partial
        };
    };
    let line = trim_cr(&buf[..eol]);
    if line.len() > MAX_REQUEST_LINE {
        return Parsed::Error(414);
    }
    // The header lines, up to the empty line.
    let mut pos = eol + 1;
    let mut headers = Vec::new();
    loop {
        let Some(n) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return if buf.len() - (eol + 1) > MAX_HEADERS {
                Parsed::Error(431)
            } else {
                Parsed::Partial
            };
        };
        let h = trim_cr(&buf[pos..pos + n]);
        pos += n + 1;
        if pos - (eol + 1) > MAX_HEADERS + 2 {
            return Parsed::Error(431);
        }
        if h.is_empty() {
            break;
        }
        headers.push(h);
    }
    match parse_head(line, &headers) {
        Some(req) => Parsed::Complete(req, pos),
        None => Parsed::Error(400),
    }
}

/// The request line and headers of a complete head; `None` when malformed.
fn parse_head(line: &[u8], headers: &[&[u8]]) -> Option<Request> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_token(method) || !target.starts_with(b"/") {
        return None;
    }
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return None,
    };
    let mut keep_alive = http11;
    for h in headers {
        let colon = h.iter().position(|&b| b == b':')?;
        let (name, value) = (&h[..colon], h[colon + 1..].trim_ascii());
        if !is_token(name) {
            return None;
        }
        if name.eq_ignore_ascii_case(b"connection") {
            for opt in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if opt.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || (name.eq_ignore_ascii_case(b"content-length") && value != b"0")
        {
            return None;
        }
    }
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        other => Method::Other(String::from_utf8_lossy(other).into_owned()),
    };
    Some(Request {
        method,
        target: String::from_utf8(target.to_vec()).ok()?,
        keep_alive,
    })
}

/// The reason phrase of `status` (`"Not Found"` for 404).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The `Content-Type` of a file, from its extension (case-insensitive): html/htm, txt, css,
/// js, json, png, jpg/jpeg, gif, svg, ico, pdf; anything else `application/octet-stream`.
/// Text types carry `; charset=utf-8`.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The status line and headers of a response, ending with the blank line:
/// `HTTP/1.1 <status> <reason>`, `Content-Length`, `Content-Type` (when given),
/// `Connection: keep-alive` or `Connection: close`, then `extra` lines (each `Name: value`,
/// without CRLF, e.g. `Allow: GET, HEAD`).
///
/// # Example
///
/// ```
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
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nServer: prefork-httpd\r\nContent-Length: {length}\r\n",
        reason(status)
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Decodes `%XX` escapes of a URL path; `None` for a bad escape or an encoded NUL.
pub fn percent_decode(path: &str) -> Option<Vec<u8>> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if v == 0 {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
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
    use std::os::unix::ffi::OsStrExt;
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path).ok_or(400u16)?;
    let rel = Path::new(std::ffi::OsStr::from_bytes(&decoded));
    // Only plain names: `..` could climb out of root, whatever follows it.
    let mut joined = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => joined.push(name),
            Component::ParentDir | Component::Prefix(_) => return Err(404),
        }
    }
    // Symlinks may still point anywhere: compare the real paths.
    let real_root = root.canonicalize().map_err(|_| 404u16)?;
    let mut real = joined.canonicalize().map_err(|_| 404u16)?;
    if !real.starts_with(&real_root) {
        return Err(404);
    }
    if real.is_dir() {
        real = real.join("index.html").canonicalize().map_err(|_| 404u16)?;
        if !real.starts_with(&real_root) {
            return Err(404);
        }
    }
    if real.is_file() { Ok(real) } else { Err(404) }
}
