//! Part B: the commands, on a map from keys to values (both any bytes).
//!
//! | request                 | reply                                                   |
//! |-------------------------|---------------------------------------------------------|
//! | `PING`                  | `+PONG`                                                 |
//! | `PING msg`              | `$3 msg` (the message as a bulk string)                 |
//! | `ECHO msg`              | `$3 msg`                                                |
//! | `SET key value`         | `+OK`                                                   |
//! | `GET key`               | the value as a bulk string, or `$-1` (nil) if absent    |
//! | `DEL key [key ...]`     | `:n`, how many of the keys existed (and are now gone)   |
//! | `EXISTS key [key ...]`  | `:n`, how many of the keys exist (a key named twice counts twice) |
//! | anything else `name`    | `-ERR unknown command 'name'`                           |
//!
//! Command names are case-insensitive (`get`, `Get`). A known command with the wrong number
//! of arguments gets `-ERR wrong number of arguments for 'name' command`.

// The imports name the calls you will need. Delete this attribute once every `todo!` is gone:
#![allow(
    unused_imports,
    unused_variables,
    unused_mut,
    dead_code,
    clippy::ptr_arg
)]

use std::collections::HashMap;

use crate::resp::{Args, write_bulk, write_error, write_int, write_nil, write_simple};

/// The keys and their values.
#[derive(Debug, Default)]
pub struct Store {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Runs one request and appends its reply to `out`. An empty request (no argument)
    /// appends nothing.
    ///
    /// Only SET allocates, and only for a key it has not seen (a new value of a known key
    /// reuses that key's buffer): replies are written straight into `out`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use tcp_sockets::{Args, Store};
    /// let mut store = Store::new();
    /// let buf = b"SETkv";
    /// let mut out = Vec::new();
    /// store.execute(Args { buf, ranges: &[0..3, 3..4, 4..5] }, &mut out);
    /// assert_eq!(out, b"+OK\r\n");
    /// ```
    pub fn execute(&mut self, args: Args<'_>, out: &mut Vec<u8>) {
        todo!(
            "part B: match the command's name (case-insensitive), check the number of arguments, act on the map, append the reply"
        )
    }
}
