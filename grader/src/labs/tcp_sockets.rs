//! Checks of the tcp-sockets lab: `kv-server` driven by real clients nobody here wrote
//! (Debian's `redis-cli` and `redis-benchmark`, a Python client speaking raw RESP), by the
//! grader's own raw connections (200 at once, a silent one, a 1 GiB announcement, SIGTERM
//! with replies owed, back-pressure, bad input and clients that leave), idle CPU, and its
//! throughput against `redis-server` itself, measured
//! in the same run.
//!
//! Where a split must really reach the server as two reads, the sender waits until the
//! kernel's receive queue of the server's end is empty (`/proc/net/tcp`) before it sends
//! the rest: a condition, not a sleep. The one timed wait is the idle-CPU window.
//!
//! # Layout
//!
//! - this file: the `CHECKS` table;
//! - `harness`: starting `kv-server`, raw connections, the socket table;
//! - `peers`: `redis-cli`, `redis-benchmark`, the Python client (`raw_resp.py`);
//! - `clients`: many clients, a stalled one, lying lengths, idle CPU;
//! - `signals`: SIGTERM and SIGINT with replies owed, with nothing owed, with a client that
//!   never reads;
//! - `pressure`: back-pressure, bounded and resumed;
//! - `leaving`: bad input and clients that leave in every way;
//! - `perf`: throughput against `redis-server`.

use crate::check::Check;

mod clients;
mod harness;
mod leaving;
mod peers;
mod perf;
mod pressure;
mod signals;

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "redis_cli",
        run: peers::redis_cli,
    },
    Check {
        name: "redis_benchmark",
        run: peers::redis_benchmark,
    },
    Check {
        name: "raw_python",
        run: peers::raw_python,
    },
    Check {
        name: "many_clients",
        run: clients::many_clients,
    },
    Check {
        name: "stalled_clients",
        run: clients::stalled_clients,
    },
    Check {
        name: "lying_lengths",
        run: clients::lying_lengths,
    },
    Check {
        name: "sigterm_in_flight",
        run: signals::sigterm_in_flight,
    },
    Check {
        name: "signals",
        run: signals::signals,
    },
    Check {
        name: "backpressure",
        run: pressure::backpressure,
    },
    Check {
        name: "bad_clients",
        run: leaving::bad_clients,
    },
    Check {
        name: "idle_cpu",
        run: clients::idle_cpu,
    },
    Check {
        name: "throughput",
        run: perf::throughput,
    },
];
