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
    /// ```
    /// use tcp_sockets::{Args, Store};
    /// let mut store = Store::new();
    /// let buf = b"SETkv";
    /// let mut out = Vec::new();
    /// store.execute(Args { buf, ranges: &[0..3, 3..4, 4..5] }, &mut out);
    /// assert_eq!(out, b"+OK\r\n");
    /// ```
    pub fn execute(&mut self, args: Args<'_>, out: &mut Vec<u8>) {
        if args.is_empty() {
            return;
        }
        let name = args.get(0);
        let n = args.len();
        let is = |cmd: &str| name.eq_ignore_ascii_case(cmd.as_bytes());
        let arity = |ok: bool, out: &mut Vec<u8>| {
            if !ok {
                wrong_arity(name, out);
            }
            ok
        };
        if is("GET") {
            if arity(n == 2, out) {
                match self.map.get(args.get(1)) {
                    Some(v) => write_bulk(out, v),
                    None => write_nil(out),
                }
            }
        } else if is("SET") {
            if arity(n == 3, out) {
                let (key, value) = (args.get(1), args.get(2));
                match self.map.get_mut(key) {
                    Some(v) => {
                        v.clear();
                        v.extend_from_slice(value);
                    }
                    None => {
                        self.map.insert(key.to_vec(), value.to_vec());
                    }
                }
                write_simple(out, b"OK");
            }
        } else if is("PING") {
            match n {
                1 => write_simple(out, b"PONG"),
                2 => write_bulk(out, args.get(1)),
                _ => wrong_arity(name, out),
            }
        } else if is("ECHO") {
            if arity(n == 2, out) {
                write_bulk(out, args.get(1));
            }
        } else if is("DEL") {
            if arity(n >= 2, out) {
                let gone = (1..n)
                    .filter(|&i| self.map.remove(args.get(i)).is_some())
                    .count();
                write_int(out, gone as i64);
            }
        } else if is("EXISTS") {
            if arity(n >= 2, out) {
                let found = (1..n)
                    .filter(|&i| self.map.contains_key(args.get(i)))
                    .count();
                write_int(out, found as i64);
            }
        } else {
            let mut msg = b"ERR unknown command '".to_vec();
            msg.extend(printable(name));
            msg.push(b'\'');
            write_error(out, &msg);
        }
    }
}

fn wrong_arity(name: &[u8], out: &mut Vec<u8>) {
    let mut msg = b"ERR wrong number of arguments for '".to_vec();
    msg.extend(printable(name).map(|b| b.to_ascii_lowercase()));
    msg.extend_from_slice(b"' command");
    write_error(out, &msg);
}

/// The bytes of a name as they may appear in an error line: no `\r` or `\n` (they would end
/// the line early), at most 128 of them.
fn printable(name: &[u8]) -> impl Iterator<Item = u8> + '_ {
    name.iter()
        .take(128)
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
}
