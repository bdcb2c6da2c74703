//! Hidden tests, part A: edge cases of requests and paths.

mod common;

use prefork::http::{MAX_REQUEST_LINE, Parsed, parse_request, percent_decode, resolve};

/// A request line of exactly the limit is accepted; one byte more is 414.
#[test]
fn request_line_limit_is_exact_part_a() {
    let pad = MAX_REQUEST_LINE - "GET / HTTP/1.1".len();
    let at = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(pad));
    assert!(
        matches!(parse_request(at.as_bytes()), Parsed::Complete(..)),
        "a request line of exactly MAX_REQUEST_LINE bytes is allowed"
    );
    let over = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(pad + 1));
    assert_eq!(parse_request(over.as_bytes()), Parsed::Error(414));
}

/// Two pipelined requests: the first is complete, and what it used leaves the second.
#[test]
fn pipelined_requests_part_a() {
    let buf = b"GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\nConnection: close\r\n\r\n";
    let Parsed::Complete(a, used) = parse_request(buf) else {
        panic!("first request")
    };
    assert_eq!(a.target, "/a");
    let Parsed::Complete(b, used2) = parse_request(&buf[used..]) else {
        panic!("second")
    };
    assert_eq!(
        (b.target.as_str(), b.keep_alive, used + used2),
        ("/b", false, buf.len())
    );
}

/// Content-Length: 0 is not a body; a Transfer-Encoding is.
#[test]
fn bodies_part_a() {
    assert!(matches!(
        parse_request(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        Parsed::Complete(..)
    ));
    assert_eq!(
        parse_request(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Parsed::Error(400)
    );
}

/// Bad escapes and an encoded NUL are refused; good ones decode.
#[test]
fn percent_decoding_part_a() {
    assert_eq!(percent_decode("/a%20b%2F").as_deref(), Some(&b"/a b/"[..]));
    assert_eq!(percent_decode("/a%2"), None);
    assert_eq!(percent_decode("/a%zz"), None);
    assert_eq!(percent_decode("/a%00b"), None);
}

/// Traversals in every disguise stay inside; a symlink inside the root is served.
#[test]
fn traversal_in_disguise_part_a() {
    let www = common::Www::new();
    let root = www.root();
    for t in [
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/docs/..%2f..%2fsecret.txt",
        "/.%2e/secret.txt",
        "/escape?x=1",
    ] {
        let got = resolve(&root, t);
        assert!(
            matches!(got, Err(403 | 404)),
            "resolve(root, {t:?}) = {got:?}"
        );
    }
    std::os::unix::fs::symlink(root.join("notes.txt"), root.join("inside")).unwrap();
    assert!(
        resolve(&root, "/inside").is_ok(),
        "a symlink to a file inside the root is fine"
    );
    assert_eq!(resolve(&root, "/bad%zz"), Err(400));
}
