//! Part C: the client stub `RpcClient` and the server's side of at-most-once calls: typed
//! calls, errors, a timeout per call, retries that reconnect and resend the same id with the
//! client id, and a retried `counter.incr` that runs once.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Conn, DEADLINE, Fault, LossyProxy, Server, request};
use rpc::{ClientError, RpcClient};
use rstest::rstest;
use serde_json::{Value, json};
use testkit::Expect;

/// A server played by the test: every request line it reads goes to the channel with the
/// number of the connection it came on; it answers with `reply(request)` when that is Some.
fn fake_server(
    reply: impl Fn(&Value) -> Option<Value> + Send + Sync + 'static,
) -> (u16, mpsc::Receiver<(usize, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let reply = std::sync::Arc::new(reply);
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().flatten().enumerate() {
            let (tx, reply) = (tx.clone(), reply.clone());
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                    if let Some(r) = reply(&v) {
                        let _ = w.write_all(format!("{r}\n").as_bytes());
                    }
                    if tx.send((n, v)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

/// The typed helpers call the real server and return its results.
#[test]
fn typed_calls_part_c() {
    let server = Server::start();
    let addr = server.addr();
    testkit::within("typed calls", DEADLINE, "", move || {
        let mut c = RpcClient::new(addr.as_str()).expect_success("RpcClient::new");
        assert_eq!(
            c.add(1.5, 2.0).expect_success("add(1.5, 2.0)"),
            3.5,
            "add(1.5, 2.0)"
        );
        assert_eq!(
            c.kv_put("k", json!([1, 2])).expect_success("kv_put"),
            Value::Null,
            "kv_put(\"k\", [1, 2]) of a new key"
        );
        assert_eq!(
            c.kv_get("k").expect_success("kv_get"),
            json!([1, 2]),
            "kv_get(\"k\")"
        );
        assert_eq!(c.sleep(10).expect_success("sleep(10)"), 10, "sleep(10)");
        assert_eq!(
            c.counter_incr().expect_success("counter_incr"),
            1,
            "the first counter_incr()"
        );
        assert_eq!(
            c.counter_incr().expect_success("counter_incr"),
            2,
            "the second counter_incr()"
        );
        let named = c
            .call("add", json!({"a": 2, "b": 3}))
            .expect_success("call add by name");
        assert_eq!(named.as_f64(), Some(5.0), "call(\"add\", {{a: 2, b: 3}})");
    });
}

/// An error reply is `ClientError::Rpc` with its code, and is not retried.
#[test]
fn error_replies_are_rpc_errors_part_c() {
    let server = Server::start();
    let addr = server.addr();
    testkit::within("calls that fail", DEADLINE, "", move || {
        let mut c = RpcClient::new(addr.as_str()).expect_success("RpcClient::new");
        match c.call("nope", json!([])) {
            Err(ClientError::Rpc(e)) => assert_eq!(e.code, -32601, "{e:?}"),
            other => panic!("call(\"nope\") should be ClientError::Rpc(-32601), was {other:?}"),
        }
        match c.call("add", json!(["x", 1])) {
            Err(ClientError::Rpc(e)) => assert_eq!(e.code, -32602, "{e:?}"),
            other => panic!("add(\"x\", 1) should be ClientError::Rpc(-32602), was {other:?}"),
        }
        c.kv_get("none").expect_success("a call after the errors");
    });
}

/// Every call has a new id and the same `_client`; all go over one connection.
#[test]
fn ids_and_client_id_part_c() {
    let (port, seen) = fake_server(|r| Some(json!({"jsonrpc": "2.0", "result": 0, "id": r["id"]})));
    let mut c = RpcClient::new(("127.0.0.1", port)).expect_success("RpcClient::new");
    for _ in 0..3 {
        c.call("counter.incr", json!([]))
            .expect_success("a call the fake server answers");
    }
    let reqs: Vec<(usize, Value)> = (0..3)
        .map(|_| seen.recv_timeout(DEADLINE).unwrap())
        .collect();
    let ids: Vec<&Value> = reqs.iter().map(|(_, r)| &r["id"]).collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "three calls must have three different ids, got {ids:?}"
    );
    for (conn, r) in &reqs {
        assert_eq!(*conn, 0, "calls that succeed share one connection: {r}");
        assert_eq!(r["jsonrpc"], "2.0", "{r}");
        assert_eq!(
            r["_client"],
            json!(c.client_id()),
            "every call carries _client: {r}"
        );
    }
    let other = RpcClient::new(("127.0.0.1", port)).expect_success("RpcClient::new");
    assert_ne!(
        other.client_id(),
        c.client_id(),
        "two clients have different client ids"
    );
}

/// A server that never answers: the call gives up after 1 + retries attempts, each on a new
/// connection, each with the same id and the same `_client`.
#[test]
fn timeouts_retry_with_the_same_id_part_c() {
    let (port, seen) = fake_server(|_| None);
    let mut c = RpcClient::new(("127.0.0.1", port))
        .expect_success("RpcClient::new")
        .with_timeout(Duration::from_millis(200))
        .with_retries(2);
    let got = testkit::within(
        "a call with 3 attempts of 200 ms",
        DEADLINE,
        "",
        move || c.call("counter.incr", json!([])),
    );
    match got {
        Err(ClientError::GaveUp { attempts, .. }) => assert_eq!(attempts, 3),
        other => {
            panic!("a server that never answers: expected GaveUp after 3 attempts, got {other:?}")
        }
    }
    let reqs: Vec<(usize, Value)> = (0..3)
        .map(|i| {
            seen.recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("attempt {} never reached the server", i + 1))
        })
        .collect();
    let conns: Vec<usize> = reqs.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        conns,
        [0, 1, 2],
        "each retry must reconnect (a new connection)"
    );
    for (_, r) in &reqs[1..] {
        assert_eq!(
            r["id"], reqs[0].1["id"],
            "a retry must send the same id: {r}"
        );
        assert_eq!(
            r["_client"], reqs[0].1["_client"],
            "and the same _client: {r}"
        );
    }
}

/// The server answers a repeated (client, id) from its cache: `counter.incr` runs once.
#[test]
fn server_answers_a_repeat_from_its_cache_part_c() {
    let server = Server::start();
    let line =
        json!({"jsonrpc": "2.0", "method": "counter.incr", "id": 7, "_client": "t-1"}).to_string();
    let first = server.connect().ask(&line);
    let again = server.connect().ask(&line);
    assert_eq!(first["result"], 1, "{first}");
    assert_eq!(
        again, first,
        "the same counter.incr (same _client, same id) sent again must get the first reply"
    );
    let other = json!({"jsonrpc": "2.0", "method": "counter.incr", "id": 7, "_client": "t-2"});
    let r = Conn::to(server.port).ask(&other.to_string());
    assert_eq!(r["result"], 2, "another client's id 7 is another call: {r}");
    let r = server
        .connect()
        .ask(&request("counter.incr", json!([]), json!(7)));
    assert_eq!(r["result"], 3, "without _client, every request runs: {r}");
    let text_id = json!({"jsonrpc": "2.0", "method": "counter.incr", "id": "7", "_client": "t-1"});
    let r = server.connect().ask(&text_id.to_string());
    assert_eq!(
        (&r["result"], &r["id"]),
        (&json!(4), &json!("7")),
        "after {line}, the same client's {text_id} is another call (the id \"7\" is a string, \
         7 a number: two ids), so it runs and its reply carries its own id; got {r}. Key the \
         reply cache by the id's JSON text (Value::to_string), not by its value as text"
    );
}

/// A server that closes the connection right after reading the request: the client sees the
/// end of the connection at once and sends its retry at once, not when its timeout runs out.
#[test]
fn a_closed_connection_is_retried_at_once_part_c() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().flatten().enumerate() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if !matches!(reader.read_line(&mut line), Ok(k) if k > 0) {
                continue;
            }
            if n == 0 {
                let _ = conn.shutdown(std::net::Shutdown::Both);
                let _ = tx.send(("closed", Instant::now()));
                continue;
            }
            let _ = tx.send(("retry", Instant::now()));
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            let reply = json!({"jsonrpc": "2.0", "result": "second", "id": v["id"]});
            let _ = (&conn).write_all(format!("{reply}\n").as_bytes());
            let _ = reader.read_line(&mut line);
        }
    });
    let timeout = Duration::from_millis(2000);
    let mut c = RpcClient::new(("127.0.0.1", port))
        .expect_success("RpcClient::new")
        .with_timeout(timeout)
        .with_retries(1);
    let got = testkit::within(
        "a call whose first connection the server closes",
        DEADLINE,
        "",
        move || c.call("counter.incr", json!([])),
    );
    assert_eq!(
        got.as_ref().ok(),
        Some(&json!("second")),
        "the server closed the first connection without a reply and answered the retry on the \
         second; the call returned {got:?}"
    );
    let (closed, retried) = (rx.recv().unwrap(), rx.recv().unwrap());
    assert_eq!((closed.0, retried.0), ("closed", "retry"));
    let waited = retried.1.duration_since(closed.1);
    assert!(
        waited < timeout / 2,
        "the server closed the connection right after reading the request; the retry came {} ms \
         later, and the client's timeout was {} ms: it noticed the end of the connection only \
         when its timeout ran out. A read that returns 0 bytes (end of stream) means the server \
         closed the connection: drop it and retry at once",
        waited.as_millis(),
        timeout.as_millis()
    );
}

/// Through a proxy that loses the first reply of every third call (by swallowing it or by
/// cutting the connection), 15 counter.incr calls return 1..=15 and the counter is 15.
#[rstest]
#[case::swallowed(Fault::Swallow)]
#[case::connection_cut(Fault::Cut)]
fn retried_incr_counts_once_part_c(#[case] fault: Fault) {
    let server = Server::start();
    let proxy = LossyProxy::start(server.port, fault, |r| {
        r["method"] == "counter.incr"
            && r["params"].as_array().is_some_and(|p| p.is_empty())
            && r["id"].as_u64().is_some_and(|id| id % 3 == 0)
    });
    let port = proxy.port;
    let got = testkit::within(
        "15 calls through a lossy proxy",
        Duration::from_secs(10),
        "",
        move || {
            let mut c = RpcClient::new(("127.0.0.1", port))
                .expect_success("RpcClient::new")
                .with_timeout(Duration::from_millis(300))
                .with_retries(4);
            (0..15)
                .map(|i| {
                    c.counter_incr()
                        .unwrap_or_else(|e| panic!("call {} of counter_incr: {e}", i + 1))
                })
                .collect::<Vec<u64>>()
        },
    );
    assert!(
        proxy.lost() >= 3,
        "the proxy lost only {} replies",
        proxy.lost()
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "15 counter.incr calls through a proxy that lost {} replies (the client then retried on a \
         new connection) returned {got:?}: the counter went back. The counter and the reply \
         cache are shared by every connection: one Service for the whole server",
        proxy.lost()
    );
    let expected: Vec<u64> = (1..=15).collect();
    assert_eq!(
        got,
        expected,
        "15 counter.incr calls, {} of whose replies were lost once, must return 1..=15: a \
         retry must send the same id (and _client) so that the server answers it from its \
         reply cache instead of running it again",
        proxy.lost()
    );
    let r = server
        .connect()
        .ask(&request("counter.incr", json!([]), json!("check")));
    assert_eq!(
        r["result"], 16,
        "after 15 calls, the next counter.incr: {r}"
    );
}

/// `rpc-call` prints one JSON line per result, and an error as one line with exit 1.
#[test]
fn rpc_call_program_part_c() {
    let server = Server::start();
    let port = server.port.to_string();
    let run = |args: &[&str]| {
        testkit::run(
            std::process::Command::new(assert_cmd::cargo::cargo_bin("rpc-call"))
                .args(["--port", &port])
                .args(args),
            &format!("rpc-call {}", args.join(" ")),
            b"",
            DEADLINE,
            "",
        )
    };
    let out = run(&["--repeat", "3", "counter.incr"]);
    assert!(
        out.status.success(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    testkit::assert_same_bytes(
        "rpc-call --repeat 3 counter.incr",
        b"1\n2\n3\n",
        &out.stdout,
    );
    let out = run(&["add", r#"{"a":1,"b":2}"#]);
    assert!(
        out.stdout != b"1\n",
        "after `rpc-call --repeat 3 counter.incr`, another process `rpc-call add {{\"a\":1,\"b\":2}}` \
         printed 1, the reply to the first process's first call: both processes sent the same \
         _client, and the server answered the second's id 1 from its reply cache. A client id \
         must be unique on the machine, not only in its process (the pid, the time and a \
         counter together)"
    );
    testkit::assert_same_bytes("rpc-call add {a:1,b:2}", b"3.0\n", &out.stdout);
    let out = run(&["nope"]);
    assert_eq!(out.status.code(), Some(1), "a call that fails exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("rpc-call: ") && err.contains("-32601") && err.lines().count() == 1,
        "a call that fails: one line `rpc-call: nope: ...` with the error's code on stderr, got \
         {err:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "a call that fails prints no result; it printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}
