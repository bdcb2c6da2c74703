//! Test support for the IPC labs, shared by every lab's tests and carried by every handout
//! (`testkit/` beside `src/`): what a test of processes and IPC objects needs beyond
//! assert_cmd and predicates.
//!
//! - Real deadlines: a program runs in its own process group; past the deadline the test
//!   fails with what each process waits for, and the whole group is killed and reaped.
//! - Hang reports from `/proc`: the kernel function each process sleeps in, the descriptor
//!   it blocks on and what that is (a pipe end, a FIFO, a queue), and which processes hold
//!   the other end.
//! - Leak checks: descriptors, children, zombies, threads and IPC objects before and after
//!   many calls of one function, and the modes of the objects a program creates.
//! - Idle CPU: the share of one CPU a process used while it had nothing to do.
//! - Readable failures: bytes as length plus hex of the first difference, text as a line
//!   diff, and errors that say what was expected instead of a bare `unwrap_err()`.
//!
//! # Layout
//!
//! | concept | file |
//! | --- | --- |
//! | processes, their state and their descriptors (`/proc`) | `src/procfs.rs` |
//! | a hang explained: who waits for whom | `src/hang.rs` |
//! | process groups with a deadline, calls with a deadline | `src/deadline.rs` |
//! | leaks across repeated calls | `src/leak.rs` |
//! | IPC objects and their modes | `src/ipc.rs` |
//! | idle CPU | `src/cpu.rs` |
//! | byte and text comparisons | `src/compare.rs` |
//! | expected errors and values, explained | `src/expect.rs` |
//!
//! # Example
//!
//! ```
//! use std::process::Command;
//! use std::time::Duration;
//!
//! let out = testkit::deadline::run(
//!     Command::new("tr").args(["a-z", "A-Z"]),
//!     "tr a-z A-Z",
//!     b"hello\n",
//!     Duration::from_secs(5),
//!     "tr must end once its input ends",
//! );
//! testkit::compare::assert_same_bytes("tr's output", b"HELLO\n", &out.stdout);
//!
//! testkit::leak::assert_no_leak(100, "pipe+close", "close both ends", |_| {
//!     drop(nix::unistd::pipe().unwrap());
//! });
//! ```

pub mod compare;
pub mod cpu;
pub mod deadline;
pub mod expect;
pub mod hang;
pub mod ipc;
pub mod leak;
pub mod net;
pub mod procfs;

pub use compare::{assert_same_bytes, assert_same_text};
pub use deadline::{Group, run, within};
pub use expect::{Expect, expect_err_kind};
pub use leak::{Snapshot, assert_no_leak};
