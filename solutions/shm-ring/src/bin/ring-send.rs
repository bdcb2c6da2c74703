//! `ring-send [--capacity BYTES] NAME`: copies stdin into the ring NAME, then closes it.

use std::os::fd::AsFd;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use shm_ring::cli::{self, Args};
use shm_ring::futex::WAIT_SLICE;

fn main() {
    cli::main_with("ring-send", send)
}

fn send(args: &Args) -> Result<(), String> {
    let name = args.name.as_str();
    let (ring, created) = cli::create_or_open(name, args.capacity).map_err(|e| e.to_string())?;
    if created {
        cli::remove_on_signal(name);
    }
    let fail = |e: shm_ring::RingError| {
        cli::unlink_quietly(name);
        e.to_string()
    };
    let mut tx = ring.producer().map_err(|e| {
        if created {
            cli::unlink_quietly(name);
        }
        e.to_string()
    })?;
    let mut paired = false;
    let stdin = std::io::stdin();
    let mut buf = vec![0u8; 64 << 10];
    let mut last_check = Instant::now();
    loop {
        if !paired && tx.peer_attached() {
            // Both halves are mapped: the name has done its job.
            cli::unlink_quietly(name);
            paired = true;
        }
        // Wait for input at most a slice at a time, so that a receiver that dies while we
        // wait for stdin is noticed too.
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(WAIT_SLICE.as_millis() as u16)) {
            Ok(0) => {
                tx.check_peer().map_err(fail)?;
                continue;
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(fail_str(name, format!("poll on stdin: {e}"))),
        }
        let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(fail_str(name, format!("reading stdin: {e}"))),
        };
        if n == 0 {
            break;
        }
        tx.write_all(&buf[..n]).map_err(fail)?;
        // Input that trickles in never lets poll time out: check the receiver once a
        // slice anyway (a write with room to spare never looks at it).
        if last_check.elapsed() >= WAIT_SLICE {
            tx.check_peer().map_err(fail)?;
            last_check = Instant::now();
        }
    }
    if !paired && tx.peer_attached() {
        cli::unlink_quietly(name);
    }
    // The bytes stay in the ring after we exit; the receiver removes the name if it
    // attaches after us.
    tx.close();
    Ok(())
}

fn fail_str(name: &str, why: String) -> String {
    cli::unlink_quietly(name);
    why
}
