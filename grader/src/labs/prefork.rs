//! Checks of the prefork lab: the student's `prefork-httpd` as a real server on a free
//! port of 127.0.0.1, driven by programs nobody here wrote (curl, wrk) and compared with
//! nginx serving the same files in the same run.
//!
//! The grader watches the master's workers in /proc (a worker replaced within 100 ms is a
//! new child of the master, seen by polling with a deadline), counts requests itself where
//! a count must be exact (the scoreboard's total), and reads wrk's own error counts where
//! a load must lose nothing.
//!
//! # Layout
//!
//! - this file: the `CHECKS` table;
//! - `harness`: the document root, starting the server, its workers, raw requests, wrk;
//! - `peers`: curl for status codes, headers, HEAD and traversal; keep-alive; parallel
//!   accepting; idle CPU;
//! - `load`: SIGKILL of workers under load (one at a time, and all at once), SIGHUP under
//!   load, the scoreboard's total;
//! - `stops`: SIGHUP while every worker holds a request, a request on its way to a worker
//!   that stops, SIGTERM while a client never finishes its request;
//! - `procs`: stopped processes, pending signals, which worker holds a connection, what the
//!   server has read;
//! - `perf`: the submission against nginx;
//! - `resources`: descriptors and memory per connection with clients that come and go in
//!   every way, and a server that cannot start (a fork refused) leaving nothing behind.

use crate::check::Check;

mod harness;
mod load;
mod peers;
mod perf;
mod procs;
mod resources;
mod stops;

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "curl_statuses",
        run: peers::curl_statuses,
    },
    Check {
        name: "keep_alive",
        run: peers::keep_alive,
    },
    Check {
        name: "workers_accept",
        run: peers::workers_accept,
    },
    Check {
        name: "idle_cpu",
        run: peers::idle_cpu,
    },
    Check {
        name: "kill_under_load",
        run: load::kill_under_load,
    },
    Check {
        name: "sighup_under_load",
        run: load::sighup_under_load,
    },
    Check {
        name: "scoreboard_totals",
        run: load::scoreboard_totals,
    },
    Check {
        name: "sigterm_under_load",
        run: stops::sigterm_under_load,
    },
    Check {
        name: "vs_nginx",
        run: perf::vs_nginx,
    },
    Check {
        name: "connections_come_and_go",
        run: resources::connections_come_and_go,
    },
    Check {
        name: "cannot_start",
        run: resources::cannot_start,
    },
];
