//! Bad input and clients that leave in every way: a malformed request after good ones in
//! the same read, command names that are not UTF-8, half a request and then EOF, a reset
//! while replies are owed. Each is answered or closed on its own; the server never ends,
//! never loses what it accepted (replies owed, keys stored), and keeps no descriptor of a
//! client that has gone.

use std::time::Instant;

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::{ensure, fail};

use super::harness::{self, PROMPT, Raw, Server, expect, fd_count, fd_kinds, req};

/// Fails with what became of the server if it is no longer running after `what`.
fn still_running(server: &mut Server, what: &str) -> CheckResult {
    if server.proc.try_ending().is_some() {
        fail!(
            "{} after {what}. Bad input or a client that goes away must cost only that \
             client's connection: an error reply or a closed socket, never the server (every \
             other client and every key stored go with it)",
            harness::ending(server)
        );
    }
    Ok(())
}

/// A reply line from `c`, for messages.
fn shown(line: &[u8]) -> String {
    if line.is_empty() {
        format!("nothing within {} s", PROMPT.as_secs())
    } else {
        testkit::compare::show(line)
    }
}

pub(in crate::labs) fn bad_clients(ctx: &mut Ctx) -> CheckResult {
    let mut server = harness::start(ctx, &[])?;
    let pid = server.proc.pid;
    let tag = format!("kept-{}", ctx.next_u64() % 1_000_000);
    let mut keeper = Raw::connect(server.addr)?;
    keeper.send(&req(&[b"SET", b"bad:keep", tag.as_bytes()]))?;
    expect(&mut keeper, "SET bad:keep", b"+OK\r\n")?;
    let base = fd_count(pid);

    // 1. Two good requests and a malformed one in one write (one read of the server's).
    let mut mixed = Raw::connect(server.addr)?;
    let mut bytes = req(&[b"SET", b"bad:a", b"1"]);
    bytes.extend(req(&[b"GET", b"bad:a"]));
    bytes.extend_from_slice(b"*1\r\n:12\r\n");
    mixed.send(&bytes)?;
    let good = b"+OK\r\n$1\r\n1\r\n";
    let got = mixed.read_n(good.len());
    still_running(&mut server, "a malformed request")?;
    if got != good {
        let error_first = got.starts_with(b"-ERR");
        fail!(
            "one write held `SET bad:a 1`, `GET bad:a` and then a malformed request \
             (`*1\\r\\n:12\\r\\n`): expected `+OK`, `$1 1` and then `-ERR ...`, got {} first{}",
            shown(&got),
            if error_first {
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
        still_running(
            &mut server,
            &format!("a request whose command name is not UTF-8 ({what})"),
        )?;
        ensure!(
            line.starts_with(b"-ERR unknown command") && line.ends_with(b"\r\n"),
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

    // 3. Half a request, then EOF.
    let mut half = Raw::connect(server.addr)?;
    half.send_and_wait_read(b"*2\r\n$3\r\nGET\r\n$5\r\nbad:")?;
    drop(half);

    // 4. A reset while 12.5 MiB of replies are owed: the server's next write fails.
    let mut reset = Raw::connect(server.addr)?;
    let value = vec![b'r'; 64 << 10];
    reset.send(&req(&[b"SET", b"bad:big", &value]))?;
    expect(&mut reset, "SET of 64 KiB", b"+OK\r\n")?;
    reset.send(&req(&[b"GET", b"bad:big"]).repeat(200))?;
    harness::await_received(&reset, "200 pipelined GETs of 64 KiB")?;
    // Closing with replies unread sends a reset (RST), not a FIN.
    drop(reset);

    // Every connection of those four clients closed, the server running.
    let settled = poll_until(Instant::now() + PROMPT, || fd_count(pid) <= base);
    still_running(
        &mut server,
        "a client reset its connection (closed it with replies unread) while kv-server had \
         12.5 MiB of replies to send it: a write that fails with EPIPE or ECONNRESET ends \
         that connection only",
    )?;
    if !settled {
        let extra = fd_count(pid).saturating_sub(base);
        fail!(
            "four clients left (one after an error reply, one after two unknown commands, one \
             in the middle of a request, one by a reset while replies were owed), and {} s \
             later kv-server still had {extra} descriptor{} more than before they came (it has \
             {}). When a client has gone (read returns 0, a read or a write fails) or has been \
             answered an error, close its socket: removing it from epoll is not enough",
            PROMPT.as_secs(),
            if extra == 1 { "" } else { "s" },
            fd_kinds(pid)
        );
    }

    // What was accepted before is still there.
    keeper.send(&req(&[b"GET", b"bad:keep"]))?;
    let want = harness::bulk(tag.as_bytes());
    let got = keeper.read_n(want.len());
    if got != want {
        still_running(&mut server, "the bad clients")?;
        return Err(Fail(format!(
            "after the bad clients, a GET of the key another client had set before them got \
             {} instead of {}: what a server accepted must survive bad input",
            shown(&got),
            testkit::compare::show(&want)
        )));
    }
    Ok(())
}
