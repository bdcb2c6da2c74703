//! `ring-recv [--capacity BYTES] NAME`: copies the ring NAME to stdout until the end of the
//! stream.

// The imports name the calls you will need. Delete this line once every `todo!` is gone:
#![allow(unused_imports, unused_variables, unused_mut, dead_code)]

use std::os::fd::AsFd;

use shm_ring::cli::{self, Args};

fn main() {
    cli::main_with("ring-recv", recv)
}

fn recv(args: &Args) -> Result<(), String> {
    todo!(
        "part C: create or open, take the consumer half, copy to stdout until read returns 0, unlink once paired"
    )
}
