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
    assert_eq!(
        allow,
        [7, 8],
        "the uids of `--allow 7 bus.sock --allow 8`: --allow may repeat (each adds a uid) and \
         come before or after PATH"
    );
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

/// `dir/` plus a name that makes the whole path exactly `len` bytes.
fn path_of_len(dir: &std::path::Path, len: usize) -> std::path::PathBuf {
    let used = dir.as_os_str().len() + 1;
    assert!(len > used, "the test's folder name is too long for a {len}-byte path");
    at(dir, &"p".repeat(len - used))
}

/// A path of exactly 108 bytes does not fit in sun_path (its NUL needs the 109th): exit 1
/// with `too long`; one of 107 bytes is bound.
#[test]
fn path_of_108_bytes_part_b() {
    let dir = socket_dir();
    let long = path_of_len(dir.path(), 108);
    let (out, _) = common::run("uds-bus", &[long.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && err.starts_with("uds-bus: ") && err.contains("too long"),
        "a PATH of exactly 108 bytes cannot be bound (sun_path holds 108 bytes with the final \
         NUL): uds-bus must exit 1 with `uds-bus: PATH: socket path too long ...`; it exited \
         {:?} with stderr {err:?}. Check the length with `>=`, not `>`",
        out.status.code()
    );
    let fits = path_of_len(dir.path(), 107);
    let bus = Server::try_start("uds-bus", &[fits.as_os_str()])
        .unwrap_or_else(|why| panic!("a PATH of 107 bytes fits in sun_path and must be bound: {why}"));
    drop(bus);
}

/// Whole lines sent in the same write as an over-long line still go out; then the sender is
/// dropped.
#[test]
fn lines_before_a_long_line_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    let mut bytes = b"first\nsecond\n".to_vec();
    bytes.extend(vec![b'x'; 5000]);
    bytes.push(b'\n');
    a.send(&bytes);
    let why = "A sent \"first\\n\", \"second\\n\" and a 5001-byte line in one write: the whole \
               lines before the long one were accepted and must still be delivered before A is \
               dropped";
    b.expect("first\n", why);
    b.expect("second\n", why);
    a.wait_closed()
        .unwrap_or_else(|e| panic!("the sender of a 5001-byte line must be dropped: {e}"));
}

/// Bytes that are not UTF-8, and a character cut between two reads, are relayed as they are:
/// a line is bytes, not text.
#[test]
fn bytes_not_text_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    // "caf" and the first byte of "é" (0xC3 0xA9); the bus reads them before the rest comes.
    a.send(b"caf\xc3");
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while unread(&a.stream) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "uds-bus did not read 4 bytes a client sent within {} s",
            common::DEADLINE.as_secs()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    a.send(b"\xa9 \xff\xfe\n");
    let sent: &[u8] = b"caf\xc3\xa9 \xff\xfe\n";
    let got = raw_line(&mut b.stream);
    assert!(
        got == sent,
        "A sent the bytes {sent:02x?} (\"café\", its \"é\" cut between two reads, then two bytes \
         that are not UTF-8); B received {got:02x?}. The bus relays bytes: never turn them \
         into a String (from_utf8_lossy replaces what is not UTF-8, from_utf8 fails on it)"
    );
    a.send(b"after\n");
    b.expect("after\n", "after relaying bytes that are not UTF-8, the bus goes on");
}

/// Bytes `stream` wrote that its peer has not read yet (SIOCOUTQ).
fn unread(stream: &std::os::unix::net::UnixStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (= SIOCOUTQ) writes one int.
    let r = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r == 0 { n as usize } else { 0 }
}

/// One line as bytes, read a byte at a time (nothing past its newline), within the deadline.
fn raw_line(stream: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
    use std::io::Read;
    stream.set_read_timeout(Some(common::DEADLINE)).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => panic!("the bus closed the connection after {line:02x?}"),
            Err(e) => panic!(
                "no whole line within {} s ({e}); received {line:02x?}",
                common::DEADLINE.as_secs()
            ),
        }
    }
    line
}
