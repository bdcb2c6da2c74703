//! Hidden tests: edge cases of framing, of the bus's arguments and of descriptor passing.

mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use common::{Client, Server, at, socket_dir};
use testkit::Expect;
use unix_sockets::bus::Config;
use unix_sockets::frame::{Lines, MAX_LINE, Outbox};

/// A stream fed one byte at a time gives the same lines as in one piece.
#[test]
fn byte_by_byte_part_a() {
    let text = b"one\ntwo\n\nthree\n";
    let mut lines = Lines::new();
    let mut out = Vec::new();
    for b in text {
        lines.feed(&[*b], &mut out).expect_success("feed of one byte");
    }
    assert_eq!(String::from_utf8_lossy(&out), "one\ntwo\n\nthree\n");
}

/// A limit reached exactly, then one byte more: refused; an empty push is always fine.
#[test]
fn outbox_exact_limit_part_a() {
    let mut out = Outbox::new(4);
    out.push(b"abcd").expect_success("push of exactly the limit");
    out.push(b"").expect_success("push of nothing into a full outbox");
    out.push(b"e").expect_failure("push of one byte past the limit");
    assert_eq!(out.len(), 4);
}

/// A long line split just before and just after the limit.
#[test]
fn long_line_in_pieces_part_a() {
    let mut lines = Lines::new();
    let mut out = Vec::new();
    lines
        .feed(&vec![b'a'; MAX_LINE - 1], &mut out)
        .expect_success("4095 bytes without \\n");
    lines.feed(b"\n", &mut out).expect_success("then the \\n: 4096 bytes in all");
    assert_eq!(out.len(), MAX_LINE);
    lines
        .feed(&vec![b'b'; MAX_LINE - 1], &mut out)
        .expect_success("4095 bytes of the next line");
    lines
        .feed(b"b\n", &mut out)
        .expect_failure("then 2 more bytes: a 4097-byte line");
}

/// --allow may come before or after PATH and may repeat.
#[test]
fn config_forms_part_b() {
    let c = Config::parse(["--allow", "7", "bus.sock", "--allow", "8"]).expect_success("parse");
    assert_eq!(c.path, std::path::PathBuf::from("bus.sock"));
    let mut allow = c.allow.clone();
    allow.sort();
    assert_eq!(allow, [7, 8]);
    Config::parse(["bus.sock", "--allow", "-1"]).expect_failure("a negative uid");
    Config::parse(["bus.sock", "--verbose"]).expect_failure("an unknown option");
    Config::parse(Vec::<String>::new()).expect_failure("no PATH");
}

/// A client that leaves in the middle of a line: that piece is never delivered.
#[test]
fn partial_line_of_a_leaver_dropped_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    a.send(b"never finished");
    drop(a);
    bus.expect_log("left");
    let mut c = Client::join(&bus, &path);
    c.send(b"next\n");
    b.expect(
        "next\n",
        "a client left in the middle of a line; its piece must not be delivered",
    );
}

/// Many lines in one write and empty lines are relayed as they are.
#[test]
fn empty_and_batched_lines_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    a.send(b"\n\nx\n\n");
    for expected in ["\n", "\n", "x\n", "\n"] {
        b.expect(expected, "four lines (three empty) sent in one write");
    }
}

/// A server that accepts and never sends: fd-client gives up (exit 1) instead of hanging.
#[test]
fn silent_server_part_c() {
    let dir = socket_dir();
    let path = at(dir.path(), "silent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        // Holds the connection open without a byte until the client gives up.
        let mut buf = [0u8; 1];
        let _ = std::io::Read::read(&mut &s, &mut buf);
    });
    let (out, elapsed) = common::run("fd-client", &[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "fd-client against a silent server");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("fd-client: "),
        "stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elapsed >= Duration::from_secs(1), "gave up after only {elapsed:?}");
    // Not joined: a client that never connected would leave it waiting in accept; the
    // test's process ends it.
    drop(thread);
}

/// fd-client against a peer that closes at once: exit 1 with a message.
#[test]
fn closing_server_part_c() {
    let dir = socket_dir();
    let path = at(dir.path(), "closer.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ = s.flush();
    });
    let (out, _) = common::run("fd-client", &[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "fd-client against a peer that closes");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("fd-client: "));
    // Not joined: a client that never connected would leave it waiting in accept; the
    // test's process ends it.
    drop(thread);
}
