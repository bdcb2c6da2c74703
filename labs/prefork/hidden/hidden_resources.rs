//! Hidden tests: the scoreboard and a served connection leak nothing.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};

use prefork::scoreboard::Scoreboard;

/// The lines of /proc/self/maps.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

/// 2000 scoreboards made and dropped leave no mapping behind.
#[test]
fn scoreboards_are_unmapped_part_b() {
    let _serial = testkit::leak::serial();
    let before = mappings();
    for _ in 0..2000 {
        let b = Scoreboard::new(8).expect("Scoreboard::new");
        b.start(0, 1);
        b.served(0);
    }
    let after = mappings();
    assert!(
        after < before + 50,
        "after 2000 scoreboards were made and dropped this process has {} more mappings: \
         munmap the scoreboard when it is dropped",
        after.saturating_sub(before)
    );
}

/// 300 connections served by serve_connection (keep-alive, then the client closes; a 64 MiB
/// file the client leaves after its head) leak no descriptor.
#[test]
fn serve_connection_closes_part_c() {
    let www = common::Www::new();
    // Sparse: larger than any socket buffer, so the client leaves while it is being sent.
    std::fs::File::create(www.root().join("huge.bin"))
        .and_then(|f| f.set_len(64 << 20))
        .unwrap();
    let root = www.root().canonicalize().unwrap();
    let board = Scoreboard::new(1).unwrap();
    board.start(0, std::process::id() as i32);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    testkit::assert_no_leak(
        300,
        "serve_connection",
        "drop (close) the connection and any file you opened on every path, the error paths \
         too (a client that leaves in the middle of a response makes the send fail)",
        |i| {
            let client = std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let req = match i % 3 {
                    0 => "GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    1 => "GET /4k.bin HTTP/1.1\r\nHost: x\r\n\r\n",
                    _ => "GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n",
                };
                c.write_all(req.as_bytes()).unwrap();
                match i % 3 {
                    1 => drop(common::read_response(&mut c, "GET /4k.bin", true)),
                    // The head only: the client leaves in the middle of the body.
                    2 => drop(common::read_response(&mut c, "GET /huge.bin", false)),
                    _ => {}
                }
                // Dropped: the client closes its end.
            });
            let (conn, _) = listener.accept().unwrap();
            let _ = prefork::worker::serve_connection(conn, &root, &board, 0);
            client.join().unwrap();
        },
    );
}

/// 500 listening sockets bound and dropped leak no descriptor.
#[test]
fn bind_closes_part_d() {
    testkit::assert_no_leak(
        500,
        "master::bind",
        "return the TcpListener itself; open nothing else",
        |_| {
            let l = prefork::master::bind(0).expect("master::bind(0)");
            assert!(l.local_addr().unwrap().ip().is_loopback(), "bind must use 127.0.0.1");
        },
    );
}
