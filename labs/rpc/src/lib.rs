//! # Lab 8: remote procedure calls
//!
//! You write both ends of a remote procedure call: a JSON-RPC 2.0 server over TCP on
//! 127.0.0.1 (one JSON text per line) and the client stub that makes a call on it look like
//! a local function call, even when the network drops a reply.
//!
//! - **Part A** ([`wire`]): marshalling. A line becomes a request, a batch or the standard
//!   error (-32700 parse error, -32600 invalid request); a reply becomes a line.
//! - **Part B** ([`service`], [`server`]): the methods `add`, `kv.put`, `kv.get`, `sleep`
//!   and `counter.incr` (-32601 method not found, -32602 invalid params), batches and
//!   notifications, and `rpc-server`: a thread per connection, so a `sleep` delays no other
//!   client, and a line over [`wire::MAX_LINE`] costs only its own reply.
//! - **Part C** ([`client`], [`cache`]): the stub [`RpcClient`]: a timeout per call, retries
//!   that reconnect and resend the *same* request id with the client's id, and the server's
//!   bounded reply cache that answers a retry from memory, so that a retried
//!   `counter.incr` runs at most once.
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b` and `part_c`.
//! README.md has the background, the exact contract and hints.
//!
//! # Layout
//!
//! | Concept                                                         | File                   |
//! |-----------------------------------------------------------------|------------------------|
//! | requests, replies, error objects; parsing and validating a line | `src/wire.rs`          |
//! | the methods and their parameters; notifications; the reply cache in use | `src/service.rs` |
//! | TCP: listening, a thread per connection, capped lines, batches  | `src/server.rs`        |
//! | the at-most-once reply cache and its bound                      | `src/cache.rs`         |
//! | the client stub: timeouts, retries with the same id, typed calls | `src/client.rs`       |
//! | the programs (given)                                            | `src/bin/rpc-server.rs`, `src/bin/rpc-call.rs` |

pub mod cache;
pub mod client;
pub mod server;
pub mod service;
pub mod wire;

pub use cache::ReplyCache;
pub use client::{ClientError, RpcClient};
pub use service::Service;
pub use wire::{ErrorObject, Params, Request, Response};
