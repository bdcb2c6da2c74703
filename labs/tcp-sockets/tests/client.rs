//! Part D: `KvClient` against `kv-server`.

mod common;

use std::io::ErrorKind;

use common::KvServer;
use tcp_sockets::{KvClient, Reply};

fn client(server: &KvServer) -> KvClient {
    let c = KvClient::connect(server.addr).expect("KvClient::connect to a running kv-server");
    c.set_timeout(Some(common::DEADLINE)).expect("set_timeout");
    c
}

/// ping, set, get, del, exists.
#[test]
fn commands_part_d() {
    let server = KvServer::start(&[]);
    let mut c = client(&server);
    c.ping().expect("ping");
    assert_eq!(c.get(b"k").expect("get"), None);
    c.set(b"k", b"a\r\nb").expect("set");
    assert_eq!(c.get(b"k").expect("get"), Some(b"a\r\nb".to_vec()));
    assert_eq!(c.exists(&[b"k", b"k", b"nope"]).expect("exists"), 2);
    assert_eq!(c.del(&[b"k", b"nope"]).expect("del"), 1);
    assert_eq!(c.get(b"k").expect("get"), None);
}

/// An error reply is `Reply::Error` from `command`, and an `Err` from the typed calls.
#[test]
fn error_replies_part_d() {
    let server = KvServer::start(&[]);
    let mut c = client(&server);
    assert_eq!(
        c.command(&["NOSUCH", "x"]).expect("command"),
        Reply::Error("ERR unknown command 'NOSUCH'".into())
    );
    // The connection is still usable.
    c.ping().expect("ping after an error reply");
}

/// A pipeline of 20000 requests (far more than the socket buffers hold): every reply, in
/// order, without a deadlock.
#[test]
fn a_big_pipeline_part_d() {
    let server = KvServer::start(&[]);
    let mut c = client(&server);
    let value = "v".repeat(100);
    let mut reqs: Vec<Vec<String>> = Vec::new();
    for i in 0..10000 {
        reqs.push(vec![
            "SET".into(),
            format!("key:{i}"),
            format!("{value}{i}"),
        ]);
        reqs.push(vec!["GET".into(), format!("key:{i}")]);
    }
    let replies = c.pipeline(&reqs).expect("a pipeline of 20000 requests");
    assert_eq!(replies.len(), 20000);
    for (i, pair) in replies.chunks(2).enumerate() {
        assert_eq!(pair[0], Reply::Simple("OK".into()), "reply to SET key:{i}");
        assert_eq!(
            pair[1],
            Reply::Bulk(format!("{value}{i}").into_bytes()),
            "reply to GET key:{i}"
        );
    }
}

/// A stand-in server on a thread, so that this test judges `KvClient` alone: for each
/// `(reply, k)` it reads one PING request, sends the first `k` bytes of `reply`, waits until
/// the client has read them (the receive queue of the client's end is empty), then sends
/// the rest. The replies reach the client in two reads, cut after byte `k`.
fn cutting_server(cuts: Vec<(Vec<u8>, usize)>) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a stand-in server");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut conn, client)) = listener.accept() else {
            return;
        };
        conn.set_nodelay(true).unwrap();
        let ping = b"*1\r\n$4\r\nPING\r\n";
        for (reply, k) in cuts {
            let mut got = [0u8; 14];
            if conn.read_exact(&mut got).is_err() || &got != ping {
                return;
            }
            if conn.write_all(&reply[..k]).is_err() {
                return;
            }
            let end = std::time::Instant::now() + common::DEADLINE;
            while common::rx_queue(client, addr).unwrap_or(0) != 0 {
                if std::time::Instant::now() > end {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            if conn.write_all(&reply[k..]).is_err() {
                return;
            }
        }
    });
    addr
}

/// Replies cut at every byte, the client having read the first piece before the rest is
/// sent: `command` returns each reply whole, as sent.
#[test]
fn replies_cut_at_every_byte_part_d() {
    let replies: Vec<(Vec<u8>, Reply)> = vec![
        (b"+PONG\r\n".to_vec(), Reply::Simple("PONG".into())),
        (
            b"$8\r\na\r\n$1\r\nb\r\n".to_vec(),
            Reply::Bulk(b"a\r\n$1\r\nb".to_vec()),
        ),
        (b"-ERR cut\r\n".to_vec(), Reply::Error("ERR cut".into())),
        (b":-42\r\n".to_vec(), Reply::Integer(-42)),
        (b"$-1\r\n".to_vec(), Reply::Nil),
    ];
    let mut cuts = Vec::new();
    for (wire, _) in &replies {
        for k in 1..wire.len() {
            cuts.push((wire.clone(), k));
        }
    }
    let addr = cutting_server(cuts.clone());
    let mut c = KvClient::connect(addr).expect("connect to the stand-in server");
    c.set_timeout(Some(common::DEADLINE)).expect("set_timeout");
    for (wire, k) in cuts {
        let want = &replies.iter().find(|(w, _)| *w == wire).unwrap().1;
        let got = c.command(&["PING"]);
        assert!(
            matches!(&got, Ok(r) if r == want),
            "the reply {} came in two reads, cut after byte {k}: `command` returned {got:?}, \
             expected Ok({want:?}). Keep the bytes of a reply that is not whole yet and parse \
             again when more come",
            testkit::compare::show(&wire)
        );
    }
}

/// The server sends the start of a reply and closes the connection: `command` returns
/// `UnexpectedEof` at once (a read of 0 is the end of the stream, never "nothing yet").
#[test]
fn a_server_that_hangs_up_mid_reply_part_d() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a stand-in server");
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut ping = [0u8; 14];
        if conn.read_exact(&mut ping).is_ok() {
            let _ = conn.write_all(b"$5\r\nab");
        }
        // Dropped: the FIN follows the piece.
    });
    let mut c = KvClient::connect(addr).expect("connect to the stand-in server");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.command(&["PING"]).map_err(|e| e.kind()));
    });
    let got = rx.recv_timeout(common::DEADLINE);
    let _ = server.join();
    match got {
        Ok(Err(ErrorKind::UnexpectedEof)) => {}
        Ok(other) => panic!(
            "the server sent `$5\\r\\nab` (3 of the reply's 11 bytes) and closed the \
             connection: `command` returned {other:?}, expected Err(UnexpectedEof)"
        ),
        Err(_) => panic!(
            "the server sent `$5\\r\\nab` (3 of the reply's 11 bytes) and closed the \
             connection: `command` had not returned {} s later, expected Err(UnexpectedEof) \
             at once. A read that returns 0 is the end of the stream: nothing more will ever \
             come, so reading again spins for ever",
            common::DEADLINE.as_secs()
        ),
    }
}

/// Nothing listening: `ConnectionRefused`.
#[test]
fn connect_refused_part_d() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = KvClient::connect(("127.0.0.1", port)).expect_err("connect to a closed port");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}
