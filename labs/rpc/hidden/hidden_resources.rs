//! Hidden tests: the client leaks nothing over many calls and retries; the server gives
//! back the descriptors and threads of connections that have closed.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{DEADLINE, Server, request, wait_for};
use rpc::RpcClient;
use serde_json::json;
use testkit::Expect;

const ADVICE: &str = "drop the connection (both the reader and the writer halves) when a call \
fails or the client is dropped";

/// 300 clients, each making a call and dropped, leak no descriptor or thread.
#[test]
fn clients_leak_nothing_part_c() {
    let server = Server::start();
    let addr = server.addr();
    testkit::assert_no_leak(300, "RpcClient::new + add + drop", ADVICE, |_| {
        let mut c = RpcClient::new(addr.as_str()).expect_success("RpcClient::new");
        c.add(1.0, 2.0).expect_success("add");
    });
}

/// 100 calls that time out (2 attempts each, a new connection per attempt) leak nothing.
#[test]
fn retries_leak_nothing_part_c() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Never accepts: connections wait in its backlog (no descriptor of this process), and
    // nothing ever answers.
    let mut c = RpcClient::new(("127.0.0.1", port))
        .expect_success("RpcClient::new")
        .with_timeout(Duration::from_millis(5))
        .with_retries(1);
    testkit::assert_no_leak(100, "call that times out twice", ADVICE, |_| {
        c.call("counter.incr", json!([]))
            .expect_failure("a call nobody answers");
    });
    drop(silent);
}

fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// After 200 connections have come and gone, the server holds the descriptors and threads it
/// had before.
#[test]
fn server_gives_back_closed_connections_part_b() {
    let server = Server::start();
    let pid = server.group.pid();
    server
        .connect()
        .ask(&request("add", json!([1, 1]), json!(1)));
    assert!(
        wait_for(DEADLINE, || threads(pid) <= 2),
        "rpc-server keeps a thread per closed connection"
    );
    let (fd0, th0) = (fds(pid), threads(pid));
    for i in 0..200 {
        let mut c = server.connect();
        c.ask(&request("add", json!([i, 1]), json!(i)));
    }
    let back = wait_for(DEADLINE, || fds(pid) <= fd0 + 2 && threads(pid) <= th0 + 2);
    assert!(
        back,
        "after 200 connections were closed, rpc-server holds {} descriptors and {} threads \
         (before: {fd0} and {th0}): a connection's thread must end, and its socket be closed, \
         when the client closes the connection (read returns 0)",
        fds(pid),
        threads(pid)
    );
}
