//! Part B: `uds-bus PATH` relays every whole line to every other client in order, drops a
//! client that sends an over-long line, replaces a stale socket file, refuses a live one,
//! and removes its file on SIGTERM/SIGINT. The test plays the clients itself.

mod common;

use std::os::unix::fs::FileTypeExt;

use common::{Client, Server, at, listing, socket_dir, stale_socket};
use nix::sys::signal::Signal;
use rstest::rstest;

/// Once `ready` is printed, PATH is a socket file that every user may connect to.
#[test]
fn creates_socket_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let _bus = Server::bus(&path);
    let meta = std::fs::symlink_metadata(&path).expect("no socket file at PATH");
    assert!(meta.file_type().is_socket(), "PATH is not a socket file");
    let (_, mode) = testkit::ipc::file_mode(&path).unwrap();
    testkit::ipc::assert_mode("the bus's socket file", 0o666, mode);
}

/// A line goes to every other client, never back to its sender.
#[test]
fn relays_to_every_other_client_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    let mut c = Client::join(&bus, &path);
    a.send(b"hello from a\n");
    b.expect("hello from a\n", "client B, after A sent a line");
    c.expect("hello from a\n", "client C, after A sent a line");
    b.send(b"b here\n");
    a.expect(
        "b here\n",
        "client A, after B sent a line (a sender must not get its own line back)",
    );
    c.expect("b here\n", "client C, after B sent a line");
}

/// 2000 lines of one sender arrive at another client, all of them, in order.
#[test]
fn keeps_order_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    let mut all = Vec::new();
    for i in 0..2000 {
        all.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    let writer = std::thread::spawn(move || {
        a.send(&all);
        a
    });
    for i in 0..2000 {
        b.expect(
            &format!("line {i}\n"),
            "the receiver of 2000 numbered lines",
        );
    }
    writer.join().unwrap();
}

/// The first piece of a line is held until its `\n` arrives: a line that another client
/// completes meanwhile goes out alone, whole.
#[test]
fn partial_lines_wait_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut c = Client::join(&bus, &path);
    let mut d = Client::join(&bus, &path);
    a.send(b"hel");
    c.send(b"xyz\n");
    d.expect(
        "xyz\n",
        "A sent \"hel\" (no newline yet), then C sent \"xyz\\n\"; the bus must forward whole \
         lines only and keep A's piece until its newline",
    );
    a.send(b"lo\n");
    d.expect("hello\n", "A then finished its line with \"lo\\n\"");
}

/// A line longer than 4096 bytes drops its sender, with a log line; the others go on.
#[test]
fn over_long_line_drops_sender_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    let mut max = vec![b'm'; 4095];
    max.push(b'\n');
    a.send(&max);
    b.expect(
        &String::from_utf8_lossy(&max),
        "a line of 4096 bytes, its newline included, is allowed",
    );
    let mut long = vec![b'l'; 4096];
    long.push(b'\n');
    a.send(&long);
    a.wait_closed()
        .unwrap_or_else(|e| panic!("the sender of a 4097-byte line must be dropped: {e}"));
    bus.expect_log("dropped");
    let mut c = Client::join(&bus, &path);
    c.send(b"after\n");
    b.expect(
        "after\n",
        "after a sender was dropped for a long line, the bus goes on (and forwards nothing \
         of that line)",
    );
}

/// SIGTERM and SIGINT: every client is closed, the socket file removed, exit 0.
#[rstest]
#[case::sigterm(Signal::SIGTERM)]
#[case::sigint(Signal::SIGINT)]
fn signal_removes_socket_part_b(#[case] sig: Signal) {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let mut bus = Server::bus(&path);
    let mut a = Client::join(&bus, &path);
    bus.signal(sig);
    let status = bus
        .wait(common::DEADLINE)
        .unwrap_or_else(|| panic!("uds-bus did not exit within 5 s of {sig}"));
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(killer) = status.signal() {
            let killer = Signal::try_from(killer).map_or(killer.to_string(), |s| s.to_string());
            panic!(
                "uds-bus was killed by signal {killer} after {sig}: catch {sig} (a signalfd or \
                 a flag its loop checks), then close every client, unlink the socket file and \
                 exit 0"
            );
        }
    }
    assert_eq!(status.code(), Some(0), "exit status after {sig}");
    a.wait_closed()
        .unwrap_or_else(|e| panic!("a client's connection after {sig}: {e}"));
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "left behind after {sig}: the bus must unlink its socket file"
    );
}

/// A socket file nobody listens on (its server died) is replaced.
#[test]
fn replaces_stale_socket_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    stale_socket(&path);
    let bus = match Server::try_start("uds-bus", &[path.as_os_str()]) {
        Ok(b) => b,
        Err(why) => panic!(
            "with a stale socket file at PATH (nobody listens: connect gets ECONNREFUSED), \
             uds-bus must remove it and bind again: {why}"
        ),
    };
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    a.send(b"hi\n");
    b.expect("hi\n", "a bus that replaced a stale socket");
}

/// A second bus on a live socket exits 1 with the contract's message and leaves it alone.
#[test]
fn refuses_live_socket_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "bus.sock");
    let bus = Server::bus(&path);
    let (out, _) = common::run("uds-bus", &[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "status of the second uds-bus");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "uds-bus: {}: a server is already listening\n",
            path.display()
        ),
        "stderr of the second uds-bus"
    );
    let mut a = Client::join(&bus, &path);
    let mut b = Client::join(&bus, &path);
    a.send(b"still here\n");
    b.expect("still here\n", "the first bus must go on serving");
}

/// A path that does not fit in sun_path (108 bytes) is an error that says so.
#[test]
fn path_too_long_part_b() {
    let dir = socket_dir();
    let long = at(dir.path(), &"s".repeat(110));
    let (out, _) = common::run("uds-bus", &[long.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "status for a {}-byte path",
        long.as_os_str().len()
    );
    assert!(
        err.starts_with("uds-bus: ") && err.contains("too long"),
        "stderr for a {}-byte path must say `uds-bus: PATH: ... too long ...`: {err:?}",
        long.as_os_str().len()
    );
}

/// A regular file at PATH is left alone: exit 1.
#[test]
fn not_a_socket_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "notes.txt");
    std::fs::write(&path, "keep me\n").unwrap();
    if let Ok(bus) = Server::try_start("uds-bus", &[path.as_os_str()]) {
        drop(bus);
        panic!(
            "uds-bus printed `ready` with a regular file at PATH (connecting to it fails with \
             ECONNREFUSED too: look at what the path is before taking it for a stale socket); \
             it must exit 1 and never remove or change a file that is not a socket"
        );
    }
    let (out, _) = common::run("uds-bus", &[path.as_os_str()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "status with a regular file at PATH"
    );
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some("keep me\n"),
        "uds-bus must never remove or change a file that is not a socket"
    );
}

/// Usage errors exit with status 2.
#[rstest]
#[case::no_argument(&[])]
#[case::two_paths(&["a.sock", "b.sock"])]
#[case::allow_without_uid(&["a.sock", "--allow"])]
#[case::allow_not_a_number(&["a.sock", "--allow", "nobody"])]
fn usage_part_b(#[case] args: &[&str]) {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let (out, _) = common::run("uds-bus", &args);
    assert_eq!(out.status.code(), Some(2), "uds-bus {args:?}");
}
