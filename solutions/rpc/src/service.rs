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
        match method {
            "add" => {
                let [a, b] = args(params, ["a", "b"])?;
                let (Some(a), Some(b)) = (a.as_f64(), b.as_f64()) else {
                    return Err(ErrorObject::invalid_params("add takes two numbers"));
                };
                Ok(Value::from(a + b))
            }
            "kv.put" => {
                let [key, value] = args(params, ["key", "value"])?;
                let Value::String(key) = key else {
                    return Err(ErrorObject::invalid_params("the key is a string"));
                };
                Ok(self.state().kv.insert(key, value).unwrap_or(Value::Null))
            }
            "kv.get" => {
                let [key] = args(params, ["key"])?;
                let Value::String(key) = key else {
                    return Err(ErrorObject::invalid_params("the key is a string"));
                };
                Ok(self.state().kv.get(&key).cloned().unwrap_or(Value::Null))
            }
            "sleep" => {
                let [ms] = args(params, ["ms"])?;
                let ms = ms
                    .as_u64()
                    .filter(|&ms| ms <= MAX_SLEEP_MS)
                    .ok_or_else(|| {
                        ErrorObject::invalid_params("sleep takes an integer 0..=10000 (ms)")
                    })?;
                // No lock is held here: other connections go on while this one sleeps.
                std::thread::sleep(Duration::from_millis(ms));
                Ok(Value::from(ms))
            }
            "counter.incr" => {
                let [] = args(params, [])?;
                let mut state = self.state();
                state.counter += 1;
                Ok(Value::from(state.counter))
            }
            other => Err(ErrorObject::method_not_found(other)),
        }
    }

    /// Handles one valid request: `None` for a notification (it is executed, and its
    /// result or error is dropped), the response otherwise. A request with an id and a
    /// client id is executed at most once: a repeat gets the reply of the first.
    pub fn handle(&self, request: &Request) -> Option<Response> {
        let Some(id) = &request.id else {
            let _ = self.call(&request.method, &request.params);
            return None;
        };
        let Some(client) = &request.client else {
            return Some(Response {
                id: id.clone(),
                outcome: self.call(&request.method, &request.params),
            });
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match cache.begin(client, id) {
                Lookup::Done(reply) => return Some(reply),
                // The first copy is still running (a retry of a slow call): wait for it.
                Lookup::Running => {
                    cache = self.finished.wait(cache).unwrap_or_else(|e| e.into_inner())
                }
                Lookup::Fresh => break,
            }
        }
        // Not under the cache's lock: a slow call must not hold up every other client.
        drop(cache);
        let reply = Response {
            id: id.clone(),
            outcome: self.call(&request.method, &request.params),
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish(client, id, reply.clone());
        self.finished.notify_all();
        Some(reply)
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
    let expected = || {
        ErrorObject::invalid_params(&format!(
            "expected {N} parameter(s) [{}], by position or by name",
            names.join(", ")
        ))
    };
    let values: Vec<Value> = match params {
        Params::None => Vec::new(),
        Params::ByPosition(v) => v.clone(),
        Params::ByName(m) => {
            if m.len() != N {
                return Err(expected());
            }
            names
                .iter()
                .map(|n| m.get(*n).cloned().ok_or_else(expected))
                .collect::<Result<_, _>>()?
        }
    };
    values.try_into().map_err(|_| expected())
}
