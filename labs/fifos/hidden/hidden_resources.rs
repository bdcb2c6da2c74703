//! Hidden tests: the client functions leak no descriptor and no FIFO however often they are
//! called, and every FIFO the lab creates has mode 0600.

mod common;

use std::time::Duration;

use common::{FakeServer, Server, honest, listing, service_dir};
use fifos::client::{ReplyFifo, request};
use testkit::Expect;

/// What to do about a descriptor or a FIFO that the client leaves behind.
const CLIENT_ADVICE: &str = "request must close the server's FIFO once the request is written, \
and a ReplyFifo must close its descriptor and remove its FIFO when it is dropped";

/// 1000 requests to a server played by the test leave no descriptor and no FIFO behind.
#[test]
fn request_leaks_nothing_part_c() {
    let dir = service_dir();
    let server = FakeServer::start(dir.path(), honest);
    let mut next = 0;
    testkit::assert_no_leak(1000, "fifos::client::request", CLIENT_ADVICE, |_| {
        let start = request(dir.path(), 2, Duration::from_secs(5))
            .expect_success("request(DIR, 2, 5 s) to a server that answers");
        assert_eq!(start, next, "the start of the block the server gave");
        next += 2;
    });
    drop(server);
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "after 1003 requests, FIFOs are left in the service directory: {CLIENT_ADVICE}"
    );
}

/// 1000 reply FIFOs created, waited on without a reply and dropped leave nothing behind.
#[test]
fn reply_fifo_leaks_nothing_part_c() {
    let dir = service_dir();
    testkit::assert_no_leak(1000, "ReplyFifo::create + wait_reply + drop", CLIENT_ADVICE, |i| {
        let pid = common::FAKE_PID + (i % 1000) as u32;
        let reply = ReplyFifo::create(dir.path(), pid).expect_success("ReplyFifo::create");
        reply
            .wait_reply(Duration::from_millis(0))
            .expect_failure("wait_reply(0 ms) with no server");
        drop(reply);
    });
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "FIFOs left after every ReplyFifo was dropped: {CLIENT_ADVICE}"
    );
}

/// A reply FIFO, the server's FIFO made by `create_fifo`, and the one `fifo-server` makes
/// all have mode 0600.
#[test]
fn fifos_are_mode_0600_part_b() {
    let dir = service_dir();
    let reply = ReplyFifo::create(dir.path(), common::FAKE_PID).expect_success("ReplyFifo::create");
    let (kind, mode) = testkit::ipc::file_mode(reply.path())
        .unwrap_or_else(|| panic!("{} does not exist after create", reply.path().display()));
    assert_eq!(kind, "FIFO", "{} is not a FIFO", reply.path().display());
    testkit::ipc::assert_mode("the reply FIFO", 0o600, mode);
    drop(reply);

    let made = dir.path().join("made.fifo");
    fifos::server::create_fifo(&made).expect_success("create_fifo");
    let (_, mode) = testkit::ipc::file_mode(&made).expect("create_fifo made nothing");
    testkit::ipc::assert_mode("the FIFO made by create_fifo", 0o600, mode);
    std::fs::remove_file(&made).expect("cannot remove the test's FIFO");

    let _server = Server::start(dir.path());
    let fifo = common::server_fifo(dir.path());
    let (_, mode) = testkit::ipc::file_mode(&fifo).expect("fifo-server is ready but made no FIFO");
    testkit::ipc::assert_mode("fifo-server's seqnum.fifo", 0o600, mode);
}
