//! Part D: [`KvClient`], a client of `kv-server` (and of any Redis server) for the tests,
//! the bench and your own programs.
//!
//! A pipeline sends many requests before reading any reply. With a big pipeline the client
//! must read while it writes: the server stops reading when the replies it owes pile up
//! (back-pressure), and a client that only writes would wait for it forever.

// The imports name the calls you will need. Delete this attribute once every `todo!` is gone:
#![allow(
    unused_imports,
    unused_variables,
    unused_mut,
    dead_code,
    clippy::ptr_arg
)]

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::resp::{self, Reply};

/// Bytes of requests above which [`KvClient::pipeline`] writes from a second thread while
/// it reads the replies.
const WRITE_ALONE: usize = 64 << 10;

/// A connection to a RESP server.
#[derive(Debug)]
pub struct KvClient {
    stream: TcpStream,
    /// Bytes received and not yet parsed: `input[start..]`.
    input: Vec<u8>,
    start: usize,
}

impl KvClient {
    /// Connects to `addr` (e.g. `"127.0.0.1:6379"`), with Nagle's algorithm off.
    ///
    /// # Errors
    ///
    /// As `connect(2)`: `ConnectionRefused` when nothing listens there.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<KvClient> {
        todo!("part D: TcpStream::connect, then set_nodelay")
    }

    /// Makes every later call fail with `WouldBlock` or `TimedOut` when the server does not
    /// answer (or take the request) within `limit`; `None` waits for ever (the default).
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        todo!("part D: the read and the write timeout of the stream")
    }

    /// Sends one request and returns its reply (an error reply is `Ok(Reply::Error)`).
    ///
    /// # Errors
    ///
    /// A socket error, a timeout, `UnexpectedEof` when the server closed the connection
    /// before the whole reply, `InvalidData` for bytes that are not RESP.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        todo!("part D: encode the request, write it, read one reply")
    }

    /// Sends every request of `requests` at once, then returns their replies in order.
    ///
    /// # Errors
    ///
    /// As [`KvClient::command`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// # use tcp_sockets::{KvClient, Reply};
    /// let mut c = KvClient::connect("127.0.0.1:6379")?;
    /// let replies = c.pipeline(&[vec!["SET", "a", "1"], vec!["GET", "a"]])?;
    /// assert_eq!(replies[1], Reply::Bulk(b"1".to_vec()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pipeline<R: AsRef<[A]>, A: AsRef<[u8]>>(
        &mut self,
        requests: &[R],
    ) -> io::Result<Vec<Reply>> {
        todo!(
            "part D: encode every request; write them (from a second thread when they are big) while reading the replies"
        )
    }

    /// `PING`: `Ok` when the server answers `+PONG`.
    ///
    /// # Errors
    ///
    /// As [`KvClient::command`], and `Other` for any other reply.
    pub fn ping(&mut self) -> io::Result<()> {
        todo!("part D: PING, expect +PONG")
    }

    /// `GET key`: the value, or `None` when the key does not exist.
    ///
    /// # Errors
    ///
    /// As [`KvClient::command`], and `Other` for an error reply (its message) or a reply of
    /// another kind.
    pub fn get(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        todo!("part D: GET key: a bulk string or nil")
    }

    /// `SET key value`.
    ///
    /// # Errors
    ///
    /// As [`KvClient::get`].
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        todo!("part D: SET key value: +OK")
    }

    /// `DEL key...`: how many of the keys existed.
    ///
    /// # Errors
    ///
    /// As [`KvClient::get`].
    pub fn del(&mut self, keys: &[&[u8]]) -> io::Result<i64> {
        todo!("part D: DEL keys...: an integer")
    }

    /// `EXISTS key...`: how many of the keys exist.
    ///
    /// # Errors
    ///
    /// As [`KvClient::get`].
    pub fn exists(&mut self, keys: &[&[u8]]) -> io::Result<i64> {
        todo!("part D: EXISTS keys...: an integer")
    }
}
