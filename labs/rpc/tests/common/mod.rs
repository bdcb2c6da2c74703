//! Helpers shared by the tests: `rpc-server` started on a free port and killed whatever
//! happens, a raw line connection to it (to send exactly the bytes a test wants), and a
//! proxy that loses replies on purpose, to test retries.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// How long a reply may take. Every scenario here answers in milliseconds when it is right.
pub const DEADLINE: Duration = Duration::from_secs(8);

/// A running `rpc-server --port 0`, killed (with its whole process group) on drop.
pub struct Server {
    pub group: testkit::Group,
    pub port: u16,
    /// The first line it printed (`listening on 127.0.0.1:PORT`).
    pub line: String,
}

impl Server {
    /// Starts `rpc-server --port 0` and reads the port from its `listening on ADDR:PORT`
    /// line. Any IPv4 address is taken here (the tests connect to 127.0.0.1): that it is
    /// 127.0.0.1 is the subject of one test of its own.
    #[track_caller]
    pub fn start() -> Server {
        let mut cmd = Command::cargo_bin("rpc-server").expect("the rpc-server binary");
        cmd.args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut group = testkit::Group::spawn(&mut cmd, "rpc-server --port 0");
        let stdout = group.child().stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(_) => panic!(
                "rpc-server --port 0 printed no line within {DEADLINE:?}; at the deadline:\n{}",
                group.hang_report()
            ),
        };
        let port = line
            .trim_end()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse::<std::net::SocketAddrV4>().ok())
            .map(|a| a.port())
            .filter(|&p| p != 0)
            .unwrap_or_else(|| {
                panic!(
                    "rpc-server --port 0 must print `listening on 127.0.0.1:PORT` first, \
                     with the port it got; it printed {line:?}"
                )
            });
        Server {
            group,
            port,
            line: line.trim_end().to_owned(),
        }
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A raw connection to it.
    #[track_caller]
    pub fn connect(&self) -> Conn {
        Conn::to(self.port)
    }
}

/// A raw connection: send lines, read reply lines, with a deadline on every read.
pub struct Conn {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    #[track_caller]
    pub fn to(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        Conn {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    /// Sends `text` and a newline.
    #[track_caller]
    pub fn send(&mut self, text: &str) {
        self.writer
            .write_all(format!("{text}\n").as_bytes())
            .unwrap_or_else(|e| panic!("cannot send {text:?}: {e}"));
    }

    /// The next reply line, parsed; fails the test when none comes within the deadline.
    #[track_caller]
    pub fn recv(&mut self, after: &str) -> Value {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("after {after:?}, the server closed the connection without a reply"),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                panic!("after {after:?}, the server closed the connection ({e}) without a reply")
            }
            Err(e) => panic!("after {after:?}, no reply line within {DEADLINE:?} ({e})"),
        }
        serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("after {after:?}, the reply {line:?} is not one JSON text: {e}")
        })
    }

    /// Sends `text` and returns the reply line, parsed.
    #[track_caller]
    pub fn ask(&mut self, text: &str) -> Value {
        self.send(text);
        self.recv(text)
    }

    /// Sends the long line `text` and a newline in two writes: all but its last 32 bytes,
    /// then, once the server has read all of those, the rest. The line's last read then holds
    /// exactly its tail, whatever the sizes of the server's reads, so that what a decoder
    /// does with a long line never depends on where its reads happened to end.
    #[track_caller]
    pub fn send_long(&mut self, text: &[u8]) {
        let cut = text.len().saturating_sub(32);
        self.writer
            .write_all(&text[..cut])
            .unwrap_or_else(|e| panic!("cannot send a line of {} bytes: {e}", text.len()));
        let (me, server) = (
            self.writer.local_addr().unwrap(),
            self.writer.peer_addr().unwrap(),
        );
        let read = wait_for(DEADLINE, || {
            queues(me, server).is_some_and(|(tx, _)| tx == 0)
                && queues(server, me).is_some_and(|(_, rx)| rx == 0)
        });
        assert!(
            read,
            "rpc-server did not read the first {cut} bytes of a {}-byte line within {DEADLINE:?}: \
             read whatever arrives, and skip what is past the cap",
            text.len()
        );
        let mut tail = text[cut..].to_vec();
        tail.push(b'\n');
        self.writer
            .write_all(&tail)
            .unwrap_or_else(|e| panic!("cannot send the end of a line: {e}"));
    }

    /// [`send_long`](Conn::send_long), then the reply line; `what` names the line in messages.
    #[track_caller]
    pub fn ask_long(&mut self, text: &[u8], what: &str) -> Value {
        self.send_long(text);
        self.recv(what)
    }
}

pub use testkit::net::queues;

/// `{"jsonrpc":"2.0","method":M,"params":P,"id":ID}` as text.
pub fn request(method: &str, params: Value, id: Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string()
}

/// The error code of a reply, or a failure that shows the reply.
#[track_caller]
pub fn error_code(reply: &Value, after: &str) -> i64 {
    reply["error"]["code"].as_i64().unwrap_or_else(|| {
        panic!("after {after:?}, expected an error reply with a code, got {reply}")
    })
}

/// What the proxy does to the first reply of a request it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Swallows it: the client must time out.
    Swallow,
    /// Closes both connections instead of forwarding it: the client sees the connection end.
    Cut,
}

/// A proxy on 127.0.0.1 between a client and the server that loses the first reply to
/// every request whose text `pick` chooses, in the way `fault` says. It forwards the
/// retries of those requests (the same text) normally.
pub struct LossyProxy {
    pub port: u16,
    /// How many replies it has lost.
    pub lost: Arc<Mutex<usize>>,
}

impl LossyProxy {
    /// Starts it in front of 127.0.0.1:`server`.
    pub fn start(
        server: u16,
        fault: Fault,
        pick: impl Fn(&Value) -> bool + Send + Sync + 'static,
    ) -> LossyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lost = Arc::new(Mutex::new(0));
        let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
        let pick = Arc::new(pick);
        let lost2 = Arc::clone(&lost);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", server)) else {
                    continue;
                };
                let (seen, pick, lost) = (Arc::clone(&seen), Arc::clone(&pick), Arc::clone(&lost2));
                std::thread::spawn(move || relay(client, upstream, fault, &*pick, &seen, &lost));
            }
        });
        LossyProxy { port, lost }
    }

    /// How many replies it has lost so far.
    pub fn lost(&self) -> usize {
        *self.lost.lock().unwrap()
    }
}

/// One client connection: requests go up line by line; a reply to a request that `pick`
/// chooses and that has not lost a reply before is lost.
fn relay(
    client: TcpStream,
    upstream: TcpStream,
    fault: Fault,
    pick: &(dyn Fn(&Value) -> bool + Send + Sync),
    seen: &Mutex<HashSet<String>>,
    lost: &Mutex<usize>,
) {
    let mut up = upstream.try_clone().unwrap();
    let mut down = client.try_clone().unwrap();
    let mut from_client = BufReader::new(client);
    let mut from_server = BufReader::new(upstream);
    let mut line = String::new();
    while matches!(from_client.read_line(&mut line), Ok(n) if n > 0) {
        let request: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let key = request.to_string();
        if up.write_all(line.as_bytes()).is_err() {
            break;
        }
        line.clear();
        if request.get("id").is_none() {
            continue;
        }
        let mut reply = String::new();
        if !matches!(from_server.read_line(&mut reply), Ok(n) if n > 0) {
            break;
        }
        let first = seen.lock().unwrap().insert(key);
        if first && pick(&request) {
            *lost.lock().unwrap() += 1;
            match fault {
                Fault::Swallow => continue,
                Fault::Cut => break,
            }
        }
        if down.write_all(reply.as_bytes()).is_err() {
            break;
        }
    }
    let _ = down.shutdown(Shutdown::Both);
    let _ = up.shutdown(Shutdown::Both);
    let mut rest = Vec::new();
    let _ = from_server.read_to_end(&mut rest);
}

/// Polls `cond` every 2 ms until it holds, at most `limit`; whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
