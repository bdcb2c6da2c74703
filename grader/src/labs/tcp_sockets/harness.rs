//! Starting `kv-server`, raw connections that send bytes and expect exact bytes back, and
//! the kernel's socket table (what a server has not read yet).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::check::{Ctx, Fail};
use crate::fail;
use crate::sandbox::Proc;

/// How long something that takes milliseconds when it is right may take.
pub(super) const PROMPT: Duration = Duration::from_secs(5);

/// A running `kv-server --port 0`.
pub(super) struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
}

/// Starts `kv-server --port 0 EXTRA...` and waits for `listening on 127.0.0.1:PORT`.
pub(super) fn start(ctx: &mut Ctx, extra: &[&str]) -> Result<Server, Fail> {
    // Whoever started the grader may have left SIGINT ignored (a shell does so for its
    // background jobs), and an ignored signal stays ignored across fork and exec: the server
    // must find SIGINT's default action, as a terminal's Ctrl-C would.
    // SAFETY: sets a default disposition; this process handles no SIGINT of its own.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let spec = ctx.bin("kv-server").args(["--port", "0"]).args(extra);
    let (proc, line) = ctx.start_server(
        &spec,
        "kv-server --port 0",
        "`listening on 127.0.0.1:PORT` (the port the kernel picked)",
        PROMPT,
    )?;
    let printed = line
        .strip_prefix("listening on ")
        .and_then(|a| a.trim().parse::<SocketAddr>().ok());
    match printed {
        Some(addr) if addr.ip().is_loopback() && addr.port() != 0 => Ok(Server { proc, addr }),
        Some(addr) if addr.ip().is_unspecified() => fail!(
            "`kv-server --port 0` printed `{line}`: it listens on {}, every address of the \
             machine, so anyone on the network can reach it. Listen on 127.0.0.1 only",
            addr.ip()
        ),
        Some(addr) if addr.port() == 0 => fail!(
            "`kv-server --port 0` printed `{line}`: with --port 0 the kernel picks the port, \
             and the line must say which (ask the socket: `local_addr`, getsockname), or no \
             client can find the server"
        ),
        _ => fail!(
            "`kv-server --port 0` must print `listening on 127.0.0.1:PORT` (the port the kernel \
             picked) as its first line; it printed {line:?}"
        ),
    }
}

/// A raw connection with timeouts.
pub(super) struct Raw {
    pub stream: TcpStream,
    pub server: SocketAddr,
}

impl Raw {
    pub fn connect(server: SocketAddr) -> Result<Raw, Fail> {
        let stream = TcpStream::connect_timeout(&server, PROMPT)
            .map_err(|e| Fail(format!("could not connect to kv-server at {server}: {e}")))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(PROMPT))?;
        stream.set_write_timeout(Some(PROMPT))?;
        Ok(Raw { stream, server })
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        self.stream.write_all(bytes).map_err(|e| {
            Fail(format!(
                "sending {} bytes to kv-server failed: {e}",
                bytes.len()
            ))
        })
    }

    /// Sends `bytes` and waits until the server has read them from its socket.
    pub fn send_and_wait_read(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        self.send(bytes)?;
        let me = self.stream.local_addr()?;
        let end = Instant::now() + PROMPT;
        while rx_queue(self.server, me).unwrap_or(0) != 0 {
            if Instant::now() > end {
                fail!(
                    "kv-server did not read {} bytes that a client sent within {} s: it must \
                     read from every client that has data, not only from one",
                    bytes.len(),
                    PROMPT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Reads up to `n` bytes (fewer at EOF, a reset or the timeout).
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        let mut have = 0;
        while have < n {
            match self.stream.read(&mut got[have..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => have += k,
            }
        }
        got.truncate(have);
        got
    }

    /// Reads one line ending in `\r\n` (at most 4 KiB).
    pub fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") && line.len() < 4096 {
            match self.stream.read(&mut b) {
                Ok(1) => line.push(b[0]),
                _ => break,
            }
        }
        line
    }

    /// Whether the server closed the connection (EOF or reset) within [`PROMPT`], reading
    /// and dropping what comes before.
    pub fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

/// Before a load: one PING must be answered `+PONG` within 1 s (a right server takes a
/// millisecond), so that a server that does not answer fails at once, not at the load's
/// deadline; `what` says what is not done then.
pub(super) fn answers_ping(server: &Server, what: &str) -> Result<(), Fail> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    s.write_all(&req(&[b"PING"]))?;
    let mut got = Vec::new();
    let mut b = [0u8; 7];
    while got.len() < 7 {
        match s.read(&mut b[..7 - got.len()]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    if got != b"+PONG\r\n" {
        fail!(
            "{what}: a PING got {} within 1 s, not +PONG. Make the server items pass first",
            if got.is_empty() {
                "nothing".to_string()
            } else {
                testkit::compare::show(&got)
            }
        );
    }
    Ok(())
}

/// A probe before a scenario that pipelines: three PINGs in one write must get three
/// PONGs. A server that answers only part of a read fails here, with a message that says
/// so and that `subject` was not judged, rather than later, where its failure would look
/// like the scenario's subject.
pub(super) fn pipelining_works(c: &mut Raw, subject: &str) -> Result<(), Fail> {
    let ping = req(&[b"PING"]);
    c.send(&ping.repeat(3))?;
    let want = b"+PONG\r\n".repeat(3);
    let started = Instant::now();
    let got = c.read_n(want.len());
    if got != want {
        fail!(
            "three PINGs sent in one write, a probe this check needs, got {}: kv-server does \
             not answer every request that one read brings (the server item's pipelining \
             test says more). Fix that first; {subject} was not judged",
            shown_after(&got, started)
        );
    }
    Ok(())
}

/// A reply that fell short, for messages: what came, and whether the connection ended or
/// nothing more came within [`PROMPT`].
pub(super) fn shown_after(got: &[u8], started: Instant) -> String {
    let why = if started.elapsed() >= PROMPT {
        format!("nothing more came within {} s", PROMPT.as_secs())
    } else {
        "then the connection ended".to_string()
    };
    if got.is_empty() {
        format!("nothing ({why})")
    } else {
        format!("{} ({why})", testkit::compare::show(got))
    }
}

/// Sets `key` to `value` (at most 32 KiB, so that the request is one segment and one read)
/// to prepare a scenario; a failure says that `subject` was not judged.
pub(super) fn prepare(c: &mut Raw, key: &[u8], value: &[u8], subject: &str) -> Result<(), Fail> {
    c.send(&req(&[b"SET", key, value]))?;
    let started = Instant::now();
    let got = c.read_n(5);
    if got != b"+OK\r\n" {
        fail!(
            "a SET of a {} KiB value, sent in one write to prepare this check, got {} instead \
             of +OK: make the commands and server items pass first; {subject} was not judged",
            value.len() >> 10,
            shown_after(&got, started)
        );
    }
    Ok(())
}

/// Reads exactly `want.len()` bytes and compares them; `what` says what was sent.
pub(super) fn expect(c: &mut Raw, what: &str, want: &[u8]) -> Result<(), Fail> {
    let got = c.read_n(want.len());
    if got != want {
        fail!(
            "{what}: expected the reply {}, got {}",
            testkit::compare::show(want),
            if got.is_empty() {
                format!("nothing within {} s", PROMPT.as_secs())
            } else {
                testkit::compare::show(&got)
            }
        );
    }
    Ok(())
}

pub(super) use testkit::net::{queues, rx_queue};

/// Waits until kv-server has begun answering what `c` sent and every byte `c` sent has
/// reached the server's side of the connection (in its socket's receive queue or read):
/// from then on, those requests count as received. `Ok` with the bytes still unread in the
/// server's receive queue at that moment.
pub(super) fn await_received(c: &Raw, what: &str) -> Result<u64, Fail> {
    let me = c.stream.local_addr()?;
    let mut unread = 0;
    let ok = crate::check::poll_until(Instant::now() + PROMPT, || {
        let mine = queues(me, c.server);
        let theirs = queues(c.server, me);
        match (mine, theirs) {
            (Some((0, answered)), Some((_, left))) if answered > 0 => {
                unread = left;
                true
            }
            _ => false,
        }
    });
    if !ok {
        fail!(
            "kv-server did not start answering {what} within {} s",
            PROMPT.as_secs()
        );
    }
    Ok(unread)
}

/// How many descriptors `pid` has open (0 once it is gone).
pub(super) fn fd_count(pid: i32) -> usize {
    testkit::procfs::fd_count(pid).unwrap_or(0)
}

/// What `pid`'s descriptors are, grouped: `3 x socket, 1 x anon_inode:[eventpoll]`.
pub(super) fn fd_kinds(pid: i32) -> String {
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            let target = std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "?".into());
            // `socket:[12345]`: the inode says nothing to the student.
            let kind = match target.split_once(":[") {
                Some((k, _)) if !k.starts_with("anon_inode") => k.to_owned(),
                _ => target,
            };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{n} x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The process's peak resident memory (VmHWM) in KiB.
pub(super) fn vm_hwm(pid: i32) -> u64 {
    testkit::procfs::status_kb(pid, "VmHWM").unwrap_or(0)
}

/// How it ended, or that it still runs, with its stderr, for messages.
pub(super) fn ending(server: &mut Server) -> String {
    match server.proc.try_ending() {
        Some(e) => format!(
            "kv-server {} ({})",
            e.describe(),
            crate::check::stderr_of(&server.proc)
        ),
        None => "kv-server still runs".into(),
    }
}

/// A RESP request of `args`, written out here.
pub(super) fn req(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The bulk-string reply of `v`.
pub(super) fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// What the process is doing, for messages: its state and the kernel function it waits in.
pub(super) fn doing(pid: i32) -> String {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let threads = testkit::procfs::threads(pid).len();
    let wchan = wchan.trim();
    format!(
        "kv-server (pid {pid}, {threads} thread{}) {}",
        if threads == 1 { "" } else { "s" },
        if wchan.is_empty() || wchan == "0" {
            "is running, waiting for nothing".to_string()
        } else {
            format!("{} (`{wchan}`)", testkit::hang::describe_wait(wchan))
        }
    )
}

/// Whether every thread of `pid` sleeps.
pub(super) fn all_asleep(pid: i32) -> bool {
    let threads = testkit::procfs::threads(pid);
    !threads.is_empty()
        && threads.iter().all(|t| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{t}/stat"))
                .ok()
                .and_then(|s| testkit::procfs::parse_stat(&s))
                .is_some_and(|s| s.state == 'S')
        })
}

/// The process's virtual memory size in KiB.
pub(super) fn vm_size(pid: i32) -> u64 {
    testkit::procfs::status_kb(pid, "VmSize").unwrap_or(0)
}
