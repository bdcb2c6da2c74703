//! Part B: the methods the server offers, their parameters, and what a request gets back.
//!
//! | method         | params (by position or by name)    | result                          |
//! |----------------|------------------------------------|---------------------------------|
//! | `add`          | `[a, b]` or `{"a": a, "b": b}`, numbers | `a + b` (a float)          |
//! | `kv.put`       | `[key, value]` or `{"key", "value"}`, key a string | the previous value or null |
//! | `kv.get`       | `[key]` or `{"key"}`               | the value or null               |
//! | `sleep`        | `[ms]` or `{"ms"}`, 0..=10000      | `ms`, after sleeping that long  |
//! | `counter.incr` | none, `[]` or `{}`                 | the counter's new value (1, 2, ...) |
//!
//! Wrong count, names or types of parameters: -32602. Another method: -32601.

// The imports name what you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use crate::cache::{Lookup, MAX_CLIENTS, REPLIES_PER_CLIENT, ReplyCache};
use crate::wire::{ErrorObject, Params, Request, Response};

/// The longest `sleep`, in milliseconds.
pub const MAX_SLEEP_MS: u64 = 10_000;

/// The server's state, shared by every connection.
#[derive(Debug)]
pub struct Service {
    state: Mutex<State>,
    cache: Mutex<ReplyCache>,
    /// Signalled whenever a reply enters the cache, for retries waiting on a running call.
    finished: Condvar,
}

#[derive(Debug, Default)]
struct State {
    kv: HashMap<String, Value>,
    counter: u64,
}

impl Default for Service {
    fn default() -> Service {
        Service::new()
    }
}

impl Service {
    /// A service with an empty store, the counter at 0 and an empty reply cache bounded by
    /// [`REPLIES_PER_CLIENT`] and [`MAX_CLIENTS`].
    pub fn new() -> Service {
        Service {
            state: Mutex::new(State::default()),
            cache: Mutex::new(ReplyCache::new(REPLIES_PER_CLIENT, MAX_CLIENTS)),
            finished: Condvar::new(),
        }
    }

    /// Executes `method` with `params`: its result, or the error object to send.
    ///
    /// # Errors
    ///
    /// -32601 for an unknown method, -32602 for wrong parameters.
    pub fn call(&self, method: &str, params: &Params) -> Result<Value, ErrorObject> {
        todo!("part B: dispatch on the method; parameters with args(); no lock held while sleeping")
    }

    /// Handles one valid request: `None` for a notification (it is executed, and its
    /// result or error is dropped), the response otherwise. A request with an id and a
    /// client id is executed at most once: a repeat gets the reply of the first.
    pub fn handle(&self, request: &Request) -> Option<Response> {
        todo!(
            "part B: a notification runs and gets None; part C: with a client id, go through the reply cache (begin, wait while Running, call, finish, notify)"
        )
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `N` parameters named `names`, by position (exactly `N` of them) or by name (exactly
/// those names). No params at all is the same as `[]`.
///
/// # Errors
///
/// -32602 saying what was expected.
pub fn args<const N: usize>(params: &Params, names: [&str; N]) -> Result<[Value; N], ErrorObject> {
    todo!("part B: by position exactly N values; by name exactly these names; none is []")
}
