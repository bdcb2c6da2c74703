//! `ring-recv [--capacity BYTES] NAME`: copies the ring NAME to stdout until the end of the
//! stream.

use std::os::fd::AsFd;

use shm_ring::cli::{self, Args};

fn main() {
    cli::main_with("ring-recv", recv)
}

fn recv(args: &Args) -> Result<(), String> {
    let name = args.name.as_str();
    let (ring, created) = cli::create_or_open(name, args.capacity).map_err(|e| e.to_string())?;
    if created {
        cli::remove_on_signal(name);
    }
    let fail = |why: String| {
        cli::unlink_quietly(name);
        why
    };
    let mut rx = ring.consumer().map_err(|e| {
        if created {
            cli::unlink_quietly(name);
        }
        e.to_string()
    })?;
    let mut paired = rx.peer_attached();
    if paired {
        cli::unlink_quietly(name);
    }
    let stdout = std::io::stdout();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = rx.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if !paired && rx.peer_attached() {
            cli::unlink_quietly(name);
            paired = true;
        }
        if n == 0 {
            break;
        }
        let mut out = &buf[..n];
        while !out.is_empty() {
            match nix::unistd::write(stdout.as_fd(), out) {
                Ok(k) => out = &out[k..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(fail(format!("writing stdout: {e}"))),
            }
        }
    }
    if !paired {
        // A producer that closed before we looked: remove the name it left for us.
        cli::unlink_quietly(name);
    }
    rx.close();
    Ok(())
}
