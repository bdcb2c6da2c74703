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
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(9000));
    let mut fat = String::from("GET / HTTP/1.1\r\n");
    for i in 0..400 {
        fat.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(60)));
    }
    fat.push_str("\r\n");
    for (what, request, status) in [
        ("a malformed request", "GARBAGE\r\n\r\n".to_string(), 400),
        ("a 9000-byte request line", long, 414),
        ("24 KiB of header lines", fat, 431),
    ] {
        let mut c = s.connect();
        c.write_all(request.as_bytes()).unwrap();
        let r = read_response(&mut c, what, true);
        assert_eq!(r.status, status, "{what}");
        assert_eq!(
            r.header("connection"),
            Some("close"),
            "the {status} to {what} must say `Connection: close`"
        );
        assert!(
            closed_within(&mut c, DEADLINE),
            "after its {status} to {what} the server must close the connection (400, 414 and \
             431 end it: what follows cannot be trusted to start a request), but it kept it \
             open for {}",
            testkit::deadline::secs(DEADLINE)
        );
    }
}

/// A request sent one byte at a time, each byte read by the server before the next is
/// sent, is answered like a whole one: a head may be cut at any read boundary.
#[test]
fn request_cut_anywhere_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 1);
    let request = b"GET /docs/a%20b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut c = s.connect();
    c.set_nodelay(true).unwrap();
    for (i, byte) in request.iter().enumerate() {
        c.write_all(&[*byte]).unwrap();
        s.wait_read(
            &c,
            &format!("byte {} of a request sent one byte at a time", i + 1),
        );
    }
    match common::try_read_response(&mut c, "a request sent one byte at a time", true) {
        Ok(r) => assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"spaced\n"[..]),
            "a request sent one byte at a time"
        ),
        Err(why) => panic!(
            "the server read all {} bytes of a request sent one byte at a time (each read \
             before the next was sent), but: {why}. Keep the bytes of a head that is not \
             whole yet and parse them again with what the next read brings",
            request.len()
        ),
    }
}

/// Bad bytes never crash a worker: each gets its error status, and the same workers are
/// still there to serve.
#[test]
fn bad_input_never_crashes_a_worker_part_c() {
    let www = Www::new();
    let s = Server::start(&www.root(), 2);
    let workers = s.workers();
    let cases: [(&str, &[u8], u16); 5] = [
        (
            "a target that is not UTF-8",
            b"GET /caf\xe9.txt HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        (
            "NUL bytes in the request line",
            b"GET /\x00\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        (
            "a header name that is not UTF-8",
            b"GET / HTTP/1.1\r\n\xff\xfe: x\r\n\r\n",
            400,
        ),
        ("an empty head", b"\r\n\r\n", 400),
        ("a bad percent escape", b"GET /%zz HTTP/1.1\r\n\r\n", 400),
    ];
    for (what, bytes, status) in cases {
        let mut c = s.connect();
        c.write_all(bytes).unwrap();
        match common::try_read_response(&mut c, what, true) {
            Ok(r) => assert_eq!(r.status, status, "{what}"),
            Err(why) => panic!(
                "{what} ({}) got no {status}: {why}; the workers were {workers:?} and are now \
                 {:?}. Bad input must never crash a worker: answer it with an error status",
                testkit::compare::show(bytes),
                s.workers()
            ),
        }
    }
    assert_eq!(
        s.workers(),
        workers,
        "after bad requests the same workers must still serve: a worker that dies on bad \
         input loses the connection it serves"
    );
}

/// A 64 MiB file is sent without being read into memory: the worker's peak memory
/// (`VmHWM`) grows by far less than the file.
#[test]
fn big_file_never_read_whole_part_c() {
    const SIZE: u64 = 64 << 20;
    let www = Www::new();
    // Sparse: no disk, and reading it gives zeros.
    std::fs::File::create(www.root().join("huge.bin"))
        .and_then(|f| f.set_len(SIZE))
        .unwrap();
    let s = Server::start(&www.root(), 1);
    assert_eq!(s.get("/notes.txt").status, 200);
    let worker = s.workers()[0];
    let peak = || -> u64 {
        std::fs::read_to_string(format!("/proc/{worker}/status"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let before = peak();
    let mut c = s.connect();
    c.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let head = read_response(&mut c, "GET /huge.bin", false);
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some(SIZE.to_string().as_str()))
    );
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    while got < SIZE {
        let n = std::io::Read::read(&mut c, &mut buf).unwrap_or(0);
        assert!(
            n > 0,
            "the body of /huge.bin ended after {got} of {SIZE} bytes"
        );
        assert!(buf[..n].iter().all(|&b| b == 0), "/huge.bin is all zeros");
        got += n as u64;
    }
    let grew = peak().saturating_sub(before);
    assert!(
        grew < 16 << 10,
        "serving a {} MiB file raised the worker's peak memory (VmHWM) by {} MiB: send files \
         with sendfile or through a small buffer, never read whole into memory",
        SIZE >> 20,
        grew >> 10
    );
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
    assert_eq!(s.get("/nope.html").status, 404);
    let r = s.request("DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(s.request("GARBAGE\r\n\r\n").status, 400);
    let r = s.get("/server-status");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "/server-status is text/plain"
    );
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("total requests: "))
        .unwrap_or("(no `total requests: N` line)");
    assert!(
        total == "8",
        "8 responses were sent before /server-status (5 of status 200, then a 404, a 405 and \
         a 400), but its page says `total requests: {total}`: count every response, whatever \
         its status, once, right after it is sent (and the page not itself). The page:\n{text}"
    );
    for pid in s.workers() {
        assert!(
            text.lines()
                .any(|l| l.split(' ').nth(1) == Some(&pid.to_string())),
            "worker {pid} has no row in /server-status:\n{text}"
        );
    }
}
