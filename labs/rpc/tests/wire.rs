//! Part A: marshalling. A line becomes a request, a batch or the standard error; a reply
//! becomes a line; a request becomes a line a server can read back.

use rpc::wire::{
    self, ErrorObject, INVALID_REQUEST, Message, PARSE_ERROR, Params, Request, Response,
    encode_replies, parse_line, parse_request,
};
use rstest::rstest;
use serde_json::{Value, json};

#[track_caller]
fn single(line: &str) -> Result<Request, Response> {
    match parse_line(line.as_bytes()) {
        Message::Single(entry) => entry,
        other => panic!(
            "parse_line({line:?}) should give Message::Single, gave {}",
            shown(&other)
        ),
    }
}

#[track_caller]
fn rejected(line: &[u8]) -> Response {
    match parse_line(line) {
        Message::Reject(r) => r,
        other => panic!(
            "parse_line({}) should give Message::Reject, gave {}",
            testkit::compare::show(line),
            shown(&other)
        ),
    }
}

/// `{other:?}` with every character outside ASCII escaped (a U+FFFD made of bytes that
/// were not UTF-8 reads as garbage in a report).
fn shown(other: &Message) -> String {
    format!("{other:?}")
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// A request by position parses into its method, params and id.
#[test]
fn parses_a_request_by_position_part_a() {
    let r = single(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#)
        .expect("a valid request");
    assert_eq!(r.method, "add");
    assert_eq!(r.params, Params::ByPosition(vec![json!(1), json!(2)]));
    assert_eq!(r.id, Some(json!(1)));
    assert_eq!(r.client, None);
}

/// Params by name, a string id and the `_client` member are kept.
#[test]
fn parses_named_params_string_id_and_client_part_a() {
    let r = single(
        r#"{"jsonrpc":"2.0","method":"kv.put","params":{"key":"k","value":[1]},"id":"q","_client":"c1"}"#,
    )
    .expect("a valid request");
    let mut m = serde_json::Map::new();
    m.insert("key".into(), json!("k"));
    m.insert("value".into(), json!([1]));
    assert_eq!(r.params, Params::ByName(m));
    assert_eq!(r.id, Some(json!("q")));
    assert_eq!(r.client.as_deref(), Some("c1"));
}

/// No `id` member is a notification (`id: None`); `"id": null` is a request with a null id.
#[test]
fn notification_has_no_id_part_a() {
    let n = single(r#"{"jsonrpc":"2.0","method":"counter.incr"}"#).expect("valid");
    assert_eq!(n.id, None, "no id member: a notification");
    assert_eq!(n.params, Params::None);
    let r = single(r#"{"jsonrpc":"2.0","method":"counter.incr","id":null}"#).expect("valid");
    assert_eq!(
        r.id,
        Some(Value::Null),
        "\"id\": null is a request, not a notification"
    );
}

/// Text that is not JSON, or not UTF-8, is a parse error with a null id.
#[rstest]
#[case::not_json(b"{\"jsonrpc\":\"2.0\",\"method\"".as_slice())]
#[case::garbage(b"hello".as_slice())]
#[case::two_texts(b"{} {}".as_slice())]
#[case::not_utf8(b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\",\"id\":1}".as_slice())]
fn bad_json_is_a_parse_error_part_a(#[case] line: &[u8]) {
    let r = rejected(line);
    assert_eq!(r.id, Value::Null);
    assert_eq!(r.outcome.map_err(|e| e.code), Err(PARSE_ERROR));
}

/// Each way a request object can be invalid is -32600; the id is echoed when it is valid.
#[rstest]
#[case::wrong_version(r#"{"jsonrpc":"1.0","method":"add","id":4}"#, json!(4))]
#[case::no_version(r#"{"method":"add","id":4}"#, json!(4))]
#[case::method_not_a_string(r#"{"jsonrpc":"2.0","method":5,"id":"x"}"#, json!("x"))]
#[case::no_method(r#"{"jsonrpc":"2.0","id":4}"#, json!(4))]
#[case::params_a_number(r#"{"jsonrpc":"2.0","method":"add","params":5,"id":4}"#, json!(4))]
#[case::params_a_string(r#"{"jsonrpc":"2.0","method":"add","params":"1,2","id":4}"#, json!(4))]
#[case::id_an_object(r#"{"jsonrpc":"2.0","method":"add","id":{"a":1}}"#, Value::Null)]
#[case::id_a_bool(r#"{"jsonrpc":"2.0","method":"add","id":true}"#, Value::Null)]
#[case::not_an_object(r#""add""#, Value::Null)]
#[case::invalid_without_id(r#"{"jsonrpc":"2.0","method":1}"#, Value::Null)]
#[case::client_a_number(r#"{"jsonrpc":"2.0","method":"add","id":4,"_client":7}"#, json!(4))]
#[case::client_null(r#"{"jsonrpc":"2.0","method":"add","id":4,"_client":null}"#, json!(4))]
fn invalid_requests_are_32600_part_a(#[case] line: &str, #[case] id: Value) {
    let r = single(line).expect_err("an invalid request gets an error reply");
    assert_eq!(r.id, id, "the id of the reply to {line}");
    let code = r.outcome.map_err(|e| e.code);
    assert_eq!(code, Err(INVALID_REQUEST), "the reply to {line}");
}

/// Members other than `jsonrpc`, `method`, `params`, `id` and `_client` are ignored: the
/// request is valid.
#[test]
fn other_members_are_ignored_part_a() {
    let line = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1,"trace":true,"meta":{"from":"x"}}"#;
    let r = single(line).unwrap_or_else(|e| {
        panic!(
            "{line} is a valid request (members other than jsonrpc, method, params, id and \
             _client are ignored), but parse_line gave the error reply {e:?}"
        )
    });
    assert_eq!(r.method, "add");
    assert_eq!(r.id, Some(json!(1)));
    assert_eq!(r.client, None);
}

/// `[]` is one -32600 error (not an array); a batch keeps its elements in order, each
/// checked alone.
#[test]
fn batches_part_a() {
    let r = rejected(b"[]");
    assert_eq!(r.outcome.map_err(|e| e.code), Err(INVALID_REQUEST));
    let Message::Batch(entries) = parse_line(
        br#"[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}, 7, {"jsonrpc":"2.0","method":"kv.get","params":["k"]}]"#,
    ) else {
        panic!("a non-empty array is a Message::Batch");
    };
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].as_ref().map(|r| r.method.as_str()), Ok("add"));
    let bad = entries[1].as_ref().expect_err("7 is not a request");
    assert_eq!(
        bad.outcome.as_ref().map_err(|e| e.code),
        Err(INVALID_REQUEST)
    );
    assert_eq!(entries[2].as_ref().map(|r| r.id.clone()), Ok(None));
}

/// A request written by `to_line` reads back the same, `_client` included.
#[test]
fn request_round_trip_part_a() {
    let r = Request {
        method: "kv.put".into(),
        params: Params::ByPosition(vec![json!("k"), json!({"x": [1, 2]})]),
        id: Some(json!(42)),
        client: Some("me-1".into()),
    };
    let line = r.to_line();
    assert!(!line.contains('\n'), "one line: {line:?}");
    let v: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["jsonrpc"], "2.0", "{line}");
    assert_eq!(v[wire::CLIENT_MEMBER], "me-1", "{line}");
    assert_eq!(parse_request(v), Ok(r));
}

/// Replies: a result, an error object with code and message, one object for a single
/// request, an array for a batch, nothing for no replies.
#[test]
fn replies_encode_part_a() {
    let ok = Response {
        id: json!(1),
        outcome: Ok(json!(3.0)),
    };
    let err = Response::error(json!("a"), ErrorObject::method_not_found("nope"));
    assert_eq!(
        ok.to_value(),
        json!({"jsonrpc": "2.0", "result": 3.0, "id": 1})
    );
    let e = err.to_value();
    assert_eq!(e["error"]["code"], -32601, "{e}");
    assert!(e["error"]["message"].is_string(), "{e}");
    assert_eq!(e["id"], "a");
    assert!(
        e.get("result").is_none(),
        "an error reply has no result: {e}"
    );
    let null_result = Response {
        id: json!(2),
        outcome: Ok(Value::Null),
    };
    assert_eq!(
        null_result.to_value(),
        json!({"jsonrpc": "2.0", "result": null, "id": 2}),
        "a null result is still a result member"
    );
    assert_eq!(encode_replies(vec![], true), None);
    let one: Value =
        serde_json::from_str(&encode_replies(vec![ok.clone()], false).unwrap()).unwrap();
    assert!(one.is_object(), "{one}");
    let line = encode_replies(vec![ok.clone(), err.clone()], true).unwrap();
    assert!(!line.contains('\n'), "a batch reply is one line: {line:?}");
    let both: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(both, json!([ok.to_value(), err.to_value()]));
    assert_eq!(Response::from_value(&err.to_value()), Ok(err));
    assert_eq!(
        Response::from_value(&null_result.to_value()),
        Ok(null_result)
    );
}
