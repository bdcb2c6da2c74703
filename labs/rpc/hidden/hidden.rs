//! Hidden tests. `edge_*`: edge cases of the protocol and the server. `cache_*`: the reply
//! cache is bounded (per client and in clients) and keeps what a retry needs: the latest
//! replies of the clients used most recently. `leak_*`: the client leaks nothing over many
//! calls and retries; the server gives back the descriptors and threads of closed connections.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use common::{DEADLINE, Server, error_code, request, wait_for};
use rpc::RpcClient;
use rpc::cache::{Lookup, MAX_CLIENTS, REPLIES_PER_CLIENT, ReplyCache};
use rpc::wire::Response;
use rpc::{Service, server::respond};
use serde_json::{Value, json};
use testkit::Expect;

// ---------------------------------------------------------------------------------------
// Edge cases

/// Blank lines get no reply; a null id is answered with a null id.
#[test]
fn edge_blank_lines_and_null_id_part_b() {
    let s = Service::new();
    assert_eq!(respond(&s, b""), None, "an empty line gets no reply");
    assert_eq!(respond(&s, b"  \r"), None, "a blank line gets no reply");
    let r: Value = serde_json::from_str(
        &respond(
            &s,
            br#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":null}"#,
        )
        .expect("a request with a null id is answered"),
    )
    .unwrap();
    assert_eq!(r["id"], Value::Null);
    assert!(
        r.get("result").is_some() && r["error"].is_null(),
        "a request with a null id is run, and answered with its result: {r}"
    );
}

/// A batch of invalid elements gets an array of -32600 errors; a batch of only
/// notifications (even failing ones) gets no reply.
#[test]
fn edge_odd_batches_part_b() {
    let s = Service::new();
    let line = respond(&s, b"[1, 2, \"x\"]").expect("a batch of invalid elements gets a reply");
    let r: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!("[1, 2, \"x\"] must get one line holding an array of errors; got {line:?} ({e})")
    });
    let arr = r
        .as_array()
        .unwrap_or_else(|| panic!("[1,2,\"x\"]: an array of errors, got {r}"));
    assert_eq!(arr.len(), 3, "{r}");
    assert!(
        arr.iter()
            .all(|e| e["error"]["code"] == -32600 && e["id"].is_null()),
        "{r}"
    );
    let only = json!([
        {"jsonrpc": "2.0", "method": "counter.incr"},
        {"jsonrpc": "2.0", "method": "nope"},
        {"jsonrpc": "2.0", "method": "add", "params": ["x"]},
    ]);
    let got = respond(&s, only.to_string().as_bytes());
    assert_eq!(
        got, None,
        "a batch of only notifications (even failing ones) gets no reply at all; got {got:?}"
    );
    let r = respond(&s, request("counter.incr", json!([]), json!(1)).as_bytes()).unwrap();
    assert!(
        r.contains("\"result\":2"),
        "the notification in the batch ran: {r}"
    );
}

/// Named params must be exactly the names: extra or missing names are -32602; an add of a
/// string is -32602, not -32600.
#[test]
fn edge_params_by_name_exactly_part_b() {
    let s = Service::new();
    for (m, p) in [
        ("add", json!({"a": 1, "b": 2, "c": 3})),
        ("add", json!({"a": 1})),
        ("kv.put", json!({"key": "k"})),
        ("sleep", json!({"ms": "10"})),
        ("sleep", json!([20_000])),
    ] {
        let line = request(m, p, json!(1));
        let r: Value = serde_json::from_str(&respond(&s, line.as_bytes()).unwrap()).unwrap();
        assert_eq!(error_code(&r, &line), -32602, "{line}: {r}");
    }
}

/// A line just under 64 KiB is served; the last line of a connection closed without a
/// newline is served too.
#[test]
fn edge_long_lines_and_a_last_line_without_newline_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let value = "y".repeat(60_000);
    let line = request("kv.put", json!(["k", value]), json!(1));
    let r = c.ask_long(line.as_bytes(), "a kv.put line of 60 KB");
    assert_eq!(r["id"], 1, "a 60 KB line is under the cap and served: {r}");
    let r = c.ask(&request("kv.get", json!(["k"]), json!(2)));
    assert_eq!(r["result"].as_str().map(str::len), Some(60_000));
    c.writer
        .write_all(request("add", json!([2, 3]), json!(3)).as_bytes())
        .unwrap();
    c.writer.shutdown(std::net::Shutdown::Write).unwrap();
    let r = c.recv("a last line without a newline, then the end of the connection");
    assert_eq!(
        r["id"], 3,
        "a last line without a newline is served: its reply carries its id; got {r}"
    );
}

/// The client reads a reply however its bytes arrive: a server that sends a 40 KB reply in
/// pieces (the first 10 bytes alone, then cuts inside two-byte characters), each sent once
/// the one before it has had time to be read, is understood.
#[test]
fn edge_client_reads_a_reply_cut_anywhere_part_c() {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let value = "\u{e9}".repeat(20_000);
    let sent = value.clone();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(DEADLINE));
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let id = serde_json::from_str::<Value>(&line).map_or(Value::Null, |v| v["id"].clone());
        let reply = format!("{}\n", json!({"jsonrpc": "2.0", "result": sent, "id": id}));
        let bytes = reply.as_bytes();
        // `{"id":1,"jsonrpc":"2.0","result":"` is 34 bytes: odd offsets past it fall inside
        // a character.
        let cuts = [0, 10, 41, 20_001, bytes.len()];
        let mut w = &stream;
        for pair in cuts.windows(2) {
            if w.write_all(&bytes[pair[0]..pair[1]]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let got = RpcClient::new(addr)
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .with_retries(0)
        .kv_get("k");
    let _ = server.join();
    match got {
        Ok(v) => assert!(
            v.as_str() == Some(value.as_str()),
            "a reply of 40 KB sent in pieces: kv_get returned a value of {} bytes instead of the \
             40,000 sent",
            v.to_string().len()
        ),
        Err(e) => panic!(
            "a reply of 40 KB sent in pieces (10 bytes, then cuts inside two-byte characters, \
             100 ms apart), then its newline: kv_get failed with `{e}`. A reply is the line up \
             to its newline, however its bytes arrive: read until the newline (BufRead's \
             read_line on the connection kept for the call), not one read(), and decode the \
             whole line, not each piece"
        ),
    }
}

/// Two over-long lines in a row and garbage bytes: each gets its parse error, in order.
#[test]
fn edge_garbage_in_a_row_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let big = "z".repeat(200_000);
    c.send_long(big.as_bytes());
    c.send_long(big.as_bytes());
    c.writer.write_all(b"\xff\xfe\x00\n").unwrap();
    for what in [
        "the first long line",
        "the second long line",
        "binary garbage",
    ] {
        let r = c.recv(what);
        assert_eq!(error_code(&r, what), -32700, "{r}");
    }
    let r = c.ask(&request("add", json!([1, 1]), json!(9)));
    assert_eq!(
        r["id"], 9,
        "two lines of 200,000 bytes and a line of garbage each got their parse error; the \
         request after them got {r} instead of its reply: a bad line must cost exactly one reply \
         (a long line is skipped up to its newline, not read as several lines)"
    );
}

// ---------------------------------------------------------------------------------------
// The reply cache

fn reply(id: u64) -> Response {
    Response {
        id: json!(id),
        outcome: Ok(json!(id * 10)),
    }
}

fn run(cache: &mut ReplyCache, client: &str, id: u64) {
    let got = cache.begin(client, &json!(id));
    assert_eq!(
        got,
        Lookup::Fresh,
        "a new (client, id) ({client}, {id}) is Fresh"
    );
    cache.finish(client, &json!(id), reply(id));
}

/// 10,000 calls of one client leave at most 8 replies in a cache of 8 per client, and the
/// latest one is still answered from it.
#[test]
fn cache_replies_per_client_are_bounded_part_c() {
    let mut cache = ReplyCache::new(8, 4);
    for id in 0..10_000 {
        run(&mut cache, "one", id);
    }
    assert!(
        cache.len() <= 8,
        "after 10000 calls of one client, a cache of 8 replies per client holds {} replies: \
         drop the oldest reply of a client when it has more than its bound, or the server's \
         memory grows with every call",
        cache.len()
    );
    assert_eq!(
        cache.begin("one", &json!(9_999)),
        Lookup::Done(reply(9_999))
    );
    assert_eq!(
        cache.begin("one", &json!(9_993)),
        Lookup::Done(reply(9_993))
    );
}

/// 1000 clients leave at most 4 in a cache of 4 clients; the most recent is kept.
#[test]
fn cache_clients_are_bounded_part_c() {
    let mut cache = ReplyCache::new(8, 4);
    for c in 0..1000 {
        run(&mut cache, &format!("client-{c}"), 1);
    }
    assert!(
        cache.clients() <= 4 && cache.len() <= 4 * 8,
        "after 1000 clients, a cache of 4 clients holds {} clients and {} replies: forget the \
         client used least recently when a new one comes and the cache is full, or the \
         server's memory grows with every new client",
        cache.clients(),
        cache.len()
    );
    assert_eq!(cache.begin("client-999", &json!(1)), Lookup::Done(reply(1)));
}

/// A client that keeps calling is kept while others come and go.
#[test]
fn cache_a_busy_client_is_kept_part_c() {
    let mut cache = ReplyCache::new(8, 3);
    for i in 0..100 {
        run(&mut cache, &format!("passing-{i}"), 1);
        run(&mut cache, "busy", i);
    }
    assert_eq!(
        cache.begin("busy", &json!(99)),
        Lookup::Done(reply(99)),
        "the client used most recently must not be evicted"
    );
}

/// A running call is `Running` to a repeat; the server's own bounds are sensible.
#[test]
fn cache_running_and_the_server_bounds_part_c() {
    let mut cache = ReplyCache::new(8, 4);
    assert_eq!(cache.begin("c", &Value::from("x")), Lookup::Fresh);
    assert_eq!(cache.begin("c", &Value::from("x")), Lookup::Running);
    cache.finish("c", &Value::from("x"), reply(1));
    assert_eq!(cache.begin("c", &Value::from("x")), Lookup::Done(reply(1)));
    assert!(
        (1..=10_000).contains(&REPLIES_PER_CLIENT) && (1..=1_000_000).contains(&MAX_CLIENTS),
        "REPLIES_PER_CLIENT ({REPLIES_PER_CLIENT}) and MAX_CLIENTS ({MAX_CLIENTS}) bound the \
         server's memory"
    );
}

// ---------------------------------------------------------------------------------------
// Leaks

const ADVICE: &str = "drop the connection (both the reader and the writer halves) when a call \
fails or the client is dropped";

/// 300 clients, each making a call and dropped, leak no descriptor or thread.
#[test]
fn leak_clients_leak_nothing_part_c() {
    let server = Server::start();
    let addr = server.addr();
    testkit::assert_no_leak(300, "RpcClient::new + add + drop", ADVICE, |_| {
        let mut c = RpcClient::new(addr.as_str()).expect_success("RpcClient::new");
        c.add(1.0, 2.0).expect_success("add");
    });
}

/// 50 calls that time out (2 attempts each, a new connection per attempt) leak nothing.
#[test]
fn leak_retries_leak_nothing_part_c() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Never accepts: connections wait in its backlog (no descriptor of this process), and
    // nothing ever answers.
    let mut c = RpcClient::new(("127.0.0.1", port))
        .expect_success("RpcClient::new")
        .with_timeout(Duration::from_millis(5))
        .with_retries(1);
    testkit::assert_no_leak(50, "call that times out twice", ADVICE, |_| {
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
fn leak_server_gives_back_closed_connections_part_b() {
    let server = Server::start();
    let pid = server.group.pid();
    server
        .connect()
        .ask(&request("add", json!([1, 1]), json!(1)));
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
