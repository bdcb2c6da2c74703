//! Part C: `kv-server` over real TCP: the listening line, frames cut anywhere, pipelining,
//! many clients at once, errors that close one connection only, SIGTERM, usage errors.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::{DEADLINE, KvServer, bulk, req};
use nix::sys::signal::Signal;
use rstest::rstest;

/// The first stdout line names the real port, and the server answers PING there.
#[test]
fn prints_its_port_and_answers_part_c() {
    let server = KvServer::start(&[]);
    let mut c = server.connect();
    c.send(&req(&[b"PING"]));
    c.expect("PING", b"+PONG\r\n");
}

/// A request cut at every byte boundary, the server having read the first piece before the
/// second is sent: the reply comes once, whole, after the last byte.
#[test]
fn split_frames_at_every_byte_part_c() {
    let server = KvServer::start(&[]);
    let mut c = server.connect();
    let frame = req(&[b"SET", b"split", b"a\r\nvalue"]);
    for k in 1..frame.len() {
        c.send_and_wait_read(&frame[..k]);
        c.send(&frame[k..]);
        c.expect(
            &format!(
                "SET sent as {k} bytes, then (once the server had read them) the other {}",
                frame.len() - k
            ),
            b"+OK\r\n",
        );
    }
    c.send(&req(&[b"GET", b"split"]));
    c.expect("GET split", &bulk(b"a\r\nvalue"));
}

/// 1000 requests in one write: 1000 replies, in order.
#[test]
fn pipelined_replies_come_in_order_part_c() {
    let server = KvServer::start(&[]);
    let mut c = server.connect();
    let mut batch = Vec::new();
    let mut want = Vec::new();
    for i in 0..500 {
        let (k, v) = (format!("key{i}"), format!("value{i}"));
        batch.extend(req(&[b"SET", k.as_bytes(), v.as_bytes()]));
        batch.extend(req(&[b"GET", k.as_bytes()]));
        want.extend_from_slice(b"+OK\r\n");
        want.extend(bulk(v.as_bytes()));
    }
    c.send(&batch);
    let got = c.read_n(want.len());
    testkit::assert_same_bytes("the replies to 1000 pipelined requests", &want, &got);
}

/// Inline commands, as typed into `nc`, work too, mixed with RESP arrays.
#[test]
fn inline_commands_work_part_c() {
    let server = KvServer::start(&[]);
    let mut c = server.connect();
    c.send(b"PING\r\nSET color blue\nGET color\r\n");
    c.expect(
        "PING, SET, GET sent inline",
        b"+PONG\r\n+OK\r\n$4\r\nblue\r\n",
    );
}

/// A client that sent half a request and went silent blocks nobody: 20 other clients,
/// all connected at once, are served while it waits.
#[test]
fn a_silent_client_blocks_nobody_part_c() {
    let server = KvServer::start(&[]);
    let mut silent = server.connect();
    silent.send(&req(&[b"SET", b"half", b"done"]));
    silent.expect("SET half done", b"+OK\r\n");
    silent.send_and_wait_read(b"*2\r\n$3\r\nGET\r\n$4\r\nhal");
    let mut others: Vec<_> = (0..20).map(|_| server.connect()).collect();
    for (i, c) in others.iter_mut().enumerate() {
        c.send(&req(&[
            b"SET",
            format!("k{i}").as_bytes(),
            format!("v{i}").as_bytes(),
        ]));
    }
    for (i, c) in others.iter_mut().enumerate().rev() {
        c.expect(
            &format!("SET from client {i} of 20, while another client was silent mid-request"),
            b"+OK\r\n",
        );
        c.send(&req(&[b"GET", format!("k{i}").as_bytes()]));
        c.expect("GET", &bulk(format!("v{i}").as_bytes()));
    }
    silent.send(b"f\r\n");
    silent.expect(
        "the silent client's GET half, completed at last",
        b"$4\r\ndone\r\n",
    );
}

/// A malformed request gets `-ERR ...` and that connection is closed; the server and the
/// other clients go on.
#[test]
fn a_malformed_request_closes_only_its_connection_part_c() {
    let server = KvServer::start(&[]);
    let mut other = server.connect();
    other.send(&req(&[b"SET", b"k", b"v"]));
    other.expect("SET", b"+OK\r\n");
    let mut bad = server.connect();
    bad.send(b"*1\r\n:12\r\n");
    let line = bad.read_line();
    assert!(
        line.starts_with(b"-ERR") && line.ends_with(b"\r\n"),
        "a malformed request (`*1\\r\\n:12\\r\\n`) must get `-ERR ...\\r\\n`, got {}",
        testkit::compare::show(&line)
    );
    assert!(
        bad.closed_by_server(),
        "after the error reply the server must close that connection"
    );
    other.send(&req(&[b"GET", b"k"]));
    other.expect("GET from another client after the error", b"$1\r\nv\r\n");
}

/// SIGTERM or SIGINT with nothing owed: every connection closed and exit 0, at once (the
/// 5 s of the drain are only for clients slow to take replies owed).
#[rstest]
#[case::sigterm(Signal::SIGTERM)]
#[case::sigint(Signal::SIGINT)]
fn a_signal_exits_0_at_once_part_c(#[case] signal: Signal) {
    let mut server = KvServer::start(&[]);
    let mut c = server.connect();
    c.send(&req(&[b"PING"]));
    c.expect("PING", b"+PONG\r\n");
    server.group.signal(signal);
    let sent = Instant::now();
    let status = server.group.wait_or_explain(
        DEADLINE + Duration::from_secs(5),
        &format!(
            "on {signal} the server stops accepting, answers what it received, closes its \
             connections and exits 0"
        ),
    );
    let took = sent.elapsed();
    assert!(
        status.success(),
        "kv-server ended with {status} after {signal} (expected exit 0); stderr: {}",
        server.stderr()
    );
    assert!(
        took < Duration::from_secs(2),
        "kv-server exited {} ms after {signal}, though it owed nothing: with no reply owed, \
         close each connection and exit at once (the 5 s are for clients slow to take their \
         replies)",
        took.as_millis()
    );
    assert!(
        c.closed_by_server(),
        "after {signal} the server must close its connections"
    );
}

/// Usage errors (an option or a value it cannot use): exit 2 with usage on stderr.
#[test]
fn usage_errors_exit_2_part_c() {
    for args in [
        &[][..],
        &["--port"][..],
        &["--port", "x"][..],
        &["--port", "0", "--bogus"][..],
        &["--port", "0", "--max-request"][..],
        &["--port", "0", "--max-request", "lots"][..],
    ] {
        let out = testkit::run(
            Command::cargo_bin("kv-server").unwrap().args(args),
            &format!("kv-server {}", args.join(" ")),
            b"",
            DEADLINE,
            "a usage error ends kv-server at once, before it listens: exit 2 with the usage on \
             stderr. A value it cannot read (a port, a --max-request that is not a positive \
             number of bytes) is a usage error, never a reason to serve with the default",
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "kv-server {}: expected exit 2 (usage), stderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.stderr.is_empty() && out.stdout.is_empty(),
            "kv-server {}: the usage goes on stderr, nothing on stdout; stdout {:?}, stderr {:?}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A port already taken: exit 1 with `kv-server: ...` on stderr.
#[test]
fn a_taken_port_exits_1_part_c() {
    let server = KvServer::start(&[]);
    let port = server.addr.port().to_string();
    let out = testkit::run(
        Command::cargo_bin("kv-server")
            .unwrap()
            .args(["--port", &port]),
        "kv-server on a taken port",
        b"",
        DEADLINE,
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kv-server --port {port} (taken): expected exit 1, stderr: {err}"
    );
    assert!(
        err.starts_with("kv-server: ") && err.lines().count() == 1,
        "expected one line `kv-server: <why>` on stderr, got {err:?}"
    );
}
