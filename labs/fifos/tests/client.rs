//! Part C: the client library and `fifo-client DIR COUNT`, against a server played by the
//! test (so only the client is judged here).

mod common;

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

use common::{FakeServer, client, honest, listing, service_dir};
use fifos::client::{ClientError, request, send_request};
use fifos::protocol::Request;
use nix::fcntl::OFlag;
use rstest::rstest;
use testkit::expect::Expect;

/// The request goes out in ONE write. In a packet-mode pipe (O_DIRECT) every write stays a
/// separate packet and one read returns at most one packet, so the first read shows exactly
/// what the first write carried.
#[test]
fn request_is_one_write_part_c() {
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(OFlag::O_DIRECT).expect("pipe2(O_DIRECT)");
    send_request(
        &w,
        &Request {
            pid: 412,
            count: 10,
        },
    )
    .expect("send_request failed");
    drop(w);
    let mut reader = std::fs::File::from(r);
    let mut first = [0u8; 4096];
    let n = reader
        .read(&mut first)
        .expect_success("reading back what send_request wrote into the pipe");
    assert_eq!(
        String::from_utf8_lossy(&first[..n]),
        "412 10\n",
        "the first write(2) of send_request must carry the whole request line: the requests \
         of concurrent clients interleave otherwise"
    );
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .expect_success("reading the rest of what send_request wrote into the pipe");
    assert!(
        rest.is_empty(),
        "send_request wrote more after the line: {rest:?}"
    );
}

/// `request` sends `<its pid> <count>` and returns the start it was given.
#[test]
fn request_returns_start_part_c() {
    let dir = service_dir();
    let server = FakeServer::start(dir.path(), honest);
    let timeout = Duration::from_secs(5);
    assert_eq!(request(dir.path(), 10, timeout).expect("first request"), 0);
    assert_eq!(request(dir.path(), 3, timeout).expect("second request"), 10);
    let me = std::process::id();
    assert_eq!(server.requests(), [format!("{me} 10"), format!("{me} 3")]);
    drop(server);
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "the reply FIFO must be removed"
    );
}

/// An `error` reply is `ClientError::Refused` with the server's reason.
#[test]
fn refused_request_part_c() {
    let dir = service_dir();
    let _server = FakeServer::start(dir.path(), |_, _| Some("error no more numbers\n".into()));
    match request(dir.path(), 1, Duration::from_secs(5)) {
        Err(ClientError::Refused(reason)) => assert_eq!(reason, "no more numbers"),
        other => panic!("expected Err(Refused(\"no more numbers\")), got {other:?}"),
    }
}

/// `fifo-client DIR COUNT` prints the start, exits 0 and leaves nothing behind.
#[test]
fn client_prints_start_part_c() {
    let dir = service_dir();
    let server = FakeServer::start(dir.path(), honest);
    let (out, _) = client(dir.path(), "7");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    let (out, _) = client(dir.path(), "1");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(
        listing(dir.path()),
        ["seqnum.fifo"],
        "the reply FIFOs must be removed"
    );
}

/// No server (no FIFO, or a stale one): exit 1 at once, with a message, nothing left.
#[rstest]
#[case::no_fifo(false)]
#[case::stale_fifo(true)]
fn no_server_part_c(#[case] stale: bool) {
    let dir = service_dir();
    if stale {
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
        nix::unistd::mkfifo(&common::server_fifo(dir.path()), mode).unwrap();
    }
    let (out, took) = client(dir.path(), "3");
    assert_eq!(out.status.code(), Some(1), "fifo-client with no server");
    assert!(
        took < Duration::from_secs(2),
        "fifo-client took {took:?} to notice there is no server"
    );
    assert!(!out.stderr.is_empty(), "fifo-client must say why on stderr");
    let want: Vec<String> = if stale {
        vec!["seqnum.fifo".into()]
    } else {
        vec![]
    };
    assert_eq!(listing(dir.path()), want, "the reply FIFO must be removed");
}

/// A COUNT that is not in 1..=1000000, or a wrong number of arguments: status 2.
#[rstest]
#[case::zero(&["0"])]
#[case::too_big(&["1000001"])]
#[case::word(&["ten"])]
#[case::missing(&[])]
fn usage_part_c(#[case] count: &[&str]) {
    let dir = service_dir();
    let mut args = vec![dir.path().as_os_str()];
    args.extend(count.iter().map(|c| std::ffi::OsStr::new(*c)));
    let (out, _) = common::run("fifo-client", &args);
    assert_eq!(out.status.code(), Some(2), "fifo-client DIR {count:?}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}
