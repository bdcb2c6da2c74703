//! Hidden tests: KvClient and Server::bind leak nothing over many calls, and the server
//! keeps no descriptor of a client that left.

mod common;

use std::time::{Duration, Instant};

use common::{KvServer, req};
use tcp_sockets::{Config, KvClient, Server};

/// A stand-in server on a thread, so that this test judges `KvClient` alone: it takes one
/// connection at a time, reads requests that are all `SET kNNNNN <20 bytes>` (so all of
/// the same length) and answers `+OK` to each whole one.
fn fake_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a stand-in server");
    let addr = listener.local_addr().unwrap();
    let one = req(&[b"SET", b"k00000", &[b'v'; 20]]).len();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (mut buf, mut got, mut answered) = (vec![0u8; 64 << 10], 0usize, 0usize);
            while let Ok(n @ 1..) = std::io::Read::read(&mut conn, &mut buf) {
                got += n;
                let replies = b"+OK\r\n".repeat(got / one - answered);
                answered = got / one;
                if std::io::Write::write_all(&mut conn, &replies).is_err() {
                    break;
                }
            }
        }
    });
    addr
}

/// 300 clients that connect, send a SET and (one in ten) a pipeline of 3000 SETs, big
/// enough to need a writer thread, and drop: no descriptor or thread is left.
#[test]
fn kv_client_leaks_nothing_part_d() {
    let addr = fake_server();
    let value = [b'v'; 20];
    let reqs: Vec<Vec<Vec<u8>>> = (0..3000)
        .map(|i| {
            vec![
                b"SET".to_vec(),
                format!("k{i:05}").into_bytes(),
                value.to_vec(),
            ]
        })
        .collect();
    testkit::assert_no_leak(
        300,
        "KvClient::connect + set + pipeline + drop",
        "a KvClient owns one socket, closed when it drops; join the writer thread of a \
         pipeline before returning",
        |i| {
            let mut c = KvClient::connect(addr).expect("connect");
            c.set_timeout(Some(common::DEADLINE)).expect("set_timeout");
            c.set(b"k00001", &value).expect("set");
            if i % 10 == 0 {
                assert_eq!(c.pipeline(&reqs).expect("pipeline").len(), reqs.len());
            }
        },
    );
}

/// 1000 rounds of Server::bind on port 0 and drop leave no socket open.
#[test]
fn server_bind_leaks_nothing_part_c() {
    let config = Config::from_args(&["--port".into(), "0".into()]).expect("--port 0");
    testkit::assert_no_leak(
        1000,
        "Server::bind + local_addr + drop",
        "the Server owns its listening socket",
        |_| {
            let s = Server::bind(&config).expect("bind");
            assert_ne!(s.local_addr().expect("local_addr").port(), 0);
        },
    );
}

/// 500 clients that connect, send a request and leave: the server's descriptors come back
/// to what they were.
#[test]
fn the_server_closes_what_clients_leave_part_c() {
    let server = KvServer::start(&[]);
    let pid = server.group.pid();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let mut c = server.connect();
    c.send(&req(&[b"PING"]));
    c.expect("PING", b"+PONG\r\n");
    drop(c);
    let before = fds();
    for i in 0..500 {
        let mut c = server.connect();
        if i % 2 == 0 {
            c.send(&req(&[b"PING"]));
            c.expect("PING", b"+PONG\r\n");
        } else {
            c.send(b"*2\r\n$3\r\nGET\r\n"); // half a request, then gone
        }
    }
    let end = Instant::now() + common::DEADLINE;
    while fds() > before + 5 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = fds();
    assert!(
        after <= before + 5,
        "after 500 clients connected and left, kv-server holds {} more descriptors: when read \
         returns 0 (the client closed), close the connection (half a request from a client that \
         left will never complete)",
        after - before
    );
}
