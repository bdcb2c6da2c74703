//! Part B: the transport of the server. `rpc-server` listens on 127.0.0.1, gives every
//! connection a thread of its own, reads it line by line (each line capped at
//! [`MAX_LINE`] bytes) and writes one reply line per line that needs one.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;

use crate::service::Service;
use crate::wire::{self, ErrorObject, MAX_LINE, Message, Response};

/// Listens on 127.0.0.1:`port` (0: the kernel picks a free port).
///
/// # Errors
///
/// The bind's error (the port is in use, or below 1024 without privilege).
pub fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
}

/// Accepts connections for ever, each served by [`serve_connection`] on a thread of its
/// own, all sharing `service`.
///
/// # Errors
///
/// Only when `accept` fails for good (not for one failed connection).
pub fn serve(listener: TcpListener, service: Arc<Service>) -> io::Result<()> {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            // A client that gave up before we accepted it: the server goes on.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            // Out of descriptors (EMFILE, ENFILE): the pending client stays in the backlog;
            // pause, so as not to spin, until a connection closes and frees one.
            Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            Err(e) => return Err(e),
        };
        let service = Arc::clone(&service);
        // One thread per connection: a `sleep` on one connection holds only that thread.
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &service);
        });
    }
}

/// Serves one connection until the client closes it: every line gets the reply
/// [`respond`] gives (if any), in order.
///
/// # Errors
///
/// A read or write error of the connection (the client has gone).
pub fn serve_connection(stream: TcpStream, service: &Service) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        let reply = match read_line(&mut reader, &mut line, MAX_LINE)? {
            Line::End => return Ok(()),
            Line::TooLong => Some(
                Response::error(serde_json::Value::Null, ErrorObject::parse_error())
                    .to_value()
                    .to_string(),
            ),
            Line::Complete => respond(service, &line),
        };
        if let Some(mut reply) = reply {
            reply.push('\n');
            // One write per reply: the line reaches the client whole.
            writer.write_all(reply.as_bytes())?;
        }
    }
}

/// What [`read_line`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A line is in the buffer, without its newline (the last line may lack the newline).
    Complete,
    /// The line was longer than the cap: it has been skipped up to its newline.
    TooLong,
    /// The connection was closed and nothing is left.
    End,
}

/// Reads one line into `buf` (cleared first), never keeping more than `cap` bytes of it.
///
/// # Errors
///
/// A read error of the connection.
pub fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::End,
                (false, false) => Line::Complete,
            });
        }
        let (part, newline) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i)),
            None => (chunk, None),
        };
        if !too_long && buf.len() + part.len() <= cap {
            buf.extend_from_slice(part);
        } else {
            // Past the cap: drop what came so far and the rest of the line.
            too_long = true;
            buf.clear();
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// The reply line (without newline) to one line a client sent, or `None` when nothing is to
/// be sent: a blank line, a notification, a batch of notifications.
///
/// # Example
///
/// ```
/// # use rpc::{server::respond, Service};
/// let s = Service::new();
/// let reply = respond(&s, br#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#);
/// assert_eq!(reply.as_deref(), Some(r#"{"id":1,"jsonrpc":"2.0","result":3.0}"#));
/// assert_eq!(respond(&s, br#"{"jsonrpc":"2.0","method":"add","params":[1,2]}"#), None);
/// ```
pub fn respond(service: &Service, line: &[u8]) -> Option<String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let answer = |entry: wire::Entry| match entry {
        Ok(request) => service.handle(&request),
        Err(invalid) => Some(invalid),
    };
    match wire::parse_line(line) {
        Message::Reject(reply) => wire::encode_replies(vec![reply], false),
        Message::Single(entry) => wire::encode_replies(answer(entry).into_iter().collect(), false),
        Message::Batch(entries) => {
            wire::encode_replies(entries.into_iter().filter_map(answer).collect(), true)
        }
    }
}
