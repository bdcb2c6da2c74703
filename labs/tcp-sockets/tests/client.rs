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
