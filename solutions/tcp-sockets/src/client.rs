//! Part D: [`KvClient`], a client of `kv-server` (and of any Redis server) for the tests,
//! the bench and your own programs.
//!
//! A pipeline sends many requests before reading any reply. With a big pipeline the client
//! must read while it writes: the server stops reading when the replies it owes pile up
//! (back-pressure), and a client that only writes would wait for it forever.

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
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(KvClient {
            stream,
            input: Vec::new(),
            start: 0,
        })
    }

    /// Makes every later call fail with `WouldBlock` or `TimedOut` when the server does not
    /// answer (or take the request) within `limit`; `None` waits for ever (the default).
    ///
    /// # Errors
    ///
    /// As `setsockopt(2)`.
    pub fn set_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(limit)?;
        self.stream.set_write_timeout(limit)
    }

    /// Sends one request and returns its reply (an error reply is `Ok(Reply::Error)`).
    ///
    /// # Errors
    ///
    /// A socket error, a timeout, `UnexpectedEof` when the server closed the connection
    /// before the whole reply, `InvalidData` for bytes that are not RESP.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        let mut out = Vec::new();
        resp::encode_request(args, &mut out);
        self.stream.write_all(&out)?;
        self.read_reply()
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
        let mut out = Vec::new();
        for r in requests {
            resp::encode_request(r.as_ref(), &mut out);
        }
        if out.len() <= WRITE_ALONE {
            self.stream.write_all(&out)?;
            return (0..requests.len()).map(|_| self.read_reply()).collect();
        }
        let mut writer = self.stream.try_clone()?;
        std::thread::scope(|s| {
            let sending = s.spawn(move || writer.write_all(&out));
            let replies: io::Result<Vec<Reply>> =
                (0..requests.len()).map(|_| self.read_reply()).collect();
            if replies.is_err() {
                // Unblock the writer (the server may have stopped reading), then report.
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
            }
            let sent = sending
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("writer panicked")));
            let replies = replies?;
            sent.map(|()| replies)
        })
    }

    /// `PING`: `Ok` when the server answers `+PONG`.
    ///
    /// # Errors
    ///
    /// As [`KvClient::command`], and `Other` for any other reply.
    pub fn ping(&mut self) -> io::Result<()> {
        match self.command(&["PING"])? {
            Reply::Simple(s) if s == "PONG" => Ok(()),
            other => Err(unexpected("PING", other)),
        }
    }

    /// `GET key`: the value, or `None` when the key does not exist.
    ///
    /// # Errors
    ///
    /// As [`KvClient::command`], and `Other` for an error reply (its message) or a reply of
    /// another kind.
    pub fn get(&mut self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        match self.command(&[b"GET", key])? {
            Reply::Bulk(v) => Ok(Some(v)),
            Reply::Nil => Ok(None),
            other => Err(unexpected("GET", other)),
        }
    }

    /// `SET key value`.
    ///
    /// # Errors
    ///
    /// As [`KvClient::get`].
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        match self.command(&[b"SET", key, value])? {
            Reply::Simple(s) if s == "OK" => Ok(()),
            other => Err(unexpected("SET", other)),
        }
    }

    /// `DEL key...`: how many of the keys existed.
    ///
    /// # Errors
    ///
    /// As [`KvClient::get`].
    pub fn del(&mut self, keys: &[&[u8]]) -> io::Result<i64> {
        self.counting("DEL", keys)
    }

    /// `EXISTS key...`: how many of the keys exist.
    ///
    /// # Errors
    ///
    /// As [`KvClient::get`].
    pub fn exists(&mut self, keys: &[&[u8]]) -> io::Result<i64> {
        self.counting("EXISTS", keys)
    }

    fn counting(&mut self, cmd: &str, keys: &[&[u8]]) -> io::Result<i64> {
        let mut args: Vec<&[u8]> = vec![cmd.as_bytes()];
        args.extend_from_slice(keys);
        match self.command(&args)? {
            Reply::Integer(n) => Ok(n),
            other => Err(unexpected(cmd, other)),
        }
    }

    /// Reads until one whole reply is buffered, and returns it.
    fn read_reply(&mut self) -> io::Result<Reply> {
        loop {
            match Reply::parse(&self.input[self.start..]) {
                Ok(Some((reply, n))) => {
                    self.start += n;
                    if self.start == self.input.len() {
                        self.input.clear();
                        self.start = 0;
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if self.start > 0 {
                self.input.drain(..self.start);
                self.start = 0;
            }
            let len = self.input.len();
            self.input.resize(len + (64 << 10), 0);
            let got = self.stream.read(&mut self.input[len..]);
            self.input.truncate(len + *got.as_ref().unwrap_or(&0));
            match got {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection before a whole reply",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn unexpected(cmd: &str, reply: Reply) -> io::Error {
    match reply {
        Reply::Error(e) => io::Error::other(e),
        other => io::Error::other(format!("unexpected reply to {cmd}: {other:?}")),
    }
}
