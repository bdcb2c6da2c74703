//! The checks of a server that must keep serving: `idle_cpu` (no spinning while idle),
//! `vanished_client` (clients that go away before their reply) and `bad_requests`
//! (malformed lines and garbage).

use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::write;

use super::ends::ReplyEnd;
use super::harness::{client, client_start, send, service_dir, start_server};
use super::state::{server_state, stderr_of};
use super::{FAKE_PID, PROMPT, trace};
use crate::check::{CheckResult, Ctx, Fail};
use crate::sandbox::Proc;
use crate::{ensure, fail};

// ---------------------------------------------------------------------------------------
// idle_cpu

pub(super) fn idle_cpu(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let server = start_server(ctx, &dir)?;
    // A writer must have come and gone: that is when a FIFO starts returning EOF.
    client_start(ctx, &dir, 1, "a first client")?;
    // The one timed wait: idleness is the absence of events, so it takes a stretch of time.
    testkit::cpu::check_idle(
        &[server.pid],
        Duration::from_secs(1),
        0.05,
        "Once the last writer has closed a FIFO, read() returns 0 (EOF) at once and poll() \
         reports POLLHUP at once, again and again. Keep a write end of your own FIFO open \
         (open it O_WRONLY after the read end): then there is always a writer, and \
         poll()/read() wait for the next request",
    )
    .map_err(|why| {
        Fail(format!(
            "fifo-server spins: no client was connected, and {why}"
        ))
    })?;
    let start = client_start(ctx, &dir, 1, "after an idle second")?;
    ensure!(
        start == 1,
        "after 0..1, the next client got {start} instead of 1"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// vanished_client

pub(super) fn vanished_client(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut server = start_server(ctx, &dir)?;
    // Three clients that cannot be answered, one after the other, then a real one.
    send(&dir, format!("{} 5\n", FAKE_PID + 1).as_bytes())?;
    let never_opened = ReplyEnd::new(&dir, FAKE_PID + 2, false)?;
    send(&dir, format!("{} 5\n", FAKE_PID + 2).as_bytes())?;
    let full = ReplyEnd::new(&dir, FAKE_PID + 3, true)?;
    let stuffer = open(
        &full.path,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    while write(&stuffer, &[b'#'; 4096]).is_ok() {}
    send(&dir, format!("{} 5\n", FAKE_PID + 3).as_bytes())?;
    let out = client(ctx, &dir, "4")?;
    if out.status() != 0 {
        fail!(
            "three clients went away without reading their reply (one had no reply FIFO, one had \
             never opened it, one had filled it up), and then a live client got no answer \
             (`fifo-client svc 4` exited with status {}: {}); {}. The server must never wait for \
             a client: open the reply FIFO with O_WRONLY|O_NONBLOCK (ENXIO: the client has \
             gone) and keep it non-blocking for the write (EAGAIN: drop the reply)",
            out.status(),
            out.stderr_str().trim(),
            server_state(&mut server)
        );
    }
    ensure!(
        out.stdout == b"0\n",
        "after three requests whose clients had gone, the first live client got {:?} instead \
         of \"0\\n\": numbers were granted to clients that never received them. Grant a block \
         only once its reply has been written",
        out.stdout_str()
    );
    drop((never_opened, full, stuffer));

    // A client that closes its FIFO after the server opened it and before it wrote.
    let mut gone = ReplyEnd::new(&dir, FAKE_PID + 4, true)?;
    let mut tracer = trace::Tracer::seize(server.pid)
        .map_err(|e| Fail(format!("the grader could not run this check: {e}")))?;
    let sent = send(&dir, format!("{} 5\n", FAKE_PID + 4).as_bytes());
    let seen = sent.is_ok() && tracer.until_open(&gone.path, PROMPT);
    gone.fd = None; // the last reader goes: the server's write now gets EPIPE
    tracer.detach();
    sent?;
    ensure!(
        seen,
        "the server never opened svc/client.{}.fifo to answer a request; {}",
        FAKE_PID + 4,
        server_state(&mut server)
    );
    let out = client(ctx, &dir, "1")?;
    // A server dying of SIGPIPE may close its FIFO (the client fails) a moment before it
    // can be waited for: when the client failed, give it that moment.
    let ending = if out.stdout == b"4\n" {
        server.try_ending()
    } else {
        server.wait_until(Instant::now() + Duration::from_secs(1))
    };
    if let Some(ending) = ending {
        fail!(
            "the server {} when it wrote a reply to a client that had just closed its FIFO. \
             Writing to a pipe that nobody reads raises SIGPIPE, which kills by default, and \
             fails with EPIPE: keep SIGPIPE ignored (Rust ignores it unless you reset it) and \
             treat EPIPE as \"this client has gone\"",
            ending.describe()
        );
    }
    ensure!(
        out.stdout == b"4\n",
        "after a client that vanished between the server's open and its write, the next client \
         got {:?} (status {}, {}) instead of \"4\\n\"",
        out.stdout_str(),
        out.status(),
        out.stderr_str().trim()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// bad_requests

pub(super) fn bad_requests(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut server = start_server(ctx, &dir)?;
    let mut pid = FAKE_PID + 100;
    let mut long = format!("{} ", FAKE_PID + 199).into_bytes();
    long.extend(std::iter::repeat_n(b'9', 5000));
    long.push(b'\n');
    let answered: Vec<(&str, Vec<u8>)> = vec![
        ("a count of 0", b"{pid} 0\n".to_vec()),
        ("a count of 1000001", b"{pid} 1000001\n".to_vec()),
        ("a negative count", b"{pid} -5\n".to_vec()),
        ("a count that is not a number", b"{pid} ten\n".to_vec()),
        ("no count", b"{pid}\n".to_vec()),
        ("three fields", b"{pid} 5 6\n".to_vec()),
        ("two spaces", b"{pid}  5\n".to_vec()),
        (
            "a count of 20 digits",
            b"{pid} 99999999999999999999\n".to_vec(),
        ),
        ("a 5000-byte line", long),
    ];
    for (what, template) in answered {
        pid += 1;
        let text = String::from_utf8_lossy(&template).replace("{pid}", &pid.to_string());
        let reply_pid = text
            .split(' ')
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(pid);
        let end = ReplyEnd::new(&dir, reply_pid, true)?;
        send(&dir, text.as_bytes())?;
        let got = end.line(PROMPT);
        let shown_req = crate::run::clip(&format!("{text:?}"), 60);
        ensure!(
            got.starts_with(b"error ") && got.ends_with(b"\n"),
            "a request with {what} ({shown_req}) must get one line `error <reason>` on its reply \
             FIFO; the client read {:?}; {}",
            String::from_utf8_lossy(&got),
            server_state(&mut server)
        );
    }
    // Lines with no pid to answer: dropped, and the server goes on.
    let mut sent = Vec::new();
    for (what, garbage) in [
        ("`hello world`", b"hello world\n".to_vec()),
        ("an empty line", b"\n".to_vec()),
        ("binary bytes (00 ff fe)", b"\x00\xff\xfe 3\n".to_vec()),
        ("pid -7", b"-7 3\n".to_vec()),
        ("pid 0", b"0 3\n".to_vec()),
        (
            "a 10000-byte line",
            [vec![b'x'; 10_000], b"\n".to_vec()].concat(),
        ),
    ] {
        send_or_explain(&mut server, &dir, &garbage, &sent)?;
        sent.push(what);
    }
    let end = ReplyEnd::new(&dir, FAKE_PID + 300, true)?;
    send_or_explain(
        &mut server,
        &dir,
        format!("{} 5\n", FAKE_PID + 300).as_bytes(),
        &sent,
    )?;
    let got = end.line(PROMPT);
    if got != b"0\n" {
        // No answer because the server has ended: say that, whenever it died.
        ended_on_garbage(&mut server, &sent)?;
    }
    ensure!(
        got == b"0\n",
        "after rejected requests and garbage (empty lines, binary bytes, a 10000-byte line, pids \
         0 and -7), a valid request `{} 5` got {:?} instead of \"0\\n\": bad requests must be \
         dropped or answered with `error`, never granted numbers, and the server must find the \
         start of the next line again; {}",
        FAKE_PID + 300,
        String::from_utf8_lossy(&got),
        server_state(&mut server)
    );
    let start = client_start(ctx, &dir, 2, "after garbage and a request for 0..5")?;
    ensure!(
        start == 5,
        "after 0..5 the next client got {start} instead of 5"
    );
    Ok(())
}

/// [`send`], but when nobody reads the FIFO any more because the server has ended, says so,
/// with the garbage it had been sent (`sent`), instead of guessing why the FIFO has no reader.
fn send_or_explain(server: &mut Proc, dir: &Path, bytes: &[u8], sent: &[&str]) -> CheckResult {
    let Err(err) = send(dir, bytes) else {
        return Ok(());
    };
    if sent.is_empty() {
        return Err(err);
    }
    ended_on_garbage(server, sent)?;
    Err(err)
}

/// Fails, saying so, if the server has ended (or ends within 2 s: it may still be
/// unwinding) after it was sent the garbage lines `sent`; `Ok` while it runs.
fn ended_on_garbage(server: &mut Proc, sent: &[&str]) -> CheckResult {
    match server.wait_until(Instant::now() + Duration::from_secs(2)) {
        Some(ending) => fail!(
            "bad input must never end the server: drop a line that has no pid (or answer \
             `error` when it has one) and go on. fifo-server {} after it was sent garbage \
             lines ({}), before it could answer the next request; {}",
            ending.describe(),
            sent.join(", "),
            stderr_of(server)
        ),
        None => Ok(()),
    }
}
