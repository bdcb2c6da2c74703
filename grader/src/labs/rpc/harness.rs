//! Starting `rpc-server`, and talking to it line by line as a plain TCP client.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::PROMPT;
use crate::check::poll_until;
use crate::check::{Ctx, Fail};
use crate::fail;
use crate::sandbox::{Proc, Spec};

/// A running `rpc-server --port 0` and the port it printed.
pub(super) struct Server {
    pub proc: Proc,
    pub port: u16,
}

/// Starts `rpc-server --port 0` and waits for `listening on ADDR:PORT`.
///
/// Any IPv4 address is accepted here, and the checks connect to 127.0.0.1:PORT: that the
/// server listens on 127.0.0.1 only is judged by the `server` item alone, so that a server
/// bound to every address costs that item, not every check.
pub(super) fn start_server(ctx: &mut Ctx) -> Result<Server, Fail> {
    let spec = ctx.bin("rpc-server").args(["--port", "0"]);
    start_spec(ctx, &spec)
}

/// Starts `spec` (an `rpc-server` command) and waits for its `listening on` line.
pub(super) fn start_spec(ctx: &mut Ctx, spec: &Spec) -> Result<Server, Fail> {
    let (p, line) = ctx.start_server(
        spec,
        "rpc-server --port 0",
        "`listening on 127.0.0.1:PORT` (the port it got), flushed, once it accepts connections,",
        PROMPT,
    )?;
    let port = line
        .strip_prefix("listening on ")
        .and_then(|a| a.trim().parse::<std::net::SocketAddrV4>().ok())
        .map(|a| a.port())
        .filter(|&p| p != 0);
    match port {
        Some(port) => Ok(Server { proc: p, port }),
        None => fail!(
            "`rpc-server --port 0` must print `listening on 127.0.0.1:PORT` (the port it got) \
             as its first line, flushed, once it accepts connections; it printed {line:?}"
        ),
    }
}

impl Server {
    /// The server's pid.
    pub fn pid(&self) -> i32 {
        self.proc.pid
    }

    /// 127.0.0.1:PORT.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// How many descriptors `pid` has open (`None` once it is gone).
pub(super) fn fds(pid: i32) -> Option<usize> {
    testkit::procfs::fd_count(pid)
}

/// Whether `pid` has ended (gone, or a zombie not yet reaped).
pub(super) fn ended(pid: i32) -> bool {
    testkit::procfs::stat(pid).is_none_or(|s| s.state == 'Z')
}

/// How many threads `pid` has (`None` once it is gone).
pub(super) fn threads(pid: i32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()
        .map(|d| d.count())
}

/// A field of `/proc/PID/status` in kB (`VmHWM`, `VmSize`, `VmRSS`).
pub(super) fn status_kb(pid: i32, field: &str) -> Option<u64> {
    testkit::procfs::status_kb(pid, field)
}

/// Whether a thread of `pid` is in `nanosleep` or `clock_nanosleep` (a `sleep` running).
pub(super) fn sleeping_thread(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("syscall")).is_ok_and(|s| {
            let nr = s.split_whitespace().next().unwrap_or("");
            nr == libc::SYS_nanosleep.to_string() || nr == libc::SYS_clock_nanosleep.to_string()
        })
    })
}

pub(super) use crate::check::stderr_of;

/// A plain TCP connection that sends lines and reads reply lines with a deadline.
pub(super) struct LineConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// What came back for one line.
pub(super) enum Reply {
    /// One line, parsed.
    Json(Value),
    /// One line that is not JSON.
    NotJson(String),
    /// Nothing within the limit.
    Silence,
    /// The server closed the connection.
    Closed,
}

impl Reply {
    /// The reply as a student reads it in a message.
    pub fn describe(&self) -> String {
        match self {
            Reply::Json(v) => crate::run::clip(&v.to_string(), 400),
            Reply::NotJson(s) => format!("{:?} (not JSON)", crate::run::clip(s, 400)),
            Reply::Silence => "no reply line".into(),
            Reply::Closed => "the connection closed".into(),
        }
    }
}

impl LineConn {
    /// Connects to 127.0.0.1:`port`.
    pub fn open(port: u16) -> Result<LineConn, Fail> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| {
            Fail(format!(
                "could not connect to rpc-server on 127.0.0.1:{port}: {e}"
            ))
        })?;
        let _ = s.set_nodelay(true);
        Ok(LineConn {
            writer: s.try_clone()?,
            reader: BufReader::new(s),
        })
    }

    /// Sends `bytes` and a newline.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        let mut line = bytes.to_vec();
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .map_err(|e| Fail(format!("the server stopped reading its connection: {e}")))
    }

    /// Sends `bytes` as they are (no newline).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        self.writer
            .write_all(bytes)
            .map_err(|e| Fail(format!("the server stopped reading its connection: {e}")))
    }

    /// The next line within `limit`.
    pub fn recv(&mut self, limit: Duration) -> Reply {
        let _ = self.reader.get_ref().set_read_timeout(Some(limit));
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => Reply::Closed,
            Ok(_) => match serde_json::from_slice::<Value>(&line) {
                Ok(v) if line.ends_with(b"\n") => Reply::Json(v),
                Ok(_) => Reply::Closed,
                Err(_) => Reply::NotJson(String::from_utf8_lossy(&line).trim_end().to_owned()),
            },
            Err(_) => Reply::Silence,
        }
    }

    /// Sends `bytes` and reads the reply line.
    pub fn ask(&mut self, bytes: &[u8]) -> Result<Reply, Fail> {
        self.send(bytes)?;
        Ok(self.recv(PROMPT))
    }

    /// Sends the long line `bytes` and a newline in two writes: all but its last 32 bytes,
    /// then, once the server has read all of those, the rest. The line's last read then holds
    /// exactly its tail, whatever the sizes of the server's reads, so that what a decoder does
    /// with a long line never depends on where its reads happened to end.
    pub fn send_long(&mut self, bytes: &[u8], server: SocketAddr) -> Result<(), Fail> {
        let cut = bytes.len().saturating_sub(32);
        self.send_raw(&bytes[..cut])?;
        if !self.server_has_read(server, PROMPT) {
            fail!(
                "rpc-server did not read the first {cut} bytes of a {}-byte line within {} s: read \
                 whatever arrives, and skip what is past the cap",
                bytes.len(),
                PROMPT.as_secs()
            );
        }
        let mut tail = bytes[cut..].to_vec();
        tail.push(b'\n');
        self.send_raw(&tail)
    }

    /// Waits until the server has read every byte sent on this connection (its end's
    /// receive queue in /proc/net/tcp is empty), at most `limit`: whether it has. The way to
    /// force a read boundary: what is sent next arrives in a read of its own.
    pub fn server_has_read(&self, server: SocketAddr, limit: Duration) -> bool {
        let Ok(me) = self.writer.local_addr() else {
            return false;
        };
        // Our end's send queue empty: every byte has reached the server's end (acknowledged);
        // the server's receive queue empty: it has read them all.
        poll_until(Instant::now() + limit, || {
            queues(me, server).is_some_and(|(tx, _)| tx == 0)
                && queues(server, me).is_some_and(|(_, rx)| rx == 0)
        })
    }
}

use testkit::net::queues;

/// A request as text.
pub(super) fn request(method: &str, params: Value, id: Value) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string()
}

/// `what` shortened for a message.
pub(super) fn shown(what: &[u8]) -> String {
    crate::run::clip(&String::from_utf8_lossy(what), 200)
}
