//! Bad input and clients that leave in every way: a malformed request after good ones in
//! the same read, command names that are not UTF-8, half a request and then EOF, a reset
//! while replies are owed, whole requests and then the client's FIN in one wake-up. Each is
//! answered or closed on its own; the server never ends, never loses what it accepted (replies
//! owed, keys stored), and keeps no descriptor of a client that has gone.
//!
//! After each client leaves, the check waits for the server's descriptors to come back to
//! what they were (a condition in /proc), then asks a client that stayed for a PING: a
//! failure is pinned on the client that just left.

use std::time::{Duration, Instant};

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::{ensure, fail};

use super::harness::{self, PROMPT, Raw, Server, expect, fd_count, fd_kinds, req};

/// What is said when the server has exited.
const NEVER_THE_SERVER: &str = "Bad input or a client that goes away must cost only that \
client's connection (an error reply, a closed socket), never the server: every other client \
and every key stored go with it";

/// `Some(how it ended)` when the server exits within 1 s. Called when a connection ended or
/// a reply was wrong: its sockets close while it exits, a moment before its status can be
/// read, so it is given that moment.
fn exited(server: &mut Server) -> Option<String> {
    server
        .proc
        .wait_until(Instant::now() + Duration::from_secs(1))
        .map(|_| harness::ending(server))
}

/// A reply, for messages.
fn shown(got: &[u8]) -> String {
    if got.is_empty() {
        "nothing (the connection ended or nothing came)".into()
    } else {
        testkit::compare::show(got)
    }
}

/// After `who` left: its descriptor is released (within 5 s) and the server still answers
/// `keeper`.
fn gone(server: &mut Server, keeper: &mut Raw, base: usize, who: &str) -> CheckResult {
    let pid = server.proc.pid;
    let released = poll_until(Instant::now() + PROMPT, || fd_count(pid) <= base);
    keeper.send(&req(&[b"PING"])).ok();
    let got = keeper.read_n(7);
    if got != b"+PONG\r\n" {
        if let Some(end) = exited(server) {
            fail!("{end} after {who}. {NEVER_THE_SERVER}");
        }
        fail!(
            "after {who}, a PING from another client got {} instead of +PONG",
            shown(&got)
        );
    }
    if !released {
        let extra = fd_count(pid).saturating_sub(base);
        fail!(
            "after {who}, kv-server still held {extra} more descriptor{} {} s later than before \
             that client came (it has {}). When a client has gone (read returns 0, a read or a \
             write fails), or has hung up after an error reply, close its socket: removing it \
             from epoll is not enough",
            if extra == 1 { "" } else { "s" },
            PROMPT.as_secs(),
            fd_kinds(pid)
        );
    }
    Ok(())
}

pub(in crate::labs) fn bad_clients(ctx: &mut Ctx) -> CheckResult {
    let mut server = harness::start(ctx, &[])?;
    let tag = format!("kept-{}", ctx.next_u64() % 1_000_000);
    let mut keeper = Raw::connect(server.addr)?;
    keeper.send(&req(&[b"SET", b"bad:keep", tag.as_bytes()]))?;
    expect(&mut keeper, "SET bad:keep", b"+OK\r\n")?;
    harness::pipelining_works(&mut keeper, "bad input")?;
    let base = fd_count(server.proc.pid);

    // 1. Two good requests and a malformed one in one write (one read of the server's).
    let mut mixed = Raw::connect(server.addr)?;
    let mut bytes = req(&[b"SET", b"bad:a", b"1"]);
    bytes.extend(req(&[b"GET", b"bad:a"]));
    bytes.extend_from_slice(b"*1\r\n:12\r\n");
    mixed.send(&bytes)?;
    let good = b"+OK\r\n$1\r\n1\r\n";
    let started = Instant::now();
    let got = mixed.read_n(good.len());
    if got != good {
        if got.is_empty()
            && let Some(end) = exited(&mut server)
        {
            fail!("{end} after a malformed request. {NEVER_THE_SERVER}");
        }
        fail!(
            "one write held `SET bad:a 1`, `GET bad:a` and then a malformed request \
             (`*1\\r\\n:12\\r\\n`): expected `+OK`, `$1 1` and then `-ERR ...`, got {} first{}{}",
            harness::shown_after(&got, started),
            if got.is_empty() {
                format!("; {}", harness::doing(server.proc.pid))
            } else {
                String::new()
            },
            if got.starts_with(b"-ERR") {
                ". The replies to the two good requests were lost: they were accepted before \
                 the bad bytes came, so send them (append the error reply after them in the \
                 output, do not replace what is there) and close only once all are out"
            } else {
                ""
            }
        );
    }
    let line = mixed.read_line();
    ensure!(
        line.starts_with(b"-ERR") && line.ends_with(b"\r\n"),
        "after the replies to `SET bad:a 1` and `GET bad:a`, the malformed request in the same \
         write (`*1\\r\\n:12\\r\\n`) got {} instead of `-ERR ...`",
        shown(&line)
    );
    ensure!(
        mixed.closed_by_server(),
        "after the `-ERR` for a malformed request the server must close that connection (it \
         was still open {} s later)",
        PROMPT.as_secs()
    );
    drop(mixed);
    gone(
        &mut server,
        &mut keeper,
        base,
        "a client that got an error reply hung up",
    )?;

    // 2. Command names that are not UTF-8, as an array and inline: unknown commands.
    let mut binary = Raw::connect(server.addr)?;
    for (what, bytes) in [
        (
            "`*2 $2 \\xff\\xfe $1 k`",
            &b"*2\r\n$2\r\n\xff\xfe\r\n$1\r\nk\r\n"[..],
        ),
        ("the inline line `\\xc3( x`", &b"\xc3( x\r\n"[..]),
    ] {
        binary.send(bytes)?;
        let line = binary.read_line();
        if line.starts_with(b"-ERR unknown command") && line.ends_with(b"\r\n") {
            continue;
        }
        if let Some(end) = exited(&mut server) {
            fail!(
                "{end} after a request whose command name is not UTF-8 ({what}). Names are \
                 bytes: compare them as bytes. {NEVER_THE_SERVER}"
            );
        }
        fail!(
            "a request whose command name is not UTF-8 ({what}) must get `-ERR unknown command \
             '...'` (names are bytes: compare them as bytes), got {}",
            shown(&line)
        );
    }
    binary.send(&req(&[b"PING"]))?;
    expect(
        &mut binary,
        "PING on the same connection after two unknown commands (an unknown command is not a \
         protocol error: the connection stays open)",
        b"+PONG\r\n",
    )?;
    drop(binary);
    gone(
        &mut server,
        &mut keeper,
        base,
        "a client hung up after two unknown commands",
    )?;

    // 3. Half a request, then EOF.
    let mut half = Raw::connect(server.addr)?;
    half.send_and_wait_read(b"*2\r\n$3\r\nGET\r\n$5\r\nbad:")?;
    drop(half);
    gone(
        &mut server,
        &mut keeper,
        base,
        "a client hung up in the middle of a request",
    )?;

    // 4. A reset while 12.5 MiB of replies are owed: the server's next write fails.
    let mut reset = Raw::connect(server.addr)?;
    let value = vec![b'r'; 32 << 10];
    harness::prepare(&mut reset, b"bad:big", &value, "a client's reset")?;
    reset.send(&req(&[b"GET", b"bad:big"]).repeat(400))?;
    harness::await_received(&reset, "400 pipelined GETs of 32 KiB")?;
    // Closing with replies unread sends a reset (RST), not a FIN.
    drop(reset);
    gone(
        &mut server,
        &mut keeper,
        base,
        "a client reset its connection (closed it with replies unread) while kv-server had \
         12.5 MiB of replies to send it: a write that fails with EPIPE or ECONNRESET ends that \
         connection only",
    )?;

    // 5. Whole requests, then the end of the client's sending side (`shutdown(SHUT_WR)`, as
    //    `nc -q1` does), reaching the server in one wake-up: the server is stopped until
    //    both are in its socket (the FIN taken, CLOSE_WAIT, so every byte before it too), so
    //    it sees the requests and the EOF at once (EPOLLIN with EPOLLRDHUP). The replies are
    //    still owed: the client reads on. (Only the FIN is waited for, not the bytes in the
    //    receive queue: a process of the server that SIGSTOP did not reach may have read
    //    them, which makes the scenario weaker, never a false failure.)
    let mut halfway = Raw::connect(server.addr)?;
    let mut bytes = req(&[b"SET", b"bad:half", tag.as_bytes()]);
    bytes.extend(req(&[b"GET", b"bad:half"]));
    let me = halfway.stream.local_addr()?;
    server.proc.signal(nix::sys::signal::Signal::SIGSTOP);
    let queued = halfway.send(&bytes).and_then(|()| {
        halfway.stream.shutdown(std::net::Shutdown::Write)?;
        Ok(poll_until(Instant::now() + PROMPT, || {
            testkit::net::connection(server.addr, me).is_some_and(|s| s.state == "08")
        }))
    });
    server.proc.signal(nix::sys::signal::Signal::SIGCONT);
    if !queued? {
        fail!(
            "two requests and a client's FIN did not reach kv-server's socket within {} s \
             (the check's own setup: the half-closed client was not judged)",
            PROMPT.as_secs()
        );
    }
    let mut want = b"+OK\r\n".to_vec();
    want.extend(harness::bulk(tag.as_bytes()));
    let started = Instant::now();
    let got = halfway.read_n(want.len());
    if got != want {
        if got.is_empty()
            && let Some(end) = exited(&mut server)
        {
            fail!("{end} after a client shut its sending side. {NEVER_THE_SERVER}");
        }
        fail!(
            "a client sent `SET bad:half ...` and `GET bad:half`, then shut its sending side \
             (shutdown(SHUT_WR), as `nc -q1` does) and went on reading; the requests and the \
             end of its stream reached kv-server together. Expected `+OK` and the value, got \
             {}. The client's EOF ends its requests, not its replies: run every whole request \
             received before it and send the replies, then close (a read of 0 or EPOLLRDHUP is \
             no reason to drop what was received)",
            harness::shown_after(&got, started)
        );
    }
    ensure!(
        halfway.closed_by_server(),
        "a client sent two requests and shut its sending side; after their replies the server \
         must close that connection (its requests have ended), it was still open {} s later",
        PROMPT.as_secs()
    );
    drop(halfway);
    gone(
        &mut server,
        &mut keeper,
        base,
        "a client sent two requests, shut its sending side and read their replies",
    )?;

    // What was accepted before is still there.
    keeper.send(&req(&[b"GET", b"bad:keep"]))?;
    let want = harness::bulk(tag.as_bytes());
    let got = keeper.read_n(want.len());
    if got != want {
        return Err(Fail(format!(
            "after the bad clients, a GET of the key another client had set before them got \
             {} instead of {}: what a server accepted must survive bad input",
            shown(&got),
            testkit::compare::show(&want)
        )));
    }
    Ok(())
}
