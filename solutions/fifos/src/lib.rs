//! # Lab 2: named pipes
//!
//! You write a sequence-number service: a server that hands out blocks of numbers, and a
//! client that asks for one. They talk through FIFOs (named pipes) in one directory:
//!
//! - every client writes its request, one line `<pid> <count>\n`, into the server's FIFO
//!   `DIR/seqnum.fifo`, with one `write` so that the requests of many clients never mix;
//! - the server answers on the client's own FIFO `DIR/client.<pid>.fifo` with `<start>\n`:
//!   the client now owns `start .. start + count`. Blocks never overlap or leave gaps.
//!
//! The lab has three parts:
//!
//! - **Part A** ([`protocol`]): the request and reply lines, and a [`protocol::Decoder`]
//!   that cuts the server's byte stream back into lines. Pure functions.
//! - **Part B** ([`server`]): creating (or recovering) the FIFO, serving until SIGINT or
//!   SIGTERM without burning CPU while idle, replying without ever blocking on a client.
//! - **Part C** ([`client`]): the reply FIFO, the request in one write, a reply within a
//!   timeout, no FIFO left behind.
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b` and `part_c`.
//! README.md has the background, the exact contract and hints.
//!
//! # Layout
//!
//! | Concept                                                        | File                     |
//! |----------------------------------------------------------------|--------------------------|
//! | the wire format; a byte stream cut into lines; bounded buffers | `src/protocol.rs`        |
//! | `mkfifo`, stale or live FIFO (`ENXIO`), `O_NONBLOCK` opens, EOF and the keep-alive write end, `signalfd` + `poll`, `EPIPE` | `src/server.rs` |
//! | atomic writes (`PIPE_BUF`), open order, `poll` with a timeout, removing your FIFO | `src/client.rs` |
//! | the programs `fifo-server` and `fifo-client` (given)           | `src/bin/`               |

pub mod client;
pub mod protocol;
pub mod server;
