//! `framing`: a line is what lies between two newlines, however its bytes arrive. Several
//! lines (blank ones among them) in one read; one request cut into pieces, each read by the
//! server before the next is sent (the grader waits on the connection's queues in
//! /proc/net/tcp, so the cuts are real read boundaries, not hoped-for ones), two of them
//! inside multibyte characters; and the 64 KiB cap counted in bytes: a line of exactly
//! 65,536 bytes of mostly two-byte characters is served, one byte more is a parse error
//! that runs nothing.

use serde_json::{Value, json};

use super::PROMPT;
use super::harness::{LineConn, Reply, Server, request, start_server};
use crate::check::{CheckResult, Ctx};
use crate::{ensure, fail};

/// The cap of a line, without its newline.
const MAX_LINE: usize = 64 * 1024;

pub(super) fn framing(ctx: &mut Ctx) -> CheckResult {
    let server = start_server(ctx)?;
    several_lines_in_one_read(&server)?;
    request_cut_at_read_boundaries(&server)?;
    cap_counted_in_bytes(&server)?;
    Ok(())
}

/// The reply is a result (any value) for `id`. (Whether an `"error": null` beside it is
/// allowed is the `wire` and `server` items' business.)
fn is_result_for(reply: &Reply, id: &str) -> bool {
    matches!(reply, Reply::Json(v) if v["id"] == id && v.get("result").is_some() && v["error"].is_null())
}

/// The reply is an error with `code`.
fn is_error(reply: &Reply, code: i64) -> bool {
    matches!(reply, Reply::Json(v) if v["error"]["code"] == code)
}

/// Three requests with a blank line and a line of spaces and `\r` among them, in one write:
/// three reply lines, in order, and the first ran before the second.
fn several_lines_in_one_read(server: &Server) -> CheckResult {
    let mut conn = LineConn::open(server.port)?;
    let lines = [
        &request("kv.put", json!(["note", "ran"]), json!("zero")),
        "",
        "  \r",
        &request("kv.get", json!(["note"]), json!("one")),
        &request("counter.incr", json!([]), json!("two")),
    ];
    let mut sent = lines.join("\n");
    sent.push('\n');
    conn.send_raw(sent.as_bytes())?;
    let shown = "kv.put [\"note\", \"ran\"] (id \"zero\"), an empty line, a line of two spaces \
                 and \\r, kv.get [\"note\"] (id \"one\") and counter.incr (id \"two\"), written \
                 at once (one read for the server)";
    for (k, id) in ["zero", "one", "two"].into_iter().enumerate() {
        let reply = conn.recv(PROMPT);
        if is_error(&reply, -32700) {
            fail!(
                "sent {shown}; reply line {} was {}: a blank line got a parse error. Blank lines \
                 (nothing but spaces, tabs and \\r) are ignored: no reply at all",
                k + 1,
                reply.describe()
            );
        }
        ensure!(
            matches!(&reply, Reply::Json(v) if v["id"] == id),
            "sent {shown}; reply line {} was {}; expected the reply with id \"{id}\". Every line \
             of a read is a line of its own, handled in order, whatever else the same read holds",
            k + 1,
            reply.describe()
        );
        if id == "one" {
            ensure!(
                matches!(&reply, Reply::Json(v) if v["result"] == "ran"),
                "sent {shown}; kv.get [\"note\"] returned {}, not \"ran\": the kv.put before it \
                 in the same read had not run. Lines are handled in the order they came",
                reply.describe()
            );
        }
    }
    Ok(())
}

/// One request in four pieces (after `{"jsonrpc":"2.0",`, inside the two bytes of "é",
/// inside the three bytes of "✓"), each read by the server before the next is sent.
fn request_cut_at_read_boundaries(server: &Server) -> CheckResult {
    let line = r#"{"jsonrpc":"2.0","method":"kv.put","params":["clé","naïve ✓"],"id":"cut"}"#;
    let bytes = format!("{line}\n").into_bytes();
    let at = |s: &str, extra: usize| line.find(s).expect("in the line") + extra;
    let cuts = [at(r#""method""#, 0), at("é", 1), at("✓", 1), bytes.len()];
    let what = "kv.put [\"clé\", \"naïve ✓\"] (id \"cut\") sent in 4 pieces, each read by the \
                server before the next was sent: cut after `{\"jsonrpc\":\"2.0\",`, between the \
                2 bytes of \"é\" and between the first and second of the 3 bytes of \"✓\"";
    let mut conn = LineConn::open(server.port)?;
    let mut from = 0;
    for &to in &cuts {
        conn.send_raw(&bytes[from..to])?;
        if to < bytes.len() && !conn.server_has_read(server.addr(), PROMPT) {
            fail!(
                "sent the first {to} bytes of a request (no newline yet); rpc-server did not read \
                 them within {} s. Read whatever arrives, and keep it until the newline comes",
                PROMPT.as_secs()
            );
        }
        from = to;
    }
    let reply = conn.recv(PROMPT);
    if !is_result_for(&reply, "cut") {
        let cause = if is_error(&reply, -32700) {
            ": the server took a piece of the request for a whole line, and it is not JSON"
        } else {
            ""
        };
        fail!(
            "{what}; the reply was {}, not the reply to it (\"result\": null, \"id\": \"cut\"){cause}. \
             A line ends at its newline, not where a read ends: keep the bytes of every read \
             until the newline comes, and decode UTF-8 only once the line is whole (a read may \
             end inside a character)",
            reply.describe()
        );
    }
    let reply = conn.ask(request("kv.get", json!(["clé"]), json!("get")).as_bytes())?;
    ensure!(
        matches!(&reply, Reply::Json(v) if v["result"] == "naïve ✓"),
        "after {what}, kv.get [\"clé\"] returned {}; expected \"naïve ✓\": the pieces must be \
         put together byte for byte. A read may end inside a character: decode UTF-8 only once \
         the line is whole",
        reply.describe()
    );
    Ok(())
}

/// A kv.put line of exactly `len` bytes (without its newline) whose value is mostly "é"
/// (two bytes each), and the value.
fn line_of(len: usize, key: &str, id: &str) -> (String, String) {
    let head = format!(r#"{{"jsonrpc":"2.0","method":"kv.put","params":["{key}",""#);
    let tail = format!(r#""],"id":"{id}"}}"#);
    let room = len - head.len() - tail.len();
    let value = format!("{}{}", "é".repeat(room / 2), "x".repeat(room % 2));
    let line = format!("{head}{value}{tail}");
    assert_eq!(line.len(), len);
    (line, value)
}

/// A line of exactly 65,536 bytes is served whole; one of 65,537 bytes is a parse error that
/// runs nothing, and the line after it is served.
fn cap_counted_in_bytes(server: &Server) -> CheckResult {
    let mut conn = LineConn::open(server.port)?;
    let (at_cap, value) = line_of(MAX_LINE, "wide", "65536");
    let chars = at_cap.chars().count();
    conn.send_long(at_cap.as_bytes(), server.addr())?;
    let reply = conn.recv(PROMPT);
    if !is_result_for(&reply, "65536") {
        fail!(
            "sent a kv.put line of exactly 65,536 bytes ({chars} characters: \"é\" takes 2 \
             bytes); the reply was {}; expected its result (\"id\": \"65536\"). The cap is \
             64 KiB = 65,536 bytes without the newline, and a line of that many bytes is \
             served: count bytes, and refuse only a line longer than the cap",
            reply.describe()
        );
    }
    let reply = conn.ask(request("kv.get", json!(["wide"]), json!("wide")).as_bytes())?;
    let whole = matches!(&reply, Reply::Json(v) if v["result"].as_str() == Some(value.as_str()));
    ensure!(
        whole,
        "after a kv.put line of exactly 65,536 bytes, kv.get [\"wide\"] returned {}: not the \
         {}-byte value that line put",
        match &reply {
            Reply::Json(Value::Object(o)) => match o.get("result").and_then(Value::as_str) {
                Some(s) => format!("a string of {} bytes", s.len()),
                None => reply.describe(),
            },
            _ => reply.describe(),
        },
        value.len()
    );

    let (over, _) = line_of(MAX_LINE + 1, "wider", "65537");
    let chars = over.chars().count();
    conn.send_long(over.as_bytes(), server.addr())?;
    let reply = conn.recv(PROMPT);
    if is_result_for(&reply, "65537") {
        fail!(
            "sent a kv.put line of 65,537 bytes ({chars} characters: \"é\" takes 2 bytes), one \
             byte over the cap; it was run ({}). A line longer than 65,536 bytes is a parse \
             error and runs nothing: count the bytes of a line, not its characters",
            reply.describe()
        );
    }
    ensure!(
        is_error(&reply, -32700),
        "sent a kv.put line of 65,537 bytes, one byte over the cap; the reply was {}; expected a \
         -32700 (Parse error) with id null",
        reply.describe()
    );
    let probe = request("kv.get", json!(["wider"]), json!("after"));
    let reply = conn.ask(probe.as_bytes())?;
    if is_error(&reply, -32700) {
        fail!(
            "after a line of 65,537 bytes and its parse error, `{probe}` on the same connection \
             got another parse error ({}): the server read the rest of the long line as a line of \
             its own. Past the cap, skip the rest of the line up to its newline",
            reply.describe()
        );
    }
    ensure!(
        matches!(&reply, Reply::Json(v) if v["id"] == "after" && v["result"].is_null()),
        "after a line of 65,537 bytes and its parse error, `{probe}` got {}; expected \
         \"result\": null, \"id\": \"after\" (the long line must run nothing)",
        reply.describe()
    );
    Ok(())
}
