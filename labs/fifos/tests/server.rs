//! Part B: `fifo-server DIR` creates its FIFO, answers requests in order, refuses bad ones,
//! stops cleanly on SIGINT/SIGTERM, refuses to run twice and recovers a stale FIFO. The
//! test plays the clients itself, so only the server is judged here.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use common::{FAKE_PID, ReplyEnd, Server, listing, send, server_fifo, service_dir};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use rstest::rstest;

/// Once `ready` is printed, DIR/seqnum.fifo is a FIFO that only its owner may use.
#[test]
fn creates_fifo_part_b() {
    let dir = service_dir();
    let _server = Server::start(dir.path());
    let meta = std::fs::symlink_metadata(server_fifo(dir.path())).expect("no DIR/seqnum.fifo");
    assert!(meta.file_type().is_fifo(), "DIR/seqnum.fifo is not a FIFO");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode of DIR/seqnum.fifo"
    );
}

/// Requests are answered in order with consecutive blocks starting at 0.
#[test]
fn answers_in_order_part_b() {
    let dir = service_dir();
    let _server = Server::start(dir.path());
    let mut expected = 0;
    for (i, count) in [5u64, 1, 1000, 3].into_iter().enumerate() {
        let pid = FAKE_PID + i as u32;
        let reply = ReplyEnd::new(dir.path(), pid);
        send(dir.path(), format!("{pid} {count}\n").as_bytes());
        assert_eq!(
            reply.line(),
            format!("{expected}\n"),
            "reply to `{pid} {count}`"
        );
        expected += count;
    }
}

/// Several requests in one write are all answered.
#[test]
fn several_requests_in_one_read_part_b() {
    let dir = service_dir();
    let _server = Server::start(dir.path());
    let a = ReplyEnd::new(dir.path(), FAKE_PID + 1);
    let b = ReplyEnd::new(dir.path(), FAKE_PID + 2);
    send(
        dir.path(),
        format!("{} 4\n{} 6\n", FAKE_PID + 1, FAKE_PID + 2).as_bytes(),
    );
    assert_eq!(a.line(), "0\n");
    assert_eq!(b.line(), "4\n");
}

/// A bad request gets `error <reason>` and costs nothing.
#[rstest]
#[case::count_zero("0")]
#[case::count_too_big("1000001")]
#[case::not_a_number("many")]
fn refuses_bad_count_part_b(#[case] count: &str) {
    let dir = service_dir();
    let _server = Server::start(dir.path());
    let bad = ReplyEnd::new(dir.path(), FAKE_PID + 1);
    send(dir.path(), format!("{} {count}\n", FAKE_PID + 1).as_bytes());
    let line = bad.line();
    assert!(
        line.starts_with("error ") && line.ends_with('\n'),
        "reply to a count of {count:?}: {line:?}"
    );
    let good = ReplyEnd::new(dir.path(), FAKE_PID + 2);
    send(dir.path(), format!("{} 2\n", FAKE_PID + 2).as_bytes());
    assert_eq!(
        good.line(),
        "0\n",
        "a refused request must not take numbers"
    );
}

/// SIGTERM and SIGINT: the server removes its FIFO and exits 0.
#[rstest]
#[case::sigterm(Signal::SIGTERM)]
#[case::sigint(Signal::SIGINT)]
fn signal_removes_fifo_part_b(#[case] sig: Signal) {
    let dir = service_dir();
    let mut server = Server::start(dir.path());
    server.signal(sig);
    let status = server
        .wait(common::DEADLINE)
        .expect("fifo-server did not exit after the signal");
    assert_eq!(status.code(), Some(0), "exit status after {sig}");
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "left behind after {sig}"
    );
}

/// A second server on a live FIFO exits 1 with a message and leaves the FIFO to the first.
#[test]
fn refuses_second_server_part_b() {
    let dir = service_dir();
    let _first = Server::start(dir.path());
    let (out, _) = common::run("fifo-server", &[dir.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "status of the second server");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("fifo-server: "),
        "the second server must say why on stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply = ReplyEnd::new(dir.path(), FAKE_PID);
    send(dir.path(), format!("{FAKE_PID} 1\n").as_bytes());
    assert_eq!(reply.line(), "0\n", "the first server must still serve");
}

/// A FIFO that nobody reads (its server died) is reused.
#[test]
fn reuses_stale_fifo_part_b() {
    let dir = service_dir();
    nix::unistd::mkfifo(&server_fifo(dir.path()), Mode::from_bits_truncate(0o600)).unwrap();
    let mut server = match Server::try_start(dir.path()) {
        Ok(s) => s,
        Err(why) => panic!(
            "with a stale DIR/seqnum.fifo (nobody reads it), fifo-server must reuse it: {why}"
        ),
    };
    let reply = ReplyEnd::new(dir.path(), FAKE_PID);
    send(dir.path(), format!("{FAKE_PID} 1\n").as_bytes());
    assert_eq!(reply.line(), "0\n");
    drop(reply);
    server.signal(Signal::SIGTERM);
    assert!(
        server.wait(common::DEADLINE).is_some(),
        "fifo-server did not exit on SIGTERM"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// Usage errors exit with status 2.
#[rstest]
#[case::no_argument(&[])]
#[case::two_arguments(&["a", "b"])]
fn usage_part_b(#[case] args: &[&str]) {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let (out, _) = common::run("fifo-server", &args);
    assert_eq!(out.status.code(), Some(2), "fifo-server {args:?}");
}
