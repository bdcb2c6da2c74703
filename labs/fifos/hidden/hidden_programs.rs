//! Hidden edge cases of the programs: errors at start, odd paths, a reply path that is not
//! a FIFO, a server that never answers.

mod common;

use std::time::Duration;

use common::{FAKE_PID, FakeServer, ReplyEnd, Server, client, listing, mute, send, service_dir};
use testkit::expect::Expect;

/// A missing directory: exit 1 with `fifo-server: ...` on stderr.
#[test]
fn server_missing_dir_hidden() {
    let dir = service_dir();
    let missing = dir.path().join("nope");
    let (out, _) = common::run("fifo-server", &[missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("fifo-server: "));
}

/// A regular file in the way: exit 1, and the file is left untouched.
#[test]
fn server_not_a_fifo_hidden() {
    let dir = service_dir();
    let path = common::server_fifo(dir.path());
    std::fs::write(&path, "precious\n").unwrap();
    let (out, _) = common::run("fifo-server", &[dir.path().as_os_str()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a regular file named seqnum.fifo must be refused"
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect_success(
            "reading back the regular file DIR/seqnum.fifo after fifo-server refused it (the \
             server must leave a file that is not a FIFO alone: not remove or replace it)"
        ),
        "precious\n"
    );
}

/// A directory whose name has spaces works like any other.
#[test]
fn dir_with_spaces_hidden() {
    let dir = service_dir();
    let odd = dir.path().join("my service dir");
    std::fs::create_dir(&odd).unwrap();
    let _server = Server::start(&odd);
    let (out, _) = client(&odd, "5");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    let (out, _) = client(&odd, "1");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n");
}

/// A reply path that is a regular file is not a client: the server writes nothing into it
/// and grants it nothing.
#[test]
fn reply_path_not_a_fifo_hidden() {
    let dir = service_dir();
    let _server = Server::start(dir.path());
    let fake = dir.path().join(format!("client.{}.fifo", FAKE_PID + 1));
    std::fs::write(&fake, "").unwrap();
    send(dir.path(), format!("{} 5\n", FAKE_PID + 1).as_bytes());
    let reply = ReplyEnd::new(dir.path(), FAKE_PID + 2);
    send(dir.path(), format!("{} 1\n", FAKE_PID + 2).as_bytes());
    assert_eq!(reply.line(), "0\n");
    assert_eq!(
        std::fs::read(&fake).expect_success(
            "reading back the regular file at the reply path (the server must leave a reply \
             path that is not a FIFO alone: not remove or replace it)"
        ),
        b"",
        "the server wrote into a regular file"
    );
}

/// Many requests in one burst, each its own write: all answered, in order.
#[test]
fn burst_of_requests_hidden() {
    let dir = service_dir();
    let _server = Server::start(dir.path());
    let ends: Vec<ReplyEnd> = (0..50)
        .map(|i| ReplyEnd::new(dir.path(), FAKE_PID + i))
        .collect();
    for i in 0..50 {
        send(dir.path(), format!("{} 2\n", FAKE_PID + i).as_bytes());
    }
    for (i, end) in ends.iter().enumerate() {
        assert_eq!(end.line(), format!("{}\n", 2 * i));
    }
}

/// A server that never answers: the client gives up after about 5 s, exit 1, nothing left.
#[test]
fn client_timeout_hidden() {
    let dir = service_dir();
    let _server = FakeServer::start(dir.path(), mute);
    let (out, took) = client(dir.path(), "3");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(8)).contains(&took),
        "fifo-client gave up after {took:?}, not about 5 s"
    );
    assert_eq!(
        listing(dir.path()),
        ["seqnum.fifo"],
        "the reply FIFO must be removed"
    );
}
