//! What a server keeps per client once the client has gone: `per_connection`.
//!
//! Real clients connect and leave, many of them, and the server's descriptors
//! (`/proc/PID/fd`) are counted before and after: the bus with clients that join, talk and
//! leave (and, as root, clients of another uid that are denied), the fd server with clients
//! that take their descriptor and leave. A server that keeps a socket per client that has
//! gone runs out of descriptors after about a thousand clients.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use super::PROMPT;
use super::harness::{
    NOBODY, Peer, Shared, connect_as, me, server_state, start_bus, start_ready, wait_logged,
};
use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::{ensure, fail};

/// Clients of each server.
const CLIENTS: usize = 100;
/// Clients the bus denies (as root).
const DENIED: usize = 20;

/// The descriptors `pid` has open: their targets (`socket:[123]`, `/path`), `None` once it
/// is gone.
fn open_fds(pid: i32) -> Option<Vec<String>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        dir.flatten()
            .map(|e| {
                std::fs::read_link(e.path())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "?".into())
            })
            .collect(),
    )
}

/// The descriptors of `pid` whose target's name is `name` and that were opened for writing
/// (`flags` in /proc/PID/fdinfo/FD with O_WRONLY or O_RDWR), each as `fd N (flags)`.
fn writable_opens(pid: i32, name: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.file_name() == Some(name.as_ref()))
        })
        .filter_map(|e| {
            let fd = e.file_name().to_string_lossy().into_owned();
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())?;
            let mode = match flags & libc::O_ACCMODE as u32 {
                m if m == libc::O_WRONLY as u32 => "O_WRONLY",
                m if m == libc::O_RDWR as u32 => "O_RDWR",
                _ => return None,
            };
            Some(format!("fd {fd}, {mode}"))
        })
        .collect()
}

/// The kind of a descriptor's target: `socket`, `pipe`, `anon_inode:[signalfd]`, a path.
fn kind(target: &str) -> String {
    match target.split_once(":[") {
        Some((k, _)) if !target.starts_with('/') => k.to_owned(),
        _ => target.to_owned(),
    }
}

/// `extra` descriptors grouped by kind, most first: `100 x socket, 1 x pipe`.
fn grouped(targets: &[String]) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for t in targets {
        *kinds.entry(kind(t)).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    kinds
        .iter()
        .map(|(k, n)| format!("{n} x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until `pid` holds no more descriptors than `baseline`; `Err` with what it holds
/// beyond it otherwise.
fn back_to(pid: i32, baseline: &[String]) -> Result<(), Vec<String>> {
    let extra = || -> Vec<String> {
        let mut now = open_fds(pid).unwrap_or_default();
        for b in baseline {
            if let Some(i) = now.iter().position(|t| t == b) {
                now.swap_remove(i);
            }
        }
        now
    };
    if poll_until(Instant::now() + PROMPT, || {
        open_fds(pid).is_none_or(|n| n.len() <= baseline.len())
    }) {
        return Ok(());
    }
    Err(extra())
}

/// 100 bus clients (and 20 denied ones, as root) and 100 fd-server clients come and go:
/// neither server holds anything more afterwards, and fd-server closes each connection once
/// it has sent the descriptor.
pub(super) fn per_connection(ctx: &mut Ctx) -> CheckResult {
    let shared = Shared::new(ctx, "conns")?;
    let path = shared.dir.join("bus.sock");
    let mut bus = start_bus(ctx, &path, &[])?;
    let mut resident = Peer::connect(ctx, &path)?;
    wait_logged(&mut bus, me(), "joined", 1, "after a client connected")?;
    let baseline = open_fds(bus.pid).unwrap_or_default();
    for n in 0..CLIENTS {
        let mut c = Peer::connect(ctx, &path)?;
        wait_logged(
            &mut bus,
            me(),
            "joined",
            n + 2,
            "while clients came and went",
        )?;
        let hello = format!("client {n} says hello\n");
        c.send(hello.as_bytes())?;
        match resident.line(Instant::now() + PROMPT) {
            Ok(l) if l == hello.as_bytes() => {}
            other => fail!(
                "while clients came and went one after the other, client {n}'s line did not \
                 reach the client that stays ({other:?}); {}",
                server_state(&mut bus)
            ),
        }
        drop(c);
        wait_logged(&mut bus, me(), "left", n + 1, "while clients came and went")?;
    }
    let mut denied = 0;
    // Another uid needs root (also in a student's own grading as root: the same verdict).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        for _ in 0..DENIED {
            let c = connect_as(&path, NOBODY).map_err(|e| {
                Fail(format!(
                    "a client of uid 65534 could not connect to bus.sock ({e}): the socket file \
                     must be mode 0666, so that the bus itself decides who is admitted"
                ))
            })?;
            denied += 1;
            wait_logged(
                &mut bus,
                me(),
                "denied",
                denied,
                "while clients of uid 65534 were denied",
            )?;
            // The client leaves once it is denied; whether the bus closed its end is counted
            // below.
            drop(c);
        }
    }
    if let Err(extra) = back_to(bus.pid, &baseline) {
        fail!(
            "{CLIENTS} clients joined uds-bus, each sent a line and left{}; {} s later the bus \
             still held {} descriptor(s) more than before: {}. Close a client's socket when it \
             leaves, is dropped or is denied (drop the UnixStream: remove the client from your \
             list); a bus that keeps them runs out of descriptors",
            if denied > 0 {
                format!(", and {denied} clients of uid 65534 were denied")
            } else {
                String::new()
            },
            PROMPT.as_secs(),
            extra.len(),
            grouped(&extra)
        );
    }
    drop(resident);

    let file = shared.dir.join("served.txt");
    std::fs::write(&file, "served\n")?;
    let fd_path = shared.dir.join("fd.sock");
    let spec = ctx
        .bin("fd-server")
        .args([fd_path.as_os_str(), file.as_os_str()]);
    let server = start_ready(ctx, &spec, "fd-server fd.sock served.txt")?;
    let baseline = open_fds(server.pid).unwrap_or_default();
    // What every client receives is the server's open file, with the server's access: it
    // must be read-only (a server that has no descriptor of the file is judged elsewhere).
    let writable = writable_opens(server.pid, "served.txt");
    ensure!(
        writable.is_empty(),
        "`fd-server fd.sock served.txt` holds served.txt open for writing ({}): every client \
         it passes the descriptor to could then write the file. The contract says fd-server \
         opens FILE read-only (File::open, or O_RDONLY)",
        writable.join(", ")
    );
    for n in 0..CLIENTS {
        take_and_leave(&fd_path, n)?;
    }
    if let Err(extra) = back_to(server.pid, &baseline) {
        fail!(
            "{CLIENTS} clients connected to fd-server, each received its descriptor and left; \
             {} s later fd-server still held {} descriptor(s) more than before: {}. Once the \
             descriptor is sent, the server has nothing more to say: close the connection \
             (drop the UnixStream) at once. The descriptor is in the message already; it does \
             not need the sender's socket to stay open",
            PROMPT.as_secs(),
            extra.len(),
            grouped(&extra)
        );
    }
    // And the connection ends once the descriptor is sent.
    let mut conn = UnixStream::connect(&fd_path)?;
    conn.set_read_timeout(Some(PROMPT))?;
    let mut buf = [0u8; 16];
    let first = conn.read(&mut buf)?;
    match conn.read(&mut buf) {
        Ok(0) if first == 1 => Ok(()),
        Ok(0) => fail!("fd-server sent {first} byte(s) and closed; the message is one byte, `F`"),
        Ok(n) => fail!(
            "fd-server sent {} bytes; the message is one byte, `F`",
            first + n
        ),
        Err(_) => fail!(
            "fd-server sent its descriptor but did not close the connection within {} s: the \
             contract says it closes each connection once the descriptor is sent",
            PROMPT.as_secs()
        ),
    }
}

/// One client of fd-server: connects, reads its one byte (the descriptor with it is closed
/// by the kernel, since no room for it is given), and leaves.
fn take_and_leave(path: &Path, n: usize) -> CheckResult {
    let mut conn = UnixStream::connect(path).map_err(|e| {
        Fail(format!(
            "client {n} of fd-server could not connect ({e}) although {n} before it did"
        ))
    })?;
    conn.set_read_timeout(Some(PROMPT))?;
    let mut byte = [0u8; 1];
    match conn.read(&mut byte) {
        Ok(1) => Ok(()),
        Ok(_) => fail!("fd-server closed the connection of client {n} without sending `F`"),
        Err(e) => fail!(
            "client {n} of fd-server got nothing within {} s ({e})",
            PROMPT.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_grouped_by_kind() {
        let t: Vec<String> = ["socket:[1]", "socket:[2]", "pipe:[3]", "/tmp/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(grouped(&t), "2 x socket, 1 x /tmp/x, 1 x pipe");
    }
}
