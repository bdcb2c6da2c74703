//! Starting `rpc-server`, and talking to it line by line as a plain TCP client.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::PROMPT;
use crate::check::{Ctx, Fail};
use crate::fail;
use crate::sandbox::Proc;

/// A running `rpc-server --port 0` and the port it printed.
pub(super) struct Server {
    pub proc: Proc,
    pub port: u16,
}

/// Starts `rpc-server --port 0` and waits for `listening on 127.0.0.1:PORT`.
pub(super) fn start_server(ctx: &mut Ctx) -> Result<Server, Fail> {
    let spec = ctx.bin("rpc-server").args(["--port", "0"]);
    let mut p = ctx.spawn(&spec)?;
    let printed = p.wait_stdout(Instant::now() + PROMPT, |out| out.contains(&b'\n'));
    let out = String::from_utf8_lossy(&p.stdout().0).into_owned();
    let line = out.lines().next().unwrap_or("");
    let port = line
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|&p| p != 0);
    match port {
        Some(port) if printed => Ok(Server { proc: p, port }),
        _ => {
            let why = match p.try_ending() {
                Some(e) => format!("{}; {}", e.describe(), stderr_of(&p)),
                None if printed => format!("printed {line:?}"),
                None => format!("printed nothing within {} s", PROMPT.as_secs()),
            };
            fail!(
                "`rpc-server --port 0` must print `listening on 127.0.0.1:PORT` (the port it \
                 got) as its first line, flushed, once it accepts connections; it {why}"
            )
        }
    }
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
}

/// A request as text.
pub(super) fn request(method: &str, params: Value, id: Value) -> String {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string()
}

/// `what` shortened for a message.
pub(super) fn shown(what: &[u8]) -> String {
    crate::run::clip(&String::from_utf8_lossy(what), 200)
}
