//! # Lab 5: a ring buffer in POSIX shared memory
//!
//! You write the fastest IPC of the course: a single-producer, single-consumer ring buffer
//! in one shared memory object that two processes map, and two programs that stream bytes
//! through it.
//!
//! - **Part A** ([`ring`]): [`Ring`]: create the object (`shm_open` with `O_EXCL`, mode
//!   0600, `ftruncate`, `mmap`), open and validate it, `shm_unlink`; the [`Producer`] and
//!   [`Consumer`] halves copy bytes in and out with Acquire/Release on `head` and `tail`.
//! - **Part B** ([`futex`]): blocking without burning a CPU when the ring is empty or full
//!   (a bounded spin, then `futex` on a shared word), and noticing a peer that died.
//! - **Part C** ([`cli`]): the programs `ring-send NAME` (stdin into the ring) and
//!   `ring-recv NAME` (the ring to stdout): either may start first, the end of the stream
//!   reaches the receiver, and no object is left in /dev/shm.
//!
//! `src/bin/ring-bench.rs` is given: it measures your ring (`--throughput`, `--pingpong`).
//! `cargo test part_a` runs the tests of part A; likewise `part_b` and `part_c`.
//! README.md has the background, the exact contract and hints.
//!
//! # Layout
//!
//! | Concept                                                             | File                    |
//! |---------------------------------------------------------------------|-------------------------|
//! | the header and its cache lines; create, open, validate, unlink     | `src/ring.rs`           |
//! | the producer and consumer halves: `head`/`tail` with Acquire/Release, copies across the wrap, waiting | `src/half.rs` |
//! | `futex` wait and wake on a shared word; watching the peer's pid      | `src/futex.rs`          |
//! | who creates, who opens; when to unlink; signals; exit statuses       | `src/cli.rs`            |
//! | the programs                                                         | `src/bin/ring-send.rs`, `src/bin/ring-recv.rs` |
//! | the benchmark (given)                                                | `src/bin/ring-bench.rs` |

pub mod cli;
pub mod futex;
pub mod half;
pub mod ring;

pub use half::{Consumer, Producer};
pub use ring::{Result, Ring, RingError, check_name};
