//! Hidden tests: edge cases of the protocol and the server.

mod common;

use std::io::Write;

use common::{Server, error_code, request};
use rpc::{Service, server::respond};
use serde_json::{Value, json};

/// Blank lines get no reply; a null id is answered with a null id.
#[test]
fn blank_lines_and_null_id_part_b() {
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
    assert_eq!(r["result"].as_f64(), Some(3.0), "{r}");
}

/// A batch of invalid elements gets an array of -32600 errors; a batch of only
/// notifications (even failing ones) gets no reply.
#[test]
fn odd_batches_part_b() {
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
fn params_by_name_exactly_part_b() {
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
fn long_lines_and_a_last_line_without_newline_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let value = "y".repeat(60_000);
    let r = c.ask(&request("kv.put", json!(["k", value]), json!(1)));
    assert_eq!(r["id"], 1, "a 60 KB line is under the cap and served: {r}");
    let r = c.ask(&request("kv.get", json!(["k"]), json!(2)));
    assert_eq!(r["result"].as_str().map(str::len), Some(60_000));
    c.writer
        .write_all(request("add", json!([2, 3]), json!(3)).as_bytes())
        .unwrap();
    c.writer.shutdown(std::net::Shutdown::Write).unwrap();
    let r = c.recv("a last line without a newline, then the end of the connection");
    assert_eq!(r["result"].as_f64(), Some(5.0), "{r}");
}

/// Two over-long lines in a row and garbage bytes: each gets its parse error, in order.
#[test]
fn garbage_in_a_row_part_b() {
    let server = Server::start();
    let mut c = server.connect();
    let big = "z".repeat(200_000);
    c.send(&big);
    c.send(&big);
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
    assert_eq!(r["id"], 9, "{r}");
}
