//! `ring-send [--capacity BYTES] NAME`: copies stdin into the ring NAME, then closes it.

// The imports name the calls you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use shm_ring::cli::{self, Args};
use shm_ring::futex::WAIT_SLICE;

fn main() {
    cli::main_with("ring-send", send)
}

fn send(args: &Args) -> Result<(), String> {
    todo!(
        "part C: create or open, take the producer half, copy stdin in (poll stdin with WAIT_SLICE and check the peer once a WAIT_SLICE has passed, to notice a dead receiver), unlink once paired, close"
    )
}

fn fail_str(name: &str, why: String) -> String {
    cli::unlink_quietly(name);
    why
}
