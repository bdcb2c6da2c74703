//! Checks of the fifos lab: the student's `fifo-server` and `fifo-client` as real
//! processes, in a service directory under the check's scratch folder.
//!
//! Where a scenario needs the other side of the protocol, the grader plays it itself (a
//! reply FIFO it reads, a server FIFO it holds), so that each check judges one program.
//! Two kernel facts make the hard cases deterministic rather than likely:
//!
//! - a request split over two writes is caught by shrinking the server's FIFO to one page
//!   and filling it up to 8 bytes: a first piece of at most 8 bytes still goes in, the
//!   rest waits for room, and the grader finds the piece alone in the FIFO while the client
//!   is blocked. A single write of the whole line (at least 10 bytes) waits with nothing
//!   written (see [`one_write_probe`](requests::one_write_probe));
//! - a client that closes its reply FIFO between the server's open and its write (the only
//!   way to get EPIPE) is produced by stopping the server with ptrace right after the open
//!   (see [`trace`]).
//!
//! The one timed wait is the idle-CPU measurement: idleness has no event to wait for.
//!
//! # Layout
//!
//! - this file: the `CHECKS` table and the constants the scenarios share;
//! - `requests`: `many_clients` (with its one-write probe) and `shell_client`;
//! - `robustness`: `idle_cpu`, `vanished_client` and `bad_requests`;
//! - `lifecycle`: `sigterm_removes_fifo`, `kill_and_restart`, `second_server` and
//!   `no_leftovers`;
//! - `harness`: the service directory, starting the server, running a client, sending a
//!   request;
//! - `ends`: the FIFO ends the grader holds when it plays a client or a server;
//! - `state`: /proc readers and what a process is doing, for messages;
//! - `trace`: stopping the server with ptrace right after it opens a file.

use std::time::Duration;

use crate::check::Check;

mod ends;
mod harness;
mod lifecycle;
mod requests;
mod robustness;
mod state;
mod trace;

use lifecycle::{kill_and_restart, no_leftovers, second_server, sigterm_removes_fifo};
use requests::{many_clients, shell_client};
use robustness::{bad_requests, idle_cpu, vanished_client};

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "many_clients",
        run: many_clients,
    },
    Check {
        name: "shell_client",
        run: shell_client,
    },
    Check {
        name: "idle_cpu",
        run: idle_cpu,
    },
    Check {
        name: "vanished_client",
        run: vanished_client,
    },
    Check {
        name: "bad_requests",
        run: bad_requests,
    },
    Check {
        name: "sigterm_removes_fifo",
        run: sigterm_removes_fifo,
    },
    Check {
        name: "kill_and_restart",
        run: kill_and_restart,
    },
    Check {
        name: "second_server",
        run: second_server,
    },
    Check {
        name: "no_leftovers",
        run: no_leftovers,
    },
];

/// The server's FIFO in a service directory.
const SERVER_FIFO: &str = "seqnum.fifo";
/// How long a server may take to print `ready`, and a client to finish when it should.
const PROMPT: Duration = Duration::from_secs(5);
/// Pids the grader uses for the clients it plays itself: valid, and above any real pid.
const FAKE_PID: u32 = 2_000_000_000;
