//! Part B: the transport of the server. `rpc-server` listens on 127.0.0.1, gives every
//! connection a thread of its own, reads it line by line (each line capped at
//! [`MAX_LINE`] bytes) and writes one reply line per line that needs one.

// The imports name what you will need. Delete this attribute once every `todo!` is gone:
#![allow(
    unused_imports,
    unused_variables,
    unused_mut,
    dead_code,
    clippy::ptr_arg
)]

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
    todo!("part B: bind 127.0.0.1 only")
}

/// Accepts connections for ever, each served by [`serve_connection`] on a thread of its
/// own, all sharing `service`.
///
/// # Errors
///
/// Only when `accept` fails for good (not for one failed connection).
pub fn serve(listener: TcpListener, service: Arc<Service>) -> io::Result<()> {
    todo!("part B: accept for ever; a thread per connection running serve_connection")
}

/// Serves one connection until the client closes it: every line gets the reply
/// [`respond`] gives (if any), in order.
///
/// # Errors
///
/// A read or write error of the connection (the client has gone).
pub fn serve_connection(stream: TcpStream, service: &Service) -> io::Result<()> {
    todo!(
        "part B: read_line with MAX_LINE; TooLong is a parse error reply; respond; one write per reply line"
    )
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
    todo!("part B: fill_buf/consume up to the newline, keeping at most cap bytes")
}

/// The reply line (without newline) to one line a client sent, or `None` when nothing is to
/// be sent: a blank line, a notification, a batch of notifications.
///
/// # Example
///
/// ```no_run
/// # use rpc::{server::respond, Service};
/// let s = Service::new();
/// let reply = respond(&s, br#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#);
/// assert_eq!(reply.as_deref(), Some(r#"{"id":1,"jsonrpc":"2.0","result":3.0}"#));
/// assert_eq!(respond(&s, br#"{"jsonrpc":"2.0","method":"add","params":[1,2]}"#), None);
/// ```
pub fn respond(service: &Service, line: &[u8]) -> Option<String> {
    todo!(
        "part B: blank: None; parse_line; answer each entry (invalid ones with their error); encode_replies"
    )
}
