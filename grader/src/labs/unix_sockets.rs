//! Checks of the unix-sockets lab: `uds-bus`, `fd-server` and `fd-client` as real
//! processes, with socket files in the check's scratch folder.
//!
//! The grader plays most clients itself (UNIX stream sockets in threads), so that each
//! check judges the student's server. Three facts make the hard cases deterministic rather
//! than likely:
//!
//! - the bus logs `client PID (uid UID) joined` for every client it admits: a check waits
//!   for that line before anyone sends, so no client misses a line by arriving late;
//! - whether the bus has read what a client wrote is `ioctl(SIOCOUTQ)` on the client's
//!   socket (bytes not yet read by the peer): `many_clients` lets every client send the
//!   start of a line and waits until the bus has read them all before any line is
//!   finished, so a bus that forwards raw reads mixes the pieces every time;
//! - a client of another uid is a thread of the grader that dropped to uid 65534 with the
//!   raw system calls (the kernel keeps credentials per thread) and then connected: the
//!   bus's SO_PEERCRED sees 65534.
//!
//! - `many_clients` keeps each sender at most one line ahead of every client reading it, so
//!   no client's socket fills there and no outbox is needed: whether a reader falls behind
//!   is not left to the scheduler;
//! - a client whose outbox must hold lines is made so by the check itself: it stops
//!   reading, the bus is stopped (SIGSTOP) while it reads a little and a new line comes, so
//!   the order the bus keeps does not depend on when it runs.
//!
//! The one timed wait is the idle-CPU measurement: idleness has no event to wait for.
//!
//! # Layout
//!
//! - this file: the `CHECKS` table and the constants the scenarios share;
//! - `traffic`: `many_clients` and `slow_reader`;
//! - `backlog`: `catch_up` (a client that stops reading, then reads again);
//! - `resources`: `per_connection` (descriptors of clients that have gone);
//! - `identity`: `peer_credentials` and `fd_other_uid` (root);
//! - `files`: `socket_files`, `foreign_clients` (socat, Python) and `idle_cpu`;
//! - `harness`: starting the servers, the bus's log, the grader's clients, another uid.

use std::time::Duration;

use crate::check::Check;

mod backlog;
mod files;
mod harness;
mod identity;
mod resources;
mod traffic;

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "many_clients",
        run: traffic::many_clients,
    },
    Check {
        name: "slow_reader",
        run: traffic::slow_reader,
    },
    Check {
        name: "catch_up",
        run: backlog::catch_up,
    },
    Check {
        name: "per_connection",
        run: resources::per_connection,
    },
    Check {
        name: "peer_credentials",
        run: identity::peer_credentials,
    },
    Check {
        name: "socket_files",
        run: files::socket_files,
    },
    Check {
        name: "foreign_clients",
        run: files::foreign_clients,
    },
    Check {
        name: "fd_other_uid",
        run: identity::fd_other_uid,
    },
    Check {
        name: "idle_cpu",
        run: files::idle_cpu,
    },
];

/// How long a server may take to print `ready`, to log a client, to pass a line on.
const PROMPT: Duration = Duration::from_secs(5);
