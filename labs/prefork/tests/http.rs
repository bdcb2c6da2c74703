//! Part A: request heads, response heads, content types and paths under the root, as pure
//! functions.

mod common;

use std::path::Path;

use prefork::http::{
    MAX_HEADERS, MAX_REQUEST_LINE, Method, Parsed, content_type, parse_request, resolve,
    response_head,
};
use rstest::rstest;

#[track_caller]
fn complete(buf: &[u8]) -> (prefork::http::Request, usize) {
    match parse_request(buf) {
        Parsed::Complete(r, n) => (r, n),
        other => panic!(
            "parse_request({:?}) should be Complete, got {other:?}",
            String::from_utf8_lossy(buf)
        ),
    }
}

/// A GET with headers: method, target, keep-alive, and the length used.
#[test]
fn parses_a_get_part_a() {
    let buf = b"GET /a/b.txt?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\nNEXT";
    let (r, used) = complete(buf);
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.target, "/a/b.txt?x=1");
    assert!(
        r.keep_alive,
        "HTTP/1.1 keeps the connection unless `Connection: close`"
    );
    assert_eq!(
        &buf[used..],
        b"NEXT",
        "the length used must end after the blank line"
    );
}

/// HEAD, other methods, and the keep-alive rules of HTTP/1.1 and HTTP/1.0.
#[rstest]
#[case::head("HEAD / HTTP/1.1\r\n\r\n", Method::Head, true)]
#[case::post("POST / HTTP/1.1\r\n\r\n", Method::Other("POST".into()), true)]
#[case::close("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", Method::Get, false)]
#[case::close_any_case("GET / HTTP/1.1\r\nconnection: Close\r\n\r\n", Method::Get, false)]
#[case::http10("GET / HTTP/1.0\r\n\r\n", Method::Get, false)]
#[case::http10_keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Method::Get, true)]
#[case::bare_lf("GET / HTTP/1.1\nHost: h\n\n", Method::Get, true)]
fn methods_and_keep_alive_part_a(#[case] req: &str, #[case] method: Method, #[case] keep: bool) {
    let (r, used) = complete(req.as_bytes());
    assert_eq!((r.method, r.keep_alive), (method, keep), "for {req:?}");
    assert_eq!(used, req.len(), "for {req:?}");
}

/// Heads that are not whole yet are Partial.
#[rstest]
#[case::empty("")]
#[case::half_line("GET /index.ht")]
#[case::no_blank_line("GET / HTTP/1.1\r\nHost: h\r\n")]
fn partial_heads_part_a(#[case] req: &str) {
    assert_eq!(
        parse_request(req.as_bytes()),
        Parsed::Partial,
        "for {req:?}"
    );
}

/// Malformed heads are 400.
#[rstest]
#[case::two_words("GET /\r\n\r\n")]
#[case::four_words("GET / HTTP/1.1 x\r\n\r\n")]
#[case::no_slash("GET index.html HTTP/1.1\r\n\r\n")]
#[case::bad_version("GET / HTTP/2.0\r\n\r\n")]
#[case::bad_method("G(T / HTTP/1.1\r\n\r\n")]
#[case::header_without_colon("GET / HTTP/1.1\r\nHost h\r\n\r\n")]
#[case::body("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")]
fn malformed_is_400_part_a(#[case] req: &str) {
    assert_eq!(
        parse_request(req.as_bytes()),
        Parsed::Error(400),
        "for {req:?}"
    );
}

/// Bytes no request may hold are 400, never a panic: a target that is not UTF-8, NUL and
/// other control bytes, a header name that is not a token.
#[test]
fn bad_bytes_are_400_part_a() {
    for req in [
        &b"GET /caf\xe9 HTTP/1.1\r\n\r\n"[..],
        b"GET /a\x00b HTTP/1.1\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n\xff\xfe: x\r\n\r\n",
        b"\xff\xff\xff / HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(
            parse_request(req),
            Parsed::Error(400),
            "for {}",
            testkit::compare::show(req)
        );
    }
}

/// A request line longer than the limit is 414, even before its end arrives; too many
/// header bytes are 431.
#[test]
fn oversized_is_414_or_431_part_a() {
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
    assert_eq!(parse_request(long.as_bytes()), Parsed::Error(414));
    let unfinished = format!("GET /{}", "a".repeat(MAX_REQUEST_LINE + 10));
    assert_eq!(
        parse_request(unfinished.as_bytes()),
        Parsed::Error(414),
        "a request line already longer than the limit must be refused before its end"
    );
    let mut many = String::from("GET / HTTP/1.1\r\n");
    while many.len() < MAX_HEADERS + 100 {
        many.push_str("X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    assert_eq!(
        parse_request(many.as_bytes()),
        Parsed::Error(431),
        "header lines over the limit, the blank line not even arrived yet"
    );
    many.push_str("\r\n");
    assert_eq!(parse_request(many.as_bytes()), Parsed::Error(431));
}

/// The response head: status line, Content-Length, Content-Type, Connection, extra lines,
/// the blank line.
#[test]
fn response_heads_part_a() {
    let h = response_head(405, Some("text/plain"), 7, true, &["Allow: GET, HEAD"]);
    assert!(
        h.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{h:?}"
    );
    for line in [
        "Content-Length: 7\r\n",
        "Content-Type: text/plain\r\n",
        "Connection: keep-alive\r\n",
        "Allow: GET, HEAD\r\n",
    ] {
        assert!(h.contains(line), "{h:?} lacks {line:?}");
    }
    assert!(h.ends_with("\r\n\r\n"), "{h:?}");
    let h = response_head(200, None, 0, false, &[]);
    assert!(h.starts_with("HTTP/1.1 200 OK\r\n") && h.contains("Connection: close\r\n"));
}

/// Content types by extension, any case.
#[rstest]
#[case("a.html", "text/html")]
#[case("A.HTM", "text/html")]
#[case("a.txt", "text/plain")]
#[case("a.css", "text/css")]
#[case("a.js", "text/javascript")]
#[case("a.json", "application/json")]
#[case("a.png", "image/png")]
#[case("a.jpeg", "image/jpeg")]
#[case("a.svg", "image/svg+xml")]
#[case("a.bin", "application/octet-stream")]
#[case("noext", "application/octet-stream")]
fn content_types_part_a(#[case] file: &str, #[case] want: &str) {
    let got = content_type(Path::new(file));
    assert!(
        got.starts_with(want),
        "content_type({file:?}) = {got:?}, expected {want}"
    );
}

/// Files under the root resolve; directories mean their index.html; the query is ignored;
/// percent escapes are decoded.
#[test]
fn resolves_files_part_a() {
    let www = common::Www::new();
    let root = www.root();
    let real = root.canonicalize().unwrap();
    assert_eq!(resolve(&root, "/4k.bin"), Ok(real.join("4k.bin")));
    assert_eq!(resolve(&root, "/4k.bin?v=2"), Ok(real.join("4k.bin")));
    assert_eq!(resolve(&root, "/"), Ok(real.join("index.html")));
    assert_eq!(resolve(&root, "/docs/"), Ok(real.join("docs/index.html")));
    assert_eq!(
        resolve(&root, "/docs"),
        Ok(real.join("docs/index.html")),
        "a path naming a directory means its index.html, with or without a trailing /"
    );
    assert_eq!(
        resolve(&root, "/docs/a%20b.txt"),
        Ok(real.join("docs/a b.txt"))
    );
    assert_eq!(resolve(&root, "/nope.txt"), Err(404));
    assert_eq!(
        resolve(&root, "/empty/"),
        Err(404),
        "a directory without index.html"
    );
}

/// No path leaves the root: `..` as is or percent-encoded, and symlinks out of it.
#[rstest]
#[case::dotdot("/../secret.txt")]
#[case::deep_dotdot("/docs/../../secret.txt")]
#[case::encoded("/%2e%2e/secret.txt")]
#[case::encoded_upper("/%2E%2E/secret.txt")]
#[case::encoded_slash("/docs%2f..%2f..%2fsecret.txt")]
#[case::symlink_out("/escape")]
fn never_leaves_the_root_part_a(#[case] target: &str) {
    let www = common::Www::new();
    let got = resolve(&www.root(), target);
    assert!(
        matches!(got, Err(403 | 404)),
        "resolve(root, {target:?}) = {got:?}: it must be Err(404) (or 403), because the file \
         lies outside the root; reject `..` segments after percent-decoding, and compare the \
         canonical path with the canonical root"
    );
}
