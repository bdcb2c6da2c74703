//! Hidden tests: binary values over TCP, lengths that lie, the size cap, SIGTERM with
//! replies still owed, and no new connection after SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, KvServer, bulk, pattern, req};

/// The server's virtual memory size in KiB.
fn vm_size(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Values with `\r\n`, `$` lines and zero bytes inside, and a 1 MiB random one, come back
/// byte for byte.
#[test]
fn binary_values_round_trip_part_c() {
    let server = KvServer::start(&[]);
    let mut c = server.connect();
    let tricky = b"$3\r\nfoo\r\n*1\r\n\0\r\n\r\n-ERR\r\n".to_vec();
    let big = pattern(0x5EED, 1 << 20);
    for (k, v) in [(&b"tricky"[..], &tricky), (b"big", &big)] {
        c.send(&req(&[b"SET", k, v]));
        c.expect("SET of a binary value", b"+OK\r\n");
        c.send(&req(&[b"GET", k]));
        let want = bulk(v);
        let got = c.read_n(want.len());
        testkit::assert_same_bytes(
            &format!(
                "GET of a {}-byte binary value (take a bulk string by its length)",
                v.len()
            ),
            &want,
            &got,
        );
    }
}

/// `*0` and `*-1` are skipped without a reply.
#[test]
fn empty_arrays_are_skipped_part_c() {
    let server = KvServer::start(&[]);
    let mut c = server.connect();
    c.send(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
    c.expect("`*0`, `*-1`, then PING", b"+PONG\r\n");
}

/// A bulk of 1 GiB announced: `-ERR` at once and the connection closed, with no gigabyte
/// reserved; another client goes on.
#[test]
fn a_gigabyte_announced_is_refused_at_once_part_c() {
    let server = KvServer::start(&[]);
    let pid = server.group.pid();
    let before = vm_size(pid);
    let mut c = server.connect();
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\nxxxx");
    let line = c.read_line();
    let grew = vm_size(pid).saturating_sub(before);
    assert!(
        line.starts_with(b"-ERR"),
        "a bulk of 1 GiB announced (over the cap): expected `-ERR ...` at once, got {} (the \
         server's memory grew by {} MiB): check the length against the cap before waiting \
         for the bytes, and never reserve what a client announces",
        testkit::compare::show(&line),
        grew >> 10
    );
    assert!(
        grew < 256 << 10,
        "the server's memory grew by {} MiB after a 1 GiB announcement",
        grew >> 10
    );
    assert!(
        c.closed_by_server(),
        "after the error the connection must be closed"
    );
    let mut other = server.connect();
    other.send(&req(&[b"PING"]));
    other.expect("PING from another client", b"+PONG\r\n");
}

/// `--max-request 1000`: a request of 2000 bytes is refused, one of 900 is served.
#[test]
fn the_size_cap_is_configurable_part_c() {
    let server = KvServer::start(&["--max-request", "1000"]);
    let mut ok = server.connect();
    ok.send(&req(&[b"SET", b"k", &[b'v'; 850]]));
    ok.expect("a SET of 872 bytes under --max-request 1000", b"+OK\r\n");
    let mut big = server.connect();
    big.send(&req(&[b"SET", b"k", &[b'v'; 2000]]));
    let line = big.read_line();
    assert!(
        line.starts_with(b"-ERR"),
        "a SET of 2022 bytes under --max-request 1000: expected -ERR, got {}",
        testkit::compare::show(&line)
    );
    assert!(
        big.closed_by_server(),
        "after the error the connection must be closed"
    );
    // The cap is on the whole request: five arguments of at most 300 bytes, 1.2 KB in all.
    let mut many = server.connect();
    many.send(&req(&[
        b"EXISTS",
        &[b'a'; 300],
        &[b'b'; 300],
        &[b'c'; 300],
        &[b'd'; 300],
    ]));
    let line = many.read_line();
    assert!(
        line.starts_with(b"-ERR"),
        "an EXISTS of 4 keys of 300 bytes (a request of 1248 bytes) under --max-request 1000: \
         expected -ERR (the cap counts the whole request, not each argument), got {}",
        testkit::compare::show(&line)
    );
}

/// SIGTERM while 24 MiB of replies are still owed to a client that has not read them, and
/// some of its requests still wait in the server's socket: every reply arrives, then EOF,
/// then exit 0. Meanwhile a new connection is refused.
#[test]
fn sigterm_answers_what_was_received_part_c() {
    let mut server = KvServer::start(&[]);
    // Letters only, in one write of one segment: this is about SIGTERM, not binary values.
    let value: Vec<u8> = pattern(7, 8 << 10).iter().map(|b| b'a' + b % 26).collect();
    let mut c = server.connect();
    c.send(&req(&[b"SET", b"sigterm:big", &value]));
    c.expect("SET sigterm:big", b"+OK\r\n");
    // 3000 GETs are 93 KB, more than one read of 64 KiB; that read's replies alone are more
    // than the sockets hold, so the server stops reading with requests still in its socket.
    let n = 3000;
    let gets: Vec<u8> = req(&[b"GET", b"sigterm:big"]).repeat(n);
    c.send(&gets);
    // Every request has reached the server (nothing left unacknowledged on our side), and
    // it has begun answering.
    let me = c.stream.local_addr().unwrap();
    let end = Instant::now() + DEADLINE;
    while !matches!(common::queues(me, server.addr), Some((0, rx)) if rx > 0) {
        assert!(
            Instant::now() < end,
            "kv-server did not start replying to {n} pipelined GETs within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let unread = common::queues(server.addr, me).map_or(0, |(_, rx)| rx);
    server.group.signal(nix::sys::signal::Signal::SIGTERM);
    // No new client once SIGTERM has arrived (the listener is closed): tried while the
    // replies are still owed (once they are sent the server exits and its port closes
    // anyway), for at most 2 s of the 5 s the server gives slow readers.
    let refused = {
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            // (with a timeout: a full backlog makes connect wait)
            match std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break true,
                _ if Instant::now() > end => break false,
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    };
    let want = bulk(&value);
    for i in 0..n {
        let got = c.read_n(want.len());
        assert!(
            got == want,
            "after SIGTERM, reply {} of {n} to GETs the server had already received: got {} of \
             {} bytes. When SIGTERM came, {unread} bytes of those requests were still in the \
             server's socket receive queue: they count as received. On SIGTERM, stop \
             accepting, but answer every request already received (read the sockets until \
             they have nothing more) and send the replies before closing",
            i + 1,
            got.len(),
            want.len()
        );
    }
    assert!(
        c.closed_by_server(),
        "after the last reply the connection must be closed"
    );
    let status = server.group.wait_or_explain(
        DEADLINE + Duration::from_secs(5),
        "the server must exit once the replies are sent",
    );
    assert!(
        status.success(),
        "kv-server ended with {status} after SIGTERM (expected 0)"
    );
    assert!(
        refused,
        "after SIGTERM kv-server still accepted new connections: close the listening socket first"
    );
}
