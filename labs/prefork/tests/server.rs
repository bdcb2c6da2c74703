//! Part C: the workers serve files: status codes, headers, HEAD, keep-alive, big files,
//! the status page.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{DEADLINE, Server, Www, big, closed_within, four_k, read_response};

/// GET of a file: 200, its bytes, Content-Length and Content-Type.
#[test]
fn serves_files_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 2);
    let r = s.get("/4k.bin");
    assert_eq!(r.status, 200);
    testkit::assert_same_bytes("the body of /4k.bin", &four_k(), &r.body);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let r = s.get("/");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"<h1>prefork</h1>\n"[..])
    );
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    let r = s.get("/docs/a%20b.txt");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"spaced\n"[..]));
}

/// A 1 MiB file arrives whole and exact.
#[test]
fn serves_a_big_file_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 1);
    let r = s.get("/big.bin");
    assert_eq!(r.status, 200);
    testkit::assert_same_bytes("the body of /big.bin", &big(), &r.body);
}

/// 404, 405 with Allow, 400, 414 and 431, each with a Content-Length.
#[test]
fn error_statuses_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 2);
    assert_eq!(s.get("/nope.html").status, 404);
    assert_eq!(
        s.get("/../secret.txt").status,
        404,
        "a path out of the root"
    );
    assert_eq!(s.get("/escape").status, 404, "a symlink out of the root");
    let r = s.request("DELETE /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
    let allow = r.header("allow").unwrap_or("");
    assert!(
        allow.contains("GET") && allow.contains("HEAD"),
        "a 405 must say `Allow: GET, HEAD`, got {allow:?}"
    );
    assert_eq!(s.request("GARBAGE\r\n\r\n").status, 400);
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(9000));
    assert_eq!(s.request(&long).status, 414);
    let mut fat = String::from("GET / HTTP/1.1\r\n");
    for i in 0..400 {
        fat.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(60)));
    }
    fat.push_str("\r\n");
    assert_eq!(s.request(&fat).status, 431);
}

/// HEAD sends GET's headers and no body.
#[test]
fn head_has_no_body_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 1);
    let mut c = s.connect();
    c.write_all(
        b"HEAD /4k.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let head = read_response(&mut c, "HEAD /4k.bin", false);
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("4096"))
    );
    // If HEAD had sent a body, these would be its bytes instead of the next status line.
    let next = read_response(&mut c, "GET /notes.txt after a HEAD", true);
    assert_eq!(
        (next.status, next.body.as_slice()),
        (200, &b"plain text\n"[..])
    );
}

/// Three requests on one connection are answered in order; `Connection: close` ends it.
#[test]
fn keep_alive_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 1);
    let mut c = s.connect();
    for path in ["/notes.txt", "/style.css", "/4k.bin"] {
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let r = read_response(&mut c, &format!("GET {path} (kept-alive connection)"), true);
        assert_eq!(r.status, 200, "GET {path}");
        assert_ne!(
            r.header("connection"),
            Some("close"),
            "the client asked to keep the connection (HTTP/1.1 without `Connection: close`)"
        );
    }
    assert!(
        !closed_within(&mut c, Duration::from_millis(300)),
        "the server closed a kept-alive connection after the response"
    );
    c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, "GET with Connection: close", true);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        closed_within(&mut c, DEADLINE),
        "after a response to `Connection: close` the server must close the connection"
    );
}

/// /server-status shows the worker and counts the requests served before it (one worker,
/// so each response is counted before the next connection is accepted).
#[test]
fn status_page_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 1);
    for _ in 0..5 {
        assert_eq!(s.get("/notes.txt").status, 200);
    }
    let r = s.get("/server-status");
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        text.lines().any(|l| l == "total requests: 5"),
        "5 requests were served before /server-status (count each response once, right \
         after it is sent); its page says:\n{text}"
    );
    for pid in s.workers() {
        assert!(
            text.lines()
                .any(|l| l.split(' ').nth(1) == Some(&pid.to_string())),
            "worker {pid} has no row in /server-status:\n{text}"
        );
    }
}
