//! # Lab 4: message queues
//!
//! You write a message-passing library over the two kinds of kernel message queues, and a
//! job dispatcher on top of it:
//!
//! - **Part A** ([`mailbox`]): [`Mailbox`], a POSIX message queue (`mq_open`, `mq_send`,
//!   `mq_receive`, `mq_unlink`): messages with priorities, a fixed capacity, blocking,
//!   non-blocking ([`Mailbox::try_send`]) and timed ([`Mailbox::send_timeout`]) variants.
//! - **Part B** ([`typed`]): [`TypedQueue`], a System V message queue (`msgget`, `msgsnd`,
//!   `msgrcv`, `msgctl`): every message has a type, and a receiver picks by type.
//! - **Part C** ([`dispatch`](mod@dispatch)): the program `mq-dispatch --workers N`: it reads
//!   jobs from stdin, hands them to N forked workers through one queue, and prints the
//!   results that come back through another, with back-pressure, workers that die, and
//!   signals.
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b` and `part_c`.
//! README.md has the background, the exact contract and hints.
//!
//! # Layout
//!
//! | Concept                                                          | File                   |
//! |------------------------------------------------------------------|------------------------|
//! | queue names; `mq_open` (exclusive create, mode, attributes); priorities; full and empty queues; timeouts; `mq_unlink` | `src/mailbox.rs` |
//! | `ftok`, `msgget`, `msgsnd`, `msgrcv` with a type selector, `IPC_RMID`   | `src/typed.rs`         |
//! | `fork`ed workers, `poll` on queues, back-pressure, dead workers, signals | `src/dispatch.rs`      |
//! | the `mq-dispatch` program: arguments, exit status (given)        | `src/bin/mq-dispatch.rs` |

pub mod dispatch;
pub mod mailbox;
pub mod typed;

pub use dispatch::{Job, Outcome, dispatch, parse_args, parse_job, queue_names, reverse, worker};
pub use mailbox::{Mailbox, Message, check_name, unique_name};
pub use typed::{Select, TypedQueue, key_for};
