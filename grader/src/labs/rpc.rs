//! Checks of the rpc lab: the student's `rpc-server` and `rpc-call` as real processes on
//! 127.0.0.1, talked to by clients nobody in this course wrote.
//!
//! - `jayson`: the npm package jayson's TCP client, run by the machine's node with the
//!   packages pinned by `grader/fixtures/npm/package-lock.json` (a missing node or package
//!   makes the item "not gradable here", never a 0);
//! - `python_client`: the same cases from Python's `json` and `socket`, with notifications
//!   and batches on one connection;
//! - `error_codes`: the grader itself sends malformed input, one case per line, and judges
//!   every error code and id;
//! - `concurrent_sleep`: 100 connections with a `sleep` each at once, and an `add` meanwhile;
//! - `at_most_once`: the grader sits between `rpc-call` and the server as a proxy that loses
//!   the first reply of calls chosen by the seed (swallowed, or the connection cut), and the
//!   counter must end at exactly the number of calls;
//! - `idle_cpu`: a server with a connected, silent client uses no CPU.
//!
//! # Layout
//!
//! - this file: the `CHECKS` table and the constants the scenarios share;
//! - `harness`: starting the server, a line connection, requests and replies;
//! - `peers`: `jayson` and `python_client` (their scripts are `jayson.js` and `client.py`);
//! - `errors`: `error_codes`;
//! - `load`: `concurrent_sleep` and `idle_cpu`;
//! - `faults`: `at_most_once` and its lossy proxy.

use std::time::Duration;

use crate::check::Check;

mod errors;
mod faults;
mod harness;
mod load;
mod peers;

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "jayson",
        run: peers::jayson,
    },
    Check {
        name: "python_client",
        run: peers::python_client,
    },
    Check {
        name: "error_codes",
        run: errors::error_codes,
    },
    Check {
        name: "concurrent_sleep",
        run: load::concurrent_sleep,
    },
    Check {
        name: "at_most_once",
        run: faults::at_most_once,
    },
    Check {
        name: "idle_cpu",
        run: load::idle_cpu,
    },
];

/// How long the server may take to print its `listening on` line, and a reply to come when
/// nothing should delay it.
const PROMPT: Duration = Duration::from_secs(5);
