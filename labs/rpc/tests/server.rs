//! Part B: `rpc-server` over TCP: the methods, notifications, batches, the standard errors,
//! over-long lines, and `sleep` that delays no other connection.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Server, error_code, request};
use serde_json::{Value, json};

/// `add` by position and by name; integers and fractions.
#[test]
fn add_by_position_and_by_name_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let r = c.ask(&request("add", json!([1, 2]), json!(1)));
    assert_eq!(r["result"].as_f64(), Some(3.0), "add [1, 2]: {r}");
    assert_eq!(r["id"], 1, "the reply carries the request's id: {r}");
    assert_eq!(r["jsonrpc"], "2.0", "{r}");
    let r = c.ask(&request(
        "add",
        json!({"a": 0.5, "b": -2}),
        json!("by-name"),
    ));
    assert_eq!(
        r["result"].as_f64(),
        Some(-1.5),
        "add {{a: 0.5, b: -2}}: {r}"
    );
    assert_eq!(r["id"], "by-name", "{r}");
}

/// `kv.put` returns the previous value (null at first); `kv.get` any JSON value back, null
/// for a missing key; the store is shared by every connection.
#[test]
fn kv_put_and_get_part_b() {
    let server = Server::start();
    let mut a = server.connect();
    let mut b = server.connect();
    let r = a.ask(&request(
        "kv.put",
        json!(["k", {"deep": [1, "two"]}]),
        json!(1),
    ));
    assert_eq!(
        r["result"],
        Value::Null,
        "the first kv.put of a key returns null: {r}"
    );
    let r = b.ask(&request("kv.get", json!({"key": "k"}), json!(2)));
    assert_eq!(
        r["result"],
        json!({"deep": [1, "two"]}),
        "kv.get on another connection: {r}"
    );
    let r = b.ask(&request(
        "kv.put",
        json!({"key": "k", "value": 5}),
        json!(3),
    ));
    assert_eq!(
        r["result"],
        json!({"deep": [1, "two"]}),
        "kv.put returns the old value: {r}"
    );
    let r = a.ask(&request("kv.get", json!(["missing"]), json!(4)));
    assert_eq!(r["result"], Value::Null, "a missing key: {r}");
    assert!(
        r.get("error").is_none(),
        "a missing key is not an error: {r}"
    );
}

/// `counter.incr` counts 1, 2, 3 across connections.
#[test]
fn counter_counts_part_b() {
    let server = Server::start();
    let mut a = server.connect();
    let mut b = server.connect();
    for i in 1..=3 {
        let c = if i == 2 { &mut b } else { &mut a };
        let r = c.ask(&request("counter.incr", json!([]), json!(i)));
        assert_eq!(r["result"], i, "call {i} of counter.incr: {r}");
    }
}

/// Unknown methods are -32601; wrong parameter counts, names and types are -32602.
#[test]
fn method_not_found_and_invalid_params_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let cases = [
        (request("mul", json!([1, 2]), json!(1)), -32601),
        (request("add", json!([1]), json!(2)), -32602),
        (request("add", json!([1, "2"]), json!(3)), -32602),
        (request("add", json!({"a": 1, "c": 2}), json!(4)), -32602),
        (request("kv.get", json!([7]), json!(5)), -32602),
        (request("sleep", json!([-1]), json!(6)), -32602),
        (request("counter.incr", json!([1]), json!(7)), -32602),
    ];
    for (line, code) in cases {
        let r = c.ask(&line);
        assert_eq!(error_code(&r, &line), code, "the reply to {line}: {r}");
        let sent: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            r["id"], sent["id"],
            "an error reply carries the request's id: {r}"
        );
    }
}

/// A notification (no id) is executed but gets no reply, not even an error.
#[test]
fn notifications_get_no_reply_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    c.send(r#"{"jsonrpc":"2.0","method":"counter.incr"}"#);
    c.send(r#"{"jsonrpc":"2.0","method":"no.such.method","params":[1]}"#);
    let line = request("counter.incr", json!([]), json!("after"));
    let r = c.ask(&line);
    assert_eq!(
        r["id"], "after",
        "two notifications were sent, then a request: the first reply line must answer the \
         request, but it was {r}. Notifications get no reply at all"
    );
    assert_eq!(
        r["result"], 2,
        "the notification counter.incr must still run: {r}"
    );
}

/// A batch gets one line: an array with the replies of its requests (not of its
/// notifications); a batch of only notifications gets nothing; `[]` gets one error object.
#[test]
fn batch_replies_in_one_array_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let batch = json!([
        {"jsonrpc": "2.0", "method": "add", "params": [1, 1], "id": "a"},
        {"jsonrpc": "2.0", "method": "counter.incr"},
        {"jsonrpc": "2.0", "method": "nope", "id": "b"},
        {"jsonrpc": "2.0", "method": "counter.incr", "id": "c"},
    ])
    .to_string();
    let r = c.ask(&batch);
    let arr = r.as_array().unwrap_or_else(|| {
        panic!("the reply to a batch must be one line holding an array, got {r}")
    });
    let ids: Vec<&Value> = arr.iter().map(|x| &x["id"]).collect();
    assert_eq!(
        ids,
        [&json!("a"), &json!("b"), &json!("c")],
        "the replies of the batch: {r}"
    );
    assert_eq!(arr[0]["result"].as_f64(), Some(2.0), "{r}");
    assert_eq!(arr[1]["error"]["code"], -32601, "{r}");
    assert_eq!(
        arr[2]["result"], 2,
        "the notification in the batch ran first: {r}"
    );

    c.send(&json!([{"jsonrpc": "2.0", "method": "counter.incr"}]).to_string());
    let r = c.ask(&request("counter.incr", json!([]), json!("next")));
    assert_eq!(
        r["id"], "next",
        "a batch of notifications gets no reply line; got {r}"
    );
    assert_eq!(r["result"], 4, "{r}");

    let r = c.ask("[]");
    assert!(
        r.is_object(),
        "an empty batch gets one error object, not an array: {r}"
    );
    assert_eq!(error_code(&r, "[]"), -32600, "{r}");
}

/// Bad JSON is -32700; an invalid request is -32600; the connection goes on after both.
#[test]
fn parse_error_and_invalid_request_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let r = c.ask(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1"#);
    assert_eq!(error_code(&r, "bad JSON"), -32700, "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
    let r = c.ask(r#"{"jsonrpc":"1.0","method":"add","params":[1,2],"id":9}"#);
    assert_eq!(error_code(&r, "jsonrpc 1.0"), -32600, "{r}");
    let r = c.ask(r#"{"jsonrpc":"2.0","method":"add","params":"1 2","id":9}"#);
    assert_eq!(error_code(&r, "params a string"), -32600, "{r}");
    let r = c.ask(&request("counter.incr", json!([]), json!(2)));
    assert_eq!(
        r["id"], 2,
        "the connection goes on: the next request gets its reply, but got {r}"
    );
}

/// A line over 64 KiB is a parse error, and the next line on that connection is served.
#[test]
fn over_long_line_is_a_parse_error_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let huge = format!(
        r#"{{"jsonrpc":"2.0","method":"kv.put","params":["big","{}"],"id":1}}"#,
        "x".repeat(100_000)
    );
    let r = c.ask_long(huge.as_bytes(), "a kv.put line of 100 KB");
    assert_eq!(error_code(&r, "a 100 KB line"), -32700, "{r}");
    let r = c.ask(&request("kv.get", json!(["big"]), json!(2)));
    assert_eq!(r["id"], 2, "the line after the long one is served: {r}");
    assert_eq!(
        r["result"],
        Value::Null,
        "the long line was not executed: {r}"
    );
}

/// Two connections each send `sleep(1500)` at once: both are answered within 3 s, as the
/// two sleeps run at the same time.
#[test]
fn sleep_delays_no_other_connection_part_b() {
    let server = Server::start();
    let mut first = server.connect();
    let mut second = server.connect();
    let sent = Instant::now();
    first.send(&request("sleep", json!([1500]), json!("first")));
    second.send(&request("sleep", json!([1500]), json!("second")));
    let r1 = first.recv("sleep(1500) on the first connection");
    let r2 = second.recv("sleep(1500) on the second connection");
    let both = sent.elapsed();
    assert_eq!(r1["result"], 1500, "{r1}");
    assert_eq!(r2["result"], 1500, "{r2}");
    assert!(
        both >= Duration::from_millis(1500),
        "sleep(1500) answered after {both:?}"
    );
    assert!(
        both < Duration::from_millis(3000),
        "two connections each sent sleep(1500) at once, and the second reply came {both:?} \
         later: the sleeps ran one after the other. A sleep must not hold up the server (a \
         thread per connection, and no lock held while sleeping)"
    );
}

/// `rpc-server --port 0` listens on 127.0.0.1 only, and says so on its first line.
#[test]
fn listens_on_127_0_0_1_only_part_b() {
    let server = Server::start();
    assert_eq!(
        server.line,
        format!("listening on 127.0.0.1:{}", server.port),
        "rpc-server listens on 127.0.0.1 only (the loopback: no other machine can reach it), \
         not on every address (0.0.0.0); its first line shows the address it bound"
    );
}

/// A port in use is an error (exit 1, one line); a bad argument is a usage error (exit 2).
#[test]
fn errors_of_the_program_part_b() {
    use std::io::{BufRead, Read};
    let server = Server::start();
    let port = server.port.to_string();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("rpc-server"));
    cmd.args(["--port", &port])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut group = testkit::Group::spawn(&mut cmd, format!("rpc-server --port {port}"));
    let stdout = group.child().stdout.take().expect("stdout is piped");
    let mut stderr = group.child().stderr.take().expect("stderr is piped");
    // Its first line, or "" when it ends without one.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        panic!(
            "rpc-server --port {port}, a port in use, neither printed a line nor exited within \
             {DEADLINE:?}; at the deadline:\n{}",
            group.hang_report()
        )
    });
    assert!(
        line.is_empty(),
        "rpc-server --port {port}, a port in use, printed {line:?}: it listens on another port. \
         A port in use is an error: exit 1 with one line `rpc-server: ...` on stderr"
    );
    let status = group.wait_or_explain(DEADLINE, "a server that cannot bind must exit 1");
    let mut err = String::new();
    let _ = stderr.read_to_string(&mut err);
    assert_eq!(
        status.code(),
        Some(1),
        "rpc-server on a port in use must exit 1 (stderr {err:?})"
    );
    assert!(
        err.starts_with("rpc-server: ") && err.lines().count() == 1,
        "rpc-server on a port in use: one line `rpc-server: ...` on stderr, got {err:?}"
    );
    let out = testkit::run(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("rpc-server"))
            .args(["--port", "http"]),
        "rpc-server --port http",
        b"",
        DEADLINE,
        "",
    );
    assert_eq!(out.status.code(), Some(2), "a usage error exits 2");
}
