//! Part C: the client stub. [`RpcClient::call`] marshals a call into a request line, sends
//! it, waits for the reply with the same id (at most the call's timeout), and unmarshals the
//! result, so that `client.add(1.0, 2.0)?` reads like a local call.
//!
//! When the reply does not come in time, or the connection breaks, the stub cannot know
//! whether the server executed the call. It reconnects and sends the *same* request again:
//! the same id and the same client id ([`CLIENT_MEMBER`](crate::wire::CLIENT_MEMBER)), so
//! that the server's reply cache answers a call it has already executed instead of
//! executing it twice (at-most-once).

// The imports name what you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

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
        todo!(
            "part C: resolve addr; a client id unique on this machine (pid, time, a counter); no connection yet"
        )
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
        todo!(
            "part C: a new id; the same request line for every attempt; retry on timeout or broken connection after dropping the connection"
        )
    }

    /// Sends `method` as a notification (no id, no reply, no retry).
    ///
    /// # Errors
    ///
    /// [`ClientError::GaveUp`] when it could not be sent.
    pub fn notify(&mut self, method: &str, params: Value) -> Result<(), ClientError> {
        todo!("part C: send a request without id; no reply to wait for")
    }

    /// `add(a, b)`: `a + b`.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn add(&mut self, a: f64, b: f64) -> Result<f64, ClientError> {
        todo!("part C: call add with [a, b] and read a number")
    }

    /// `kv.put(key, value)`: the previous value, or null.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn kv_put(&mut self, key: &str, value: Value) -> Result<Value, ClientError> {
        todo!("part C: call kv.put with [key, value]")
    }

    /// `kv.get(key)`: the value, or null.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn kv_get(&mut self, key: &str) -> Result<Value, ClientError> {
        todo!("part C: call kv.get with [key]")
    }

    /// `sleep(ms)`: the server sleeps `ms` milliseconds and returns `ms`.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn sleep(&mut self, ms: u64) -> Result<u64, ClientError> {
        todo!("part C: call sleep with [ms] and read an integer")
    }

    /// `counter.incr()`: the counter's new value.
    ///
    /// # Errors
    ///
    /// As [`call`](RpcClient::call).
    pub fn counter_incr(&mut self) -> Result<u64, ClientError> {
        todo!("part C: call counter.incr with [] and read an integer")
    }

    /// The open connection, or a new one.
    fn connection(&mut self) -> Result<&mut Conn, String> {
        todo!("part C: connect (with the timeout) when there is no connection")
    }

    /// Sends `line` once and waits for the reply with `id`, at most the timeout.
    fn attempt(&mut self, line: &str, id: u64) -> Result<Response, Failed> {
        todo!(
            "part C: send line; read lines until the reply with id, within the timeout (set_read_timeout)"
        )
    }
}

fn to_params(params: Value) -> Result<Params, ClientError> {
    todo!("part C: null: Params::None; an array; an object; else an error")
}

fn unexpected(method: &str, result: Value, expected: &'static str) -> ClientError {
    ClientError::UnexpectedResult {
        method: method.to_owned(),
        result,
        expected,
    }
}
