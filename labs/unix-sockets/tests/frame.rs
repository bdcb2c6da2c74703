//! Part A: `Lines` cuts a byte stream into whole lines and refuses one longer than 4096
//! bytes; `Outbox` queues at most its limit and writes without ever blocking.

use std::io::{self, Write};

use testkit::Expect;
use unix_sockets::frame::{Lines, MAX_LINE, Outbox};

/// Feeds `pieces` one after another; what came out.
#[track_caller]
fn feed_all(pieces: &[&[u8]]) -> Vec<u8> {
    let mut lines = Lines::new();
    let mut out = Vec::new();
    for p in pieces {
        lines
            .feed(p, &mut out)
            .expect_success(&format!("Lines::feed({:?})", String::from_utf8_lossy(p)));
    }
    out
}

/// A line split over several reads comes out once its `\n` arrives, and only then.
#[test]
fn partial_line_waits_for_newline_part_a() {
    let mut lines = Lines::new();
    let mut out = Vec::new();
    lines.feed(b"hel", &mut out).expect_success("feed(\"hel\")");
    assert_eq!(out, b"", "a line without its \\n must not come out yet");
    assert_eq!(lines.pending(), 3, "pending() after feeding \"hel\"");
    lines.feed(b"lo", &mut out).expect_success("feed(\"lo\")");
    assert_eq!(out, b"");
    lines.feed(b"\n", &mut out).expect_success("feed(\"\\n\")");
    assert_eq!(String::from_utf8_lossy(&out), "hello\n");
    assert_eq!(lines.pending(), 0);
}

/// Several lines in one read all come out, in order, and the tail waits.
#[test]
fn several_lines_in_one_read_part_a() {
    let out = feed_all(&[b"a\nbb\n\nccc\ndd"]);
    assert_eq!(String::from_utf8_lossy(&out), "a\nbb\n\nccc\n");
    let out = feed_all(&[b"x", b"y\nz", b"\n"]);
    assert_eq!(String::from_utf8_lossy(&out), "xy\nz\n");
}

/// A line of exactly 4096 bytes with its `\n` is fine, however it arrives.
#[test]
fn line_of_max_length_part_a() {
    let mut line = vec![b'x'; MAX_LINE - 1];
    line.push(b'\n');
    assert_eq!(feed_all(&[&line]), line, "one read");
    let (a, b) = line.split_at(1000);
    assert_eq!(feed_all(&[a, b]), line, "two reads");
}

/// A line of 4097 bytes is refused, and so are 4096 bytes with no `\n` yet.
#[test]
fn over_long_line_refused_part_a() {
    let mut line = vec![b'x'; MAX_LINE];
    line.push(b'\n');
    let mut out = Vec::new();
    Lines::new()
        .feed(&line, &mut out)
        .expect_failure("feed of a 4097-byte line (4096 bytes and \\n)");
    let mut lines = Lines::new();
    let mut out = Vec::new();
    lines
        .feed(&vec![b'y'; 3000], &mut out)
        .expect_success("feed of 3000 bytes without \\n");
    lines
        .feed(&vec![b'y'; 1096], &mut out)
        .expect_failure("4096 bytes without \\n: no line may become that long");
}

/// The whole lines before an over-long one still come out.
#[test]
fn lines_before_the_long_one_come_out_part_a() {
    let mut bytes = b"ok\n".to_vec();
    bytes.extend(vec![b'z'; MAX_LINE + 10]);
    let mut out = Vec::new();
    Lines::new()
        .feed(&bytes, &mut out)
        .expect_failure("feed of a short line then an over-long one");
    assert_eq!(String::from_utf8_lossy(&out), "ok\n");
}

/// A writer that takes `room` bytes, then would block.
struct Tight {
    taken: Vec<u8>,
    room: usize,
}

impl Write for Tight {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room).min(5);
        self.taken.extend_from_slice(&buf[..n]);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// push is all or nothing against the limit.
#[test]
fn outbox_is_bounded_part_a() {
    let mut out = Outbox::new(10);
    out.push(b"0123456\n")
        .expect_success("push of 8 bytes into 10");
    let err = out
        .push(b"abc\n")
        .expect_failure("push of 4 more bytes into 10 (push is all or nothing: it refuses what would go past the limit)");
    assert_eq!(out.len(), 8, "a refused push must queue nothing ({err})");
    out.push(b"a\n")
        .expect_success("push of 2 more bytes: exactly 10");
    assert_eq!(out.len(), 10);
}

/// flush writes what the writer takes, stops without error when it would block, keeps the
/// rest in order, and goes on from there later.
#[test]
fn outbox_flush_never_blocks_part_a() {
    let mut out = Outbox::new(1000);
    out.push(b"first line\n").unwrap();
    out.push(b"second line\n").unwrap();
    let mut w = Tight {
        taken: Vec::new(),
        room: 13,
    };
    let n = out
        .flush(&mut w)
        .expect_success("flush into a writer that takes 13 bytes and then would block");
    assert_eq!(n, 13, "bytes written");
    assert_eq!(out.len(), 23 - 13, "bytes still queued");
    assert!(!out.is_empty());
    w.room = 100;
    out.flush(&mut w).expect_success("the second flush");
    assert!(out.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&w.taken),
        "first line\nsecond line\n"
    );
}

/// A writer that fails (the client has gone).
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A failing write is an error of flush (not a loop, not a panic).
#[test]
fn outbox_flush_reports_errors_part_a() {
    let mut out = Outbox::new(100);
    out.push(b"x\n").unwrap();
    let err = out
        .flush(&mut Broken)
        .expect_failure("flush into a broken pipe");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}
