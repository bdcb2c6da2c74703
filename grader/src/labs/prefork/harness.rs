//! The document root, `prefork-httpd` started on a free port, its workers in /proc, raw
//! requests, and wrk runs with their figures.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::check::{Ctx, Fail, poll_until};
use crate::fail;
use crate::sandbox::Proc;

/// How long the server may take to print its line and fork its workers.
pub(super) const PROMPT: Duration = Duration::from_secs(5);

/// The 4 KiB file every load uses.
pub(super) const FILE: &str = "/4k.bin";

/// Makes the document root `www` in the peers' folder, which both prefork-httpd and nginx
/// read and neither can change: `index.html`, `4k.bin`, `notes.txt`, `style.css`,
/// `docs/index.html`, and `escape`, a symlink to `secret.txt` beside the root.
pub(super) fn www(ctx: &mut Ctx) -> Result<PathBuf, Fail> {
    let bytes = ctx.random_bytes(4096);
    let files: [(&str, &[u8]); 5] = [
        ("www/index.html", b"<h1>prefork</h1>\n"),
        ("www/4k.bin", &bytes),
        ("www/notes.txt", b"plain text\n"),
        ("www/style.css", b"h1 { color: red }\n"),
        ("www/docs/index.html", b"<p>docs</p>\n"),
    ];
    for (name, data) in files {
        ctx.peer_file(name, data)?;
    }
    let secret = ctx.peer_file("secret.txt", "SECRET-OUTSIDE-ROOT\n")?;
    let root = ctx.peer_dir().join("www");
    let escape = root.join("escape");
    crate::check::with_fs_identity(crate::check::peer_identity(), || {
        let _ = std::fs::remove_file(&escape);
        std::os::unix::fs::symlink(&secret, &escape)
    })?;
    Ok(root)
}

/// A running `prefork-httpd`.
pub(super) struct Server {
    pub proc: Proc,
    pub port: u16,
    pub workers: usize,
}

impl Server {
    /// The master's pid.
    pub fn pid(&self) -> i32 {
        self.proc.pid
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The live children of `pid`, sorted.
pub(super) fn children(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = testkit::procfs::children(pid)
        .into_iter()
        .filter(|p| p.state != 'Z')
        .map(|p| p.pid)
        .collect();
    v.sort();
    v
}

/// The children of `pid` that have exited and that it has not reaped yet.
pub(super) fn zombies(pid: i32) -> Vec<i32> {
    testkit::procfs::children(pid)
        .into_iter()
        .filter(|p| p.state == 'Z')
        .map(|p| p.pid)
        .collect()
}

/// Starts `prefork-httpd --port 0 --root ROOT --workers N`, waits for its
/// `listening on 127.0.0.1:PORT` line and its N workers.
pub(super) fn start(ctx: &mut Ctx, root: &Path, workers: usize) -> Result<Server, Fail> {
    let spec = ctx.bin("prefork-httpd").args([
        "--port".as_ref(),
        "0".as_ref(),
        "--root".as_ref(),
        root.as_os_str(),
        "--workers".as_ref(),
        workers.to_string().as_ref(),
    ]);
    let (proc, first) = ctx.start_server(
        &spec,
        &format!("prefork-httpd --port 0 --root www --workers {workers}"),
        "`listening on 127.0.0.1:PORT`",
        PROMPT,
    )?;
    let Some(port) = first
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|&p| p != 0)
    else {
        fail!(
            "the first line of prefork-httpd must be `listening on 127.0.0.1:PORT` with the \
             real port, but it was {first:?}"
        );
    };
    let pid = proc.pid;
    if !poll_until(Instant::now() + PROMPT, || children(pid).len() == workers) {
        fail!(
            "with `--workers {workers}` the master should have {workers} worker processes, \
             but it has {} ({:?}) after {} s",
            children(pid).len(),
            children(pid),
            PROMPT.as_secs()
        );
    }
    Ok(Server {
        proc,
        port,
        workers,
    })
}

/// The server's stderr, clipped, for messages (what is still in the pipe of a server that
/// has ended included).
pub(super) fn stderr(p: &Proc) -> String {
    p.wait_stderr(Instant::now() + Duration::from_millis(500), |_| false);
    crate::run::clip(String::from_utf8_lossy(&p.stderr().0).trim(), 600)
}

/// Sends `request` on a new connection and reads until the server closes it or `limit`
/// passes; the bytes read.
pub(super) fn raw(port: u16, request: &[u8], limit: Duration) -> Result<Vec<u8>, Fail> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| Fail(format!("cannot connect to 127.0.0.1:{port}: {e}")))?;
    s.set_read_timeout(Some(limit))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(out)
}

/// The `total requests: N` of /server-status.
pub(super) fn status_total(port: u16) -> Result<u64, Fail> {
    let page = raw(
        port,
        b"GET /server-status HTTP/1.1\r\nHost: grader\r\nConnection: close\r\n\r\n",
        PROMPT,
    )?;
    let text = String::from_utf8_lossy(&page).into_owned();
    match text
        .lines()
        .find_map(|l| l.strip_prefix("total requests: "))
        .and_then(|n| n.trim().parse::<u64>().ok())
    {
        Some(n) => Ok(n),
        None => fail!(
            "GET /server-status must answer a page with a line `total requests: N`; it \
             answered {:?}",
            crate::run::clip(&text, 600)
        ),
    }
}

pub(super) use crate::measure::{WrkFigures, parse_wrk};

/// Starts `wrk -t2 -c CONNS -d SECS url`, a peer.
pub(super) fn spawn_wrk(
    ctx: &mut Ctx,
    wrk: &Path,
    conns: u32,
    secs: u32,
    url: &str,
) -> Result<Proc, Fail> {
    let spec = ctx.peer(wrk).args([
        "-t2".to_owned(),
        format!("-c{conns}"),
        format!("-d{secs}s"),
        "--timeout".to_owned(),
        "5s".to_owned(),
        url.to_owned(),
    ]);
    ctx.spawn(&spec)
}

/// Waits for a wrk started by [`spawn_wrk`] and returns its figures.
pub(super) fn finish_wrk(ctx: &mut Ctx, p: &mut Proc, secs: u32) -> Result<WrkFigures, Fail> {
    let out = ctx.finish("wrk", p, Duration::from_secs(u64::from(secs) + 15))?;
    let text = out.stdout_str();
    parse_wrk(&text).ok_or_else(|| {
        Fail(format!(
            "the grader could not read wrk's report (tell your course staff): {:?} {:?}",
            text,
            out.stderr_str()
        ))
    })
}

/// Whether a second client is served within 3 s while a first one holds a connection with
/// a request half sent (workers that accept in parallel); the second client's bytes.
pub(super) fn second_client_served(port: u16) -> Result<(bool, Vec<u8>), Fail> {
    let mut slow = TcpStream::connect(("127.0.0.1", port))?;
    slow.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: slow\r\n")?;
    let got = raw(
        port,
        b"GET /4k.bin HTTP/1.1\r\nHost: second\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    )?;
    let _ = slow.write_all(b"Connection: close\r\n\r\n");
    Ok((got.starts_with(b"HTTP/1.1 200"), got))
}

/// Before a load: one GET of [`FILE`] must be answered whole within 1 s (a right server takes
/// a millisecond), so that a server
/// that does not serve fails at once (with the serving items' advice), not after the load's
/// whole run of timeouts.
pub(super) fn serves(s: &Server, load: &str) -> Result<(), Fail> {
    let got = raw(
        s.port,
        b"GET /4k.bin HTTP/1.1\r\nHost: grader\r\nConnection: close\r\n\r\n",
        Duration::from_secs(1),
    )?;
    if !got.starts_with(b"HTTP/1.1 200") {
        fail!(
            "{load} was not run: a single `GET /4k.bin` got {} within 1 s. Make the serving \
             items pass first",
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

/// Whether two requests on one connection are both answered (keep-alive honoured).
pub(super) fn keeps_alive(port: u16) -> Result<bool, Fail> {
    let got = raw(
        port,
        b"GET /notes.txt HTTP/1.1\r\nHost: grader\r\n\r\nGET /notes.txt HTTP/1.1\r\nHost: grader\r\nConnection: close\r\n\r\n",
        PROMPT,
    )?;
    Ok(got.windows(12).filter(|w| w == b"HTTP/1.1 200").count() == 2)
}
