//! # Lab 7: a key-value server on TCP that real Redis clients can use
//!
//! You write `kv-server`, a small key-value store that speaks RESP2, the protocol of Redis,
//! over TCP on 127.0.0.1, and `KvClient`, a client library for it. Because the protocol is
//! Redis's, Debian's `redis-cli` and `redis-benchmark` talk to your server unchanged, and
//! the grader compares its speed with `redis-server` itself.
//!
//! - **Part A** ([`resp`]): parsing requests from a byte stream (a frame may be cut
//!   anywhere, many frames may come at once, a length may lie) and encoding replies.
//! - **Part B** ([`store`]): the commands PING, ECHO, GET, SET, DEL, EXISTS on a map.
//! - **Part C** ([`server`]): the server: many clients at once without one blocking
//!   another (epoll with nix, or a thread per connection), replies in order, a cap on the
//!   request size, SIGTERM that finishes what was already received.
//! - **Part D** ([`client`]): [`KvClient`]: connect, commands, and pipelines.
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b`, `part_c`, `part_d`.
//! README.md has the background, the exact contract and hints.
//!
//! # Layout
//!
//! | Concept                                                        | File                    |
//! |----------------------------------------------------------------|-------------------------|
//! | RESP frames: requests (arrays and inline), replies, their limits | `src/resp.rs`         |
//! | the commands and the map they act on                           | `src/store.rs`          |
//! | sockets, the event loop (or threads), back-pressure, SIGTERM   | `src/server.rs`         |
//! | the client library                                             | `src/client.rs`         |
//! | the program (given)                                            | `src/bin/kv-server.rs`  |

pub mod client;
pub mod resp;
pub mod server;
pub mod store;

pub use client::KvClient;
pub use resp::{Args, ProtocolError, Reply};
pub use server::{Config, Server};
pub use store::Store;
