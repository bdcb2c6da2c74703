//! Checks of the rpc lab: the student's `rpc-server` and `rpc-call` as real processes on
//! 127.0.0.1, talked to by clients nobody in this course wrote.
//!
//! - `jayson`: the npm package jayson's TCP client, run by the machine's node with the
//!   packages pinned by `grader/fixtures/npm/package-lock.json` (a missing node or package
//!   makes the item "not gradable here", never a 0);
//! - `python_client`: the same cases from Python's `json` and `socket`, with notifications
//!   and batches on one connection;
//! - `error_codes`: the grader itself sends malformed input, one case per line, and judges
//!   every error code and id, and that the server still holds what it held before;
//! - `framing`: lines however their bytes arrive: several in one read, one cut at forced read
//!   boundaries (inside multibyte characters too), the 64 KiB cap counted in bytes;
//! - `concurrent_sleep`: 100 connections with a `sleep` each at once (half of them with a
//!   `_client`, as RpcClient sends), and a `sleep(0)` meanwhile;
//! - `at_most_once`: the grader sits between `rpc-call` and the server as a proxy that loses
//!   the first reply of calls chosen by the seed (swallowed, or the connection cut), and the
//!   counter must end at exactly the number of calls; a repeat that comes while the first copy
//!   runs gets the first's reply;
//! - `server_limits`: a 24 MiB line costs no memory (VmHWM); 300 clients that come and go
//!   leave descriptors, threads and address space as they were; out of descriptors, the
//!   server waits and serves on;
//! - `signals`: SIGINT and SIGTERM, each sent: the server ends at once and frees its port,
//!   and a waiting `rpc-call` sees it at once; SIGTERM to an `rpc-call` mid-call costs the
//!   server nothing;
//! - `idle_cpu`: a server with a connected, silent client uses no CPU.
//!
//! A check that needs a call only to see that the server answers judges the reply by its id,
//! not its result, so that a wrong method costs the items that judge that method.
//!
//! # Layout
//!
//! - this file: the `CHECKS` table and the constants the scenarios share;
//! - `harness`: starting the server, a line connection, requests and replies, /proc readings;
//! - `peers`: `jayson` and `python_client` (their scripts are `jayson.js` and `client.py`);
//! - `errors`: `error_codes`;
//! - `framing`: `framing`;
//! - `load`: `concurrent_sleep` and `idle_cpu`;
//! - `faults`: `at_most_once` and its lossy proxy;
//! - `limits`: `server_limits`;
//! - `signals`: `signals`.

use std::time::Duration;

use crate::check::Check;

mod errors;
mod faults;
mod framing;
mod harness;
mod limits;
mod load;
mod peers;
mod signals;

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
        name: "framing",
        run: framing::framing,
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
        name: "server_limits",
        run: limits::server_limits,
    },
    Check {
        name: "signals",
        run: signals::signals,
    },
    Check {
        name: "idle_cpu",
        run: load::idle_cpu,
    },
];

/// How long the server may take to print its `listening on` line, and a reply to come when
/// nothing should delay it.
const PROMPT: Duration = Duration::from_secs(5);
