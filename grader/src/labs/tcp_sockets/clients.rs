//! The grader's own clients: 200 at once, stalled ones, lengths that lie, and an idle
//! server.

use std::time::{Duration, Instant};

use crate::check::{CheckResult, Ctx, poll_until};
use crate::{ensure, fail};

use super::harness::{self, PROMPT, Raw, all_asleep, bulk, doing, expect, req, vm_size};

const ONE_BLOCKS_ALL: &str = "one client must never block the others: use non-blocking \
sockets with epoll (and never a blocking read or write in the loop), or a thread per connection";

/// 200 connections open at once, each sends a request before any reply is read; each gets
/// its own reply; then each reads another client's key.
pub(in crate::labs) fn many_clients(ctx: &mut Ctx) -> CheckResult {
    const N: usize = 200;
    let server = harness::start(ctx, &[])?;
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        match Raw::connect(server.addr) {
            Ok(c) => conns.push(c),
            Err(crate::check::Fail(why)) => fail!(
                "{N} clients connect and stay connected: client {i}: {why} (the listening \
                 socket's backlog was full: nobody accepted). {}. {ONE_BLOCKS_ALL}",
                doing(server.proc.pid)
            ),
        }
    }
    let tag = ctx.next_u64() % 1_000_000;
    let value = |i: usize| format!("client-{i}-{tag}");
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&req(&[
            b"SET",
            format!("many:{i}").as_bytes(),
            value(i).as_bytes(),
        ]))?;
    }
    for (i, c) in conns.iter_mut().enumerate().rev() {
        let got = c.read_n(5);
        ensure!(
            got == b"+OK\r\n",
            "{N} clients connected at once and each sent a SET before any reply was read; \
             client {i} got {} instead of +OK. {}. {ONE_BLOCKS_ALL}",
            if got.is_empty() {
                format!("nothing within {} s", PROMPT.as_secs())
            } else {
                testkit::compare::show(&got)
            },
            doing(server.proc.pid)
        );
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let j = (i * 7 + 3) % N;
        c.send(&req(&[b"GET", format!("many:{j}").as_bytes()]))?;
        expect(
            c,
            &format!("client {i} of {N}: GET of the key client {j} set"),
            &bulk(value(j).as_bytes()),
        )?;
    }
    Ok(())
}

/// A client that sent half a request and went silent, and one that sent 2000 GETs of a
/// 32 KiB value without reading a reply: 10 other clients are served meanwhile, and the
/// silent one is answered when it completes its request.
pub(in crate::labs) fn stalled_clients(ctx: &mut Ctx) -> CheckResult {
    let server = harness::start(ctx, &[])?;
    // The silent client's request, once whole, reads a key it set itself: a GET of a key
    // that exists, the simplest reply (this item judges blocking, not nil replies).
    let mut silent = Raw::connect(server.addr)?;
    silent.send(&req(&[b"SET", b"stalled", b"done"]))?;
    expect(&mut silent, "SET stalled done", b"+OK\r\n")?;
    silent.send_and_wait_read(b"*2\r\n$3\r\nGET\r\n$7\r\nstal")?;
    let value = ctx.random_bytes(32 << 10);
    let mut greedy = Raw::connect(server.addr)?;
    greedy.send(&req(&[b"SET", b"stalled:big", &value]))?;
    let got = greedy.read_n(5);
    if got != b"+OK\r\n" {
        fail!(
            "while another client was silent in the middle of a request, a second client's SET \
             of a 32 KiB value got {}",
            if got.is_empty() {
                format!(
                    "nothing within {} s; {}. {ONE_BLOCKS_ALL}",
                    PROMPT.as_secs(),
                    doing(server.proc.pid)
                )
            } else {
                format!("{} instead of +OK", testkit::compare::show(&got))
            }
        );
    }
    let gets: Vec<u8> = (0..2000)
        .flat_map(|_| req(&[b"GET", b"stalled:big"]))
        .collect();
    // 64 MiB of replies owed: the server cannot send them all while nobody reads.
    let mut writer = greedy.stream.try_clone()?;
    let _flood = std::thread::spawn(move || {
        use std::io::Write;
        let _ = writer.write_all(&gets);
    });
    let me = greedy.stream.local_addr()?;
    if !poll_until(Instant::now() + PROMPT, || {
        harness::rx_queue(me, server.addr).unwrap_or(0) > 0
    }) {
        fail!(
            "kv-server did not start answering 2000 pipelined GETs within {} s",
            PROMPT.as_secs()
        );
    }
    for i in 0..10 {
        let mut c = Raw::connect(server.addr)?;
        c.send(&req(&[b"PING"]))?;
        let got = c.read_n(7);
        ensure!(
            got == b"+PONG\r\n",
            "while one client was silent in the middle of a request and another had 2000 GETs \
             of 32 KiB unread, a new client {i}'s PING got {}. {}. {ONE_BLOCKS_ALL}; keep the \
             replies a socket did not take in that connection's buffer and stop reading its \
             requests until they are out",
            if got.is_empty() {
                format!("nothing within {} s", PROMPT.as_secs())
            } else {
                testkit::compare::show(&got)
            },
            doing(server.proc.pid)
        );
    }
    silent.send(b"led\r\n")?;
    expect(
        &mut silent,
        "the silent client's GET stalled, completed at last",
        b"$4\r\ndone\r\n",
    )?;
    Ok(())
}

/// A bulk of 1 GiB announced: `-ERR` at once, the connection closed, no gigabyte reserved;
/// a malformed request likewise; other clients go on.
pub(in crate::labs) fn lying_lengths(ctx: &mut Ctx) -> CheckResult {
    let server = harness::start(ctx, &[])?;
    let pid = server.proc.pid;
    let before = vm_size(pid);
    let mut liar = Raw::connect(server.addr)?;
    liar.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\nonly a few bytes follow")?;
    let line = liar.read_line();
    let grew = vm_size(pid).saturating_sub(before);
    ensure!(
        line.starts_with(b"-ERR") && line.ends_with(b"\r\n"),
        "a client announced a bulk string of 1 GiB (`$1073741824`, over the default cap) and \
         sent a few bytes: expected `-ERR ...` at once, got {} (kv-server's memory grew by {} \
         MiB meanwhile). Check an announced length against the cap when its header arrives, \
         before waiting for the bytes, and never reserve memory for what a client merely \
         announces",
        if line.is_empty() {
            format!("nothing within {} s", PROMPT.as_secs())
        } else {
            testkit::compare::show(&line)
        },
        grew >> 10
    );
    ensure!(
        grew < 256 << 10,
        "after a client announced a 1 GiB bulk string, kv-server's memory (VmSize) grew by {} \
         MiB: never reserve what a client merely announces",
        grew >> 10
    );
    ensure!(
        liar.closed_by_server(),
        "after the `-ERR` for a 1 GiB announcement the server must close that connection"
    );
    let mut bad = Raw::connect(server.addr)?;
    bad.send(b"*2\r\n$3\r\nGET\r\n:42\r\n")?;
    let line = bad.read_line();
    ensure!(
        line.starts_with(b"-ERR"),
        "a malformed request (`*2\\r\\n$3\\r\\nGET\\r\\n:42\\r\\n`: an integer where a bulk \
         string must be) got {} instead of `-ERR ...`",
        if line.is_empty() {
            "nothing".into()
        } else {
            testkit::compare::show(&line)
        }
    );
    ensure!(
        bad.closed_by_server(),
        "after the `-ERR` for a malformed request the server must close that connection"
    );
    let mut bystander = Raw::connect(server.addr)?;
    bystander.send(&req(&[b"PING"]))?;
    expect(
        &mut bystander,
        "another client's PING after both errors",
        b"+PONG\r\n",
    )?;
    ensure!(
        server.proc.pid > 0 && vm_size(pid) > 0,
        "kv-server exited after a client's error"
    );
    Ok(())
}

/// An idle server with 20 idle clients (one of them mid-request) uses under 2% of a CPU.
pub(in crate::labs) fn idle_cpu(ctx: &mut Ctx) -> CheckResult {
    let server = harness::start(ctx, &[])?;
    let mut conns = Vec::new();
    for i in 0..20 {
        let mut c = Raw::connect(server.addr)?;
        c.send(&req(&[b"PING"]))?;
        if i == 0 {
            expect(&mut c, "PING", b"+PONG\r\n")?;
            c.send_and_wait_read(b"*1\r\n$4\r\nPI")?;
        }
        // The others' replies are not awaited (the many-clients items judge those): then
        // the server has nothing to do.
        conns.push(c);
    }
    poll_until(Instant::now() + Duration::from_secs(1), || {
        all_asleep(server.proc.pid)
    });
    testkit::cpu::check_idle(
        &[server.proc.pid],
        Duration::from_secs(2),
        0.02,
        "Block in epoll_wait (or in read, one thread per client) with no timeout, or a long \
         one: never poll sockets in a loop",
    )
    .map_err(crate::check::Fail)
}
