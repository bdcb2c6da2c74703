//! curl for status codes, headers, HEAD and traversal; curl's connection reuse; parallel
//! accepting; idle CPU.

use std::path::Path;
use std::time::Duration;

use super::harness::{PROMPT, Server, raw, start, www};
use crate::check::{CheckResult, Ctx, Fail, Output};
use crate::fail;

/// Runs curl, a peer, with `args`.
fn curl(ctx: &mut Ctx, curl: &Path, args: &[String]) -> Result<Output, Fail> {
    let spec = ctx
        .peer(curl)
        .args(["-s", "--max-time", "5"].map(String::from))
        .args(args.iter().cloned());
    ctx.run("curl", &spec, Duration::from_secs(10))
}

/// `curl -s -o BODY -D - -w 'CODE %{http_code}' ...`: (status, headers in lower case,
/// body).
fn fetch(
    ctx: &mut Ctx,
    bin: &Path,
    s: &Server,
    extra: &[&str],
    path: &str,
) -> Result<(u16, String, Vec<u8>), Fail> {
    let body_file = ctx.peer_dir().join("curl-body");
    let _ = crate::check::with_fs_identity(crate::check::peer_identity(), || {
        std::fs::remove_file(&body_file)
    });
    let mut args: Vec<String> = vec![
        "--path-as-is".into(),
        "-D".into(),
        "-".into(),
        "-o".into(),
        body_file.to_string_lossy().into_owned(),
        "-w".into(),
        "\nCODE %{http_code}\n".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push(s.url(path));
    let out = curl(ctx, bin, &args)?;
    let text = out.stdout_str();
    let code = text
        .lines()
        .find_map(|l| l.strip_prefix("CODE "))
        .and_then(|c| c.trim().parse::<u16>().ok())
        .unwrap_or(0);
    let body = std::fs::read(&body_file).unwrap_or_default();
    Ok((code, text.to_ascii_lowercase(), body))
}

/// Every status code the contract names, through curl: 200 with Content-Length and
/// Content-Type, HEAD without a body, 404, 405 with Allow, 400, 414, 431; traversal
/// attempts never reach the file outside the root.
pub(super) fn curl_statuses(ctx: &mut Ctx) -> CheckResult {
    let bin = ctx.tool("curl", "curl")?;
    let root = www(ctx)?;
    let s = start(ctx, &root, 2)?;
    let want = std::fs::read(root.join("4k.bin"))?;
    let long = format!("/{}", "a".repeat(9000));
    let big_header = format!("X-Big: {}", "b".repeat(20_000));
    let cases: Vec<(&str, Vec<&str>, &str, u16, &str)> = vec![
        (
            "GET /4k.bin",
            vec![],
            "/4k.bin",
            200,
            "content-length: 4096",
        ),
        (
            "GET /notes.txt",
            vec![],
            "/notes.txt",
            200,
            "content-type: text/plain",
        ),
        ("GET /", vec![], "/", 200, "content-type: text/html"),
        (
            "GET /style.css",
            vec![],
            "/style.css",
            200,
            "content-type: text/css",
        ),
        (
            "HEAD /4k.bin",
            vec!["-I"],
            "/4k.bin",
            200,
            "content-length: 4096",
        ),
        (
            "GET /missing.html",
            vec![],
            "/missing.html",
            404,
            "content-length:",
        ),
        (
            "DELETE /4k.bin",
            vec!["-X", "DELETE"],
            "/4k.bin",
            405,
            "allow:",
        ),
        (
            "POST without a body",
            vec!["-X", "POST"],
            "/4k.bin",
            405,
            "allow:",
        ),
        (
            "a request target without a leading /",
            vec!["--request-target", "4k.bin"],
            "/",
            400,
            "content-length:",
        ),
        (
            "GET /server-status?auto",
            vec![],
            "/server-status?auto",
            200,
            "content-type: text/plain",
        ),
        ("a 9000-byte URL", vec![], &long, 414, ""),
        ("a 20000-byte header", vec!["-H", &big_header], "/", 431, ""),
    ];
    for (what, extra, path, code, header) in cases {
        let (got, headers, body) = fetch(ctx, &bin, &s, &extra, path)?;
        if got != code {
            fail!(
                "curl {what}: expected status {code}, got {} (headers: {:?}){}",
                if got == 0 {
                    "no response".into()
                } else {
                    got.to_string()
                },
                crate::run::clip(headers.trim(), 400),
                if path.contains('?') && got == 404 {
                    format!(
                        ". The query string is ignored: `{path}` is `{}`",
                        path.split('?').next().unwrap_or_default()
                    )
                } else if matches!(code, 414 | 431) && got == 400 {
                    format!(
                        ". A request that long arrives in several reads: a 400 says the server \
                         parsed bytes from its middle, while a {code} comes from the whole \
                         buffered head passing its limit; keep what each read brings until \
                         the head is whole or too long"
                    )
                } else {
                    String::new()
                }
            );
        }
        if !header.is_empty() && !headers.contains(header) {
            fail!(
                "curl {what}: the response must have `{header} ...`; its headers were {headers:?}"
            );
        }
        if !headers.contains("content-length:") {
            fail!(
                "curl {what}: every response needs a Content-Length; its headers were {headers:?}"
            );
        }
        if code == 405 && !(headers.contains("get") && headers.contains("head")) {
            fail!("curl {what}: a 405 must say `Allow: GET, HEAD`; its headers were {headers:?}");
        }
        if what == "GET /4k.bin" && body != want {
            fail!(
                "curl GET /4k.bin: the body differs from the file: {}",
                testkit::compare::bytes_diff(&want, &body).unwrap_or_default()
            );
        }
    }
    // curl -I cannot show a body that should not be there: a HEAD and a GET on one
    // connection show it, since a body after the HEAD's head would stand where the GET's
    // status line belongs. A HEAD of a missing file too: no status has a body for a HEAD.
    for (path, status) in [("/4k.bin", "200"), ("/missing.html", "404")] {
        let both = raw(
            s.port,
            format!(
                "HEAD {path} HTTP/1.1\r\nHost: grader\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: \
                 grader\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
            PROMPT,
        )?;
        let after_head = both
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| &both[p + 4..])
            .unwrap_or_default();
        if !after_head.starts_with(b"HTTP/1.1 200") {
            fail!(
                "HEAD {path} then GET /notes.txt on one connection: right after the HEAD's \
                 headers (a {status}) the next response's status line should follow, but the \
                 server sent {:?}: a response to HEAD has the headers a GET would get \
                 (Content-Length included) and no body, whatever its status",
                crate::run::clip(&String::from_utf8_lossy(after_head), 200)
            );
        }
    }
    for path in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/escape",
    ] {
        let (code, _, body) = fetch(ctx, &bin, &s, &[], path)?;
        if String::from_utf8_lossy(&body).contains("SECRET-OUTSIDE-ROOT")
            || !matches!(code, 403 | 404)
        {
            fail!(
                "curl --path-as-is GET {path}: a path out of the document root must be \
                 answered 404 (or 403), but the server answered {code}{}: reject `..` after \
                 percent-decoding and compare the canonical path (symlinks resolved) with the \
                 canonical root",
                if String::from_utf8_lossy(&body).contains("SECRET") {
                    " with the file outside the root"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// `curl -v URL1 URL2`: curl reuses its connection for the second URL.
pub(super) fn keep_alive(ctx: &mut Ctx) -> CheckResult {
    let bin = ctx.tool("curl", "curl")?;
    let root = www(ctx)?;
    let s = start(ctx, &root, 2)?;
    let args: Vec<String> = vec![
        "-v".into(),
        s.url("/notes.txt"),
        "-o".into(),
        "/dev/null".into(),
        s.url("/4k.bin"),
        "-o".into(),
        "/dev/null".into(),
    ];
    let out = curl(ctx, &bin, &args)?;
    let log = out.stderr_str();
    if out.status() != 0 || !log.contains("Re-using existing") {
        let closes = log.to_ascii_lowercase().contains("connection: close");
        fail!(
            "`curl -v URL1 URL2` should send both requests on one connection (HTTP/1.1 keeps \
             it open unless the client says `Connection: close`), but curl {}{}",
            if out.status() != 0 {
                format!("exited with status {}", out.status())
            } else {
                "opened a second connection".into()
            },
            if closes {
                ": the response said `Connection: close` although the client did not ask to close"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// A client holds one worker with a half-sent request; another client is still served
/// within 3 s: the workers accept, in parallel.
pub(super) fn workers_accept(ctx: &mut Ctx) -> CheckResult {
    let root = www(ctx)?;
    let s = start(ctx, &root, 2)?;
    let (served, got) = super::harness::second_client_served(s.port)?;
    if !served {
        fail!(
            "while one client held a connection with a request half sent, a second client got \
             {} within 3 s. With 2 workers the second connection must be served by the other \
             one: every worker accepts on the shared listening socket (the master never \
             accepts; it only forks, reaps and signals)",
            if got.is_empty() {
                "no answer".to_string()
            } else {
                format!(
                    "{:?}",
                    crate::run::clip(&String::from_utf8_lossy(&got), 200)
                )
            }
        );
    }
    Ok(())
}

/// An idle server (master and workers) uses under 2% of a CPU over 2 s.
pub(super) fn idle_cpu(ctx: &mut Ctx) -> CheckResult {
    let root = www(ctx)?;
    let s = start(ctx, &root, 2)?;
    // One request first: a worker that serves once must go back to sleep too.
    let _ = raw(
        s.port,
        b"GET /notes.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
        PROMPT,
    )?;
    let mut pids = vec![s.pid()];
    pids.extend(super::harness::children(s.pid()));
    testkit::cpu::check_idle(
        &pids,
        Duration::from_secs(2),
        0.02,
        "The master blocks on its signals (sigwaitinfo, a signalfd, or pause); workers block \
         in accept, poll or read, never in a loop that sleeps and looks again",
    )
    .map_err(Fail)
}
