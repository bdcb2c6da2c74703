//! `error_codes`: every standard error against malformed input, sent by the grader one case
//! per line on one connection, which must go on working after each.

use serde_json::{Value, json};

use super::harness::{LineConn, Reply, Server, request, shown, start_server, stderr_of};
use crate::check::{CheckResult, Ctx};
use crate::{ensure, fail};

/// The id an error reply must carry.
enum Id {
    /// Exactly this one (the request's, which could be read).
    Is(Value),
    /// Null: the id could not be read (not JSON, or an id of a wrong type).
    Null,
    /// The request's id or null (the specification allows both for an invalid request).
    EchoOrNull(Value),
}

fn name(code: i64) -> &'static str {
    match code {
        -32700 => "Parse error",
        -32600 => "Invalid Request",
        -32601 => "Method not found",
        -32602 => "Invalid params",
        _ => "?",
    }
}

/// The cases: what is sent, why it is wrong, the code and the id of the reply.
fn cases() -> Vec<(Vec<u8>, &'static str, i64, Id)> {
    let v = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1"#),
            "JSON cut short",
            -32700,
            Id::Null,
        ),
        (v("hello, server"), "not JSON", -32700, Id::Null),
        (
            b"\xff\xfe\x00garbage".to_vec(),
            "bytes that are not UTF-8",
            -32700,
            Id::Null,
        ),
        (
            v(r#"{"jsonrpc":"1.0","method":"add","params":[1,2],"id":2}"#),
            "\"jsonrpc\": \"1.0\"",
            -32600,
            Id::EchoOrNull(json!(2)),
        ),
        (
            v(r#"{"method":"add","params":[1,2],"id":3}"#),
            "no \"jsonrpc\" member",
            -32600,
            Id::EchoOrNull(json!(3)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{"n":1}}"#),
            "an id that is an object",
            -32600,
            Id::Null,
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":[4]}"#),
            "an id that is an array",
            -32600,
            Id::Null,
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":true}"#),
            "an id that is a boolean",
            -32600,
            Id::Null,
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":7,"id":5}"#),
            "params that are a number",
            -32600,
            Id::EchoOrNull(json!(5)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":"1,2","id":6}"#),
            "params that are a string",
            -32600,
            Id::EchoOrNull(json!(6)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":42,"id":7}"#),
            "a method that is a number",
            -32600,
            Id::EchoOrNull(json!(7)),
        ),
        (
            v(r#""add""#),
            "a string, not a request object",
            -32600,
            Id::Null,
        ),
        (v("[]"), "an empty batch", -32600, Id::Null),
        (
            v(r#"{"jsonrpc":"2.0","method":"counter.incr","id":14,"_client":42}"#),
            "a _client that is a number",
            -32600,
            Id::EchoOrNull(json!(14)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"counter.incr","id":15,"_client":{"name":"c"}}"#),
            "a _client that is an object",
            -32600,
            Id::EchoOrNull(json!(15)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"pow","params":[2,3],"id":8}"#),
            "an unknown method",
            -32601,
            Id::Is(json!(8)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":["1",2],"id":9}"#),
            "add of a string",
            -32602,
            Id::Is(json!(9)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"add","params":[1,2,3],"id":"ten"}"#),
            "add of three numbers",
            -32602,
            Id::Is(json!("ten")),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"kv.put","params":{"key":"k"},"id":11}"#),
            "kv.put without a value",
            -32602,
            Id::Is(json!(11)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"sleep","params":{"ms":-5},"id":12}"#),
            "sleep of -5 ms",
            -32602,
            Id::Is(json!(12)),
        ),
        (
            v(r#"{"jsonrpc":"2.0","method":"kv.put","params":[5,"five"],"id":16}"#),
            "kv.put with a key that is a number",
            -32602,
            Id::Is(json!(16)),
        ),
    ]
}

/// Whether `reply` is the error `code` with the right id; otherwise what was expected.
fn judge(reply: &Value, code: i64, id: &Id) -> Result<(), String> {
    let want_id = match id {
        Id::Is(v) => v.to_string(),
        Id::Null => "null".into(),
        Id::EchoOrNull(v) => format!("{v} or null"),
    };
    let expected = format!(
        "an error object with \"code\": {code} ({}) and \"id\": {want_id}",
        name(code)
    );
    let got_code = reply["error"]["code"].as_i64();
    let id_ok = match id {
        Id::Is(v) => reply.get("id") == Some(v),
        Id::Null => reply.get("id") == Some(&Value::Null),
        Id::EchoOrNull(v) => reply.get("id") == Some(v) || reply.get("id") == Some(&Value::Null),
    };
    let shape_ok = reply["jsonrpc"] == "2.0"
        && reply["error"]["message"].is_string()
        && reply.get("result").is_none();
    if got_code == Some(code) && id_ok && shape_ok {
        return Ok(());
    }
    let hint = match (got_code, code) {
        (Some(-32600), -32602) => {
            ". -32600 (Invalid Request) is for a request object that is malformed (jsonrpc, method, id, params not an array or object); a well-formed request whose params the method cannot take is -32602 (Invalid params)"
        }
        (Some(-32602), -32600) => {
            ". -32602 (Invalid params) is for params a method cannot take; a request object that is malformed (params neither an array nor an object, a bad id or method) is -32600 (Invalid Request)"
        }
        (Some(-32600), -32700) | (Some(-32700), -32600) => {
            ". -32700 is for text that is not JSON; -32600 for JSON that is not a valid request"
        }
        _ if got_code == Some(code) && !id_ok => {
            ". The id of an error reply is the request's id when it could be read, and null otherwise"
        }
        _ if got_code == Some(code) => {
            ". An error reply has \"jsonrpc\": \"2.0\", an \"error\" with an integer \"code\" and a string \"message\", and no \"result\""
        }
        _ => "",
    };
    Err(format!("expected {expected}{hint}"))
}

/// What the server held before the malformed input: put on a connection of its own, and
/// read back at the end on another.
const KEPT: (&str, &str) = ("kept", "safe");

/// Every malformed case gets its error on one connection, which then still serves a call; a
/// line over 64 KiB is a parse error; a batch of two invalid elements gets an array of two
/// errors; what the server held before is still there.
pub(super) fn error_codes(ctx: &mut Ctx) -> CheckResult {
    let mut server = start_server(ctx)?;
    // Put on a connection kept open and read back on it at the end: whether other
    // connections share the store is the `server` item's business.
    let put = request("kv.put", json!([KEPT.0, KEPT.1]), json!("keep"));
    let mut keeper = LineConn::open(server.port)?;
    let reply = keeper.ask(put.as_bytes())?;
    ensure!(
        matches!(&reply, Reply::Json(v) if v["id"] == "keep"),
        "`{put}` got {}",
        reply.describe()
    );
    let mut conn = LineConn::open(server.port)?;
    for (sent, why, code, id) in cases() {
        let reply = conn.ask(&sent)?;
        let Reply::Json(v) = &reply else {
            fail!(
                "sent {why}: `{}`; got {} instead of an error reply with code {code} ({}). Bad \
                 input gets an error reply, and the connection goes on{}",
                shown(&sent),
                reply.describe(),
                name(code),
                aftermath(&mut server, &mut keeper)
            );
        };
        if let Err(expected) = judge(v, code, &id) {
            fail!(
                "sent {why}: `{}`; the reply was {}; {expected}",
                shown(&sent),
                reply.describe()
            );
        }
    }

    // Every kind of id the contract allows is valid, not only the small integers: a server
    // that takes an id as an i64 answers -32600 to a good request.
    for id in [json!(-7), json!(2.5), json!(u64::MAX), json!("x-2.5")] {
        let sent = request("add", json!([1, 2]), id.clone());
        let reply = conn.ask(sent.as_bytes())?;
        ensure!(
            matches!(&reply, Reply::Json(v) if v["id"] == id && v["result"].is_number()),
            "sent `{}`; the reply was {}; expected its result, with the same id. An id is a \
             string, a number (negative, fractional or past i64 alike) or null: only an id of \
             another type (an object, an array, a bool) is -32600 (Invalid Request)",
            sent.trim_end(),
            reply.describe()
        );
    }

    let sent = br#"[1, {"jsonrpc":"2.0","id":3}]"#;
    let reply = conn.ask(sent)?;
    let ok = match &reply {
        Reply::Json(Value::Array(a)) => {
            a.len() == 2
                && a.iter()
                    .all(|e| judge(e, -32600, &Id::EchoOrNull(json!(3))).is_ok())
        }
        _ => false,
    };
    ensure!(
        ok,
        "sent a batch of two invalid requests: `{}`; the reply was {}; expected one line with an \
         array of two -32600 (Invalid Request) error objects",
        shown(sent),
        reply.describe()
    );

    let long = format!(
        r#"{{"jsonrpc":"2.0","method":"kv.put","params":["k","{}"],"id":13}}"#,
        "x".repeat(70_000)
    );
    conn.send_long(long.as_bytes(), server.addr())?;
    let reply = conn.recv(super::PROMPT);
    let ok = matches!(&reply, Reply::Json(v) if judge(v, -32700, &Id::Null).is_ok());
    ensure!(
        ok,
        "sent a line of 70,000 bytes (over the 64 KiB cap); the reply was {}; expected a -32700 \
         (Parse error) reply with id null: read at most 64 KiB of a line, then skip the rest of \
         it up to its newline",
        reply.describe()
    );
    // The probe's result is judged too (the long line must not have run), but any reply with
    // its id shows that the connection goes on.
    let probe = request("kv.get", json!(["k"]), json!("after"));
    let reply = conn.ask(probe.as_bytes())?;
    if matches!(&reply, Reply::Json(v) if v["error"]["code"] == -32700) {
        fail!(
            "after the 70,000-byte line and its -32700, `{probe}` on the same connection got \
             another -32700 ({}): the server read part of the long line as a line of its own. \
             That is what a server does that stops at the cap without skipping the rest of the \
             line up to its newline, or that ends a line where a read ends (a long line arrives \
             in several reads)",
            reply.describe()
        );
    }
    ensure!(
        matches!(&reply, Reply::Json(v) if v["id"] == "after"),
        "after all the malformed lines, `{probe}` on the same connection got {} instead of its \
         reply: bad input must cost only its own reply",
        reply.describe()
    );
    ensure!(
        matches!(&reply, Reply::Json(v) if v["result"].is_null() && v.get("error").is_none()),
        "the over-long kv.put [\"k\", ...] line must not be executed, but `{probe}` then got {}",
        reply.describe()
    );
    let get = request("kv.get", json!([KEPT.0]), json!("kept"));
    let reply = keeper.ask(get.as_bytes())?;
    ensure!(
        matches!(&reply, Reply::Json(v) if v["result"] == KEPT.1),
        "before the malformed input, kv.put [\"{}\", \"{}\"] ran on a connection of its own; \
         after it, `{get}` on that connection got {}: bad input must never lose what the \
         server holds",
        KEPT.0,
        KEPT.1,
        reply.describe()
    );
    Ok(())
}

/// After a case got no reply: whether the server still runs and still holds what was put
/// before, for the message.
fn aftermath(server: &mut Server, keeper: &mut LineConn) -> String {
    if let Some(ending) = server.proc.try_ending() {
        return format!(
            ". rpc-server {} ({}): bad input must never crash the server",
            ending.describe(),
            stderr_of(&server.proc)
        );
    }
    let get = request("kv.get", json!([KEPT.0]), json!("kept"));
    let reply = keeper.ask(get.as_bytes());
    let held = matches!(&reply, Ok(Reply::Json(v)) if v["result"] == KEPT.1);
    let stderr = stderr_of(&server.proc);
    if held {
        format!(". The server still runs and holds its data; {stderr}")
    } else {
        format!(
            ". Then `{get}` on another connection got {} (the value it put before was \"{}\"): the \
             bad input has cost every client the server's data. Bad input must never crash the \
             server nor lose what it holds: answer with the error, and never panic in a \
             connection's thread (a panic while a lock is held poisons it for everyone); {stderr}",
            match &reply {
                Ok(r) => r.describe(),
                Err(e) => e.0.clone(),
            },
            KEPT.1
        )
    }
}
