//! Part C: the client stub. [`RpcClient::call`] marshals a call into a request line, sends
//! it, waits for the reply with the same id (at most the call's timeout), and unmarshals the
//! result, so that `client.add(1.0, 2.0)?` reads like a local call.
//!
//! When the reply does not come in time, or the connection breaks, the stub cannot know
//! whether the server executed the call. It reconnects and sends the *same* request again:
//! the same id and the same client id ([`CLIENT_MEMBER`](crate::wire::CLIENT_MEMBER)), so
//! that the server's reply cache answers a call it has already executed instead of
//! executing it twice (at-most-once).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::wire::{ErrorObject, Params, Request, Response};

/// The timeout of one attempt of a call, unless [`RpcClient::with_timeout`] sets another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many times a call is sent again after the first attempt, unless
/// [`RpcClient::with_retries`] sets another number.
pub const DEFAULT_RETRIES: u32 = 3;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address did not resolve to any socket address.
    #[error("no address to connect to: {0}")]
    NoAddress(String),
    /// The server answered with an error object.
    #[error("error {}: {}", .0.code, .0.message)]
    Rpc(ErrorObject),
    /// Every attempt timed out or lost its connection; the last reason.
    #[error("{method}: no reply after {attempts} attempt(s): {last}")]
    GaveUp {
        /// The method called.
        method: String,
        /// How many times the request was sent (or tried to be).
        attempts: u32,
        /// What went wrong the last time.
        last: String,
    },
    /// The server sent something that is not a JSON-RPC response.
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
    /// The result was not of the type the typed helper returns.
    #[error("{method} returned {result}, not {expected}")]
    UnexpectedResult {
        /// The method called.
        method: String,
        /// What came back.
        result: Value,
        /// What the helper expected.
        expected: &'static str,
    },
}

/// A JSON-RPC client of one server, with a client id of its own.
#[derive(Debug)]
pub struct RpcClient {
    addr: SocketAddr,
    timeout: Duration,
    retries: u32,
    client_id: String,
    next_id: u64,
    conn: Option<Conn>,
}

#[derive(Debug)]
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// Why one attempt failed: whether to try again.
enum Failed {
    Retry(String),
    Fatal(ClientError),
}

impl RpcClient {
    /// A client of the server at `addr` (e.g. `"127.0.0.1:4000"`), with a client id unique to
    /// this client. It connects at its first call (and again after a failed attempt).
    ///
    /// # Errors
    ///
    /// [`ClientError::NoAddress`] when `addr` does not resolve.
    pub fn new(addr: impl ToSocketAddrs) -> Result<RpcClient, ClientError> {
        let addr = addr
            .to_socket_addrs()
            .map_err(|e| ClientError::NoAddress(e.to_string()))?
            .next()
            .ok_or_else(|| ClientError::NoAddress("the name resolved to nothing".into()))?;
        static CLIENTS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // The pid, the time and a counter: no two clients of one machine share it.
        let client_id = format!(
            "{}-{nanos:x}-{}",
            std::process::id(),
            CLIENTS.fetch_add(1, Ordering::Relaxed)
        );
        Ok(RpcClient {
            addr,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            client_id,
            next_id: 1,
            conn: None,
        })
    }

    /// The same client with `timeout` for each attempt of a call.
    pub fn with_timeout(mut self, timeout: Duration) -> RpcClient {
        self.timeout = timeout;
        self
    }

    /// The same client with `retries` attempts after the first.
    pub fn with_retries(mut self, retries: u32) -> RpcClient {
        self.retries = retries;
        self
    }

    /// Its client id, sent as `"_client"` with every call.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Calls `method` with `params` (`Value::Null` for none, an array or an object) and
    /// returns its result. Each call gets a new id; each retry of it sends that same id.
    ///
    /// # Errors
    ///
    /// [`ClientError::Rpc`] when the server answers with an error (never retried),
    /// [`ClientError::GaveUp`] when no attempt got a reply, [`ClientError::Protocol`] for a
    /// reply that is not JSON-RPC.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = Request {
            method: method.to_owned(),
            params: to_params(params)?,
            id: Some(Value::from(id)),
            client: Some(self.client_id.clone()),
        }
        .to_line();
        line.push('\n');
        let mut last = String::new();
        for _ in 0..=self.retries {
            match self.attempt(&line, id) {
                Ok(reply) => return reply.outcome.map_err(ClientError::Rpc),
                Err(Failed::Fatal(e)) => {
                    self.conn = None;
                    return Err(e);
                }
                Err(Failed::Retry(why)) => {
                    // Whatever the old connection still holds belongs to the lost attempt.
                    self.conn = None;
                    last = why;
                }
            }
        }
        Err(ClientError::GaveUp {
            method: method.to_owned(),
            attempts: self.retries + 1,
            last,
        })
    }

    /// Sends `method` as a notification (no id, no reply, no retry).
    ///
    /// # Errors
    ///
    /// [`ClientError::GaveUp`] when it could not be sent.
    pub fn notify(&mut self, method: &str, params: Value) -> Result<(), ClientError> {
        let mut line = Request {
            method: method.to_owned(),
            params: to_params(params)?,
            id: None,
            client: None,
        }
        .to_line();
        line.push('\n');
        let sent = self.connection().and_then(|c| {
            c.writer
                .write_all(line.as_bytes())
                .map_err(|e| e.to_string())
        });
        sent.map_err(|last| {
            self.conn = None;
            ClientError::GaveUp {
                method: method.to_owned(),
                attempts: 1,
                last,
            }
        })
    }

    /// `add(a, b)`: `a + b`.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn add(&mut self, a: f64, b: f64) -> Result<f64, ClientError> {
        let r = self.call("add", serde_json::json!([a, b]))?;
        r.as_f64().ok_or_else(|| unexpected("add", r, "a number"))
    }

    /// `kv.put(key, value)`: the previous value, or null.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn kv_put(&mut self, key: &str, value: Value) -> Result<Value, ClientError> {
        self.call("kv.put", serde_json::json!([key, value]))
    }

    /// `kv.get(key)`: the value, or null.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn kv_get(&mut self, key: &str) -> Result<Value, ClientError> {
        self.call("kv.get", serde_json::json!([key]))
    }

    /// `sleep(ms)`: the server sleeps `ms` milliseconds and returns `ms`.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn sleep(&mut self, ms: u64) -> Result<u64, ClientError> {
        let r = self.call("sleep", serde_json::json!([ms]))?;
        r.as_u64()
            .ok_or_else(|| unexpected("sleep", r, "an integer"))
    }

    /// `counter.incr()`: the counter's new value.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn counter_incr(&mut self) -> Result<u64, ClientError> {
        let r = self.call("counter.incr", serde_json::json!([]))?;
        r.as_u64()
            .ok_or_else(|| unexpected("counter.incr", r, "an integer"))
    }

    /// The open connection, or a new one.
    fn connection(&mut self) -> Result<&mut Conn, String> {
        if self.conn.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
                .map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
            let _ = stream.set_nodelay(true);
            let writer = stream.try_clone().map_err(|e| e.to_string())?;
            self.conn = Some(Conn {
                reader: BufReader::new(stream),
                writer,
            });
        }
        Ok(self.conn.as_mut().expect("just made"))
    }

    /// Sends `line` once and waits for the reply with `id`, at most the timeout.
    fn attempt(&mut self, line: &str, id: u64) -> Result<Response, Failed> {
        let deadline = Instant::now() + self.timeout;
        let conn = self.connection().map_err(Failed::Retry)?;
        conn.writer
            .write_all(line.as_bytes())
            .map_err(|e| Failed::Retry(format!("the request could not be sent: {e}")))?;
        let mut reply = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failed::Retry(format!(
                    "no reply within {} ms",
                    self.timeout.as_millis()
                )));
            }
            let _ = conn.reader.get_ref().set_read_timeout(Some(left));
            reply.clear();
            match conn.reader.read_line(&mut reply) {
                Ok(0) => return Err(Failed::Retry("the server closed the connection".into())),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Failed::Retry(format!(
                        "no reply within {} ms",
                        self.timeout.as_millis()
                    )));
                }
                Err(e) => return Err(Failed::Retry(format!("the connection broke: {e}"))),
            }
            if !reply.ends_with('\n') {
                return Err(Failed::Retry("the server closed the connection".into()));
            }
            let value: Value = serde_json::from_str(&reply).map_err(|e| {
                Failed::Fatal(ClientError::Protocol(format!("{e}: {}", reply.trim_end())))
            })?;
            let response = Response::from_value(&value)
                .map_err(|e| Failed::Fatal(ClientError::Protocol(e)))?;
            // A reply to another id is not ours (a notification's error, a stale reply).
            if response.id == id {
                return Ok(response);
            }
        }
    }
}

fn to_params(params: Value) -> Result<Params, ClientError> {
    match params {
        Value::Null => Ok(Params::None),
        Value::Array(v) => Ok(Params::ByPosition(v)),
        Value::Object(m) => Ok(Params::ByName(m)),
        other => Err(ClientError::Protocol(format!(
            "params must be an array, an object or null, not {other}"
        ))),
    }
}

fn unexpected(method: &str, result: Value, expected: &'static str) -> ClientError {
    ClientError::UnexpectedResult {
        method: method.to_owned(),
        result,
        expected,
    }
}
