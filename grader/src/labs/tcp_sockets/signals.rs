//! SIGTERM and SIGINT: every request received is answered (what waits in the socket's
//! receive queue too), no new connection, exit 0; at once when nothing is owed; after at
//! most 5 s when a client does not read.
//!
//! The signal comes when the condition the scenario judges holds, seen in the kernel's
//! socket table: the server has begun answering and every byte of the requests has reached
//! its side of the connection (`harness::await_received`). Nothing waits on a clock but the
//! measures themselves (how long the server takes to exit).

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{CheckResult, Ctx, poll_until};
use crate::sandbox::Ending;
use crate::{ensure, fail};

use super::harness::{self, PROMPT, Raw, bulk, doing, expect, req};

/// How long a server may keep sending to clients that do not read, after the signal.
const DRAIN: Duration = Duration::from_secs(5);

/// How long a server that owes nothing may take to exit after the signal (it takes a
/// millisecond; a thread-per-client server that looks at a flag between read timeouts
/// takes up to its timeout).
const AT_ONCE: Duration = Duration::from_secs(2);

/// Whether connecting to `addr` is refused (the listener is closed), tried until `until`.
fn refused_by(addr: std::net::SocketAddr, until: Instant) -> bool {
    poll_until(until, || {
        // (with a timeout: a full backlog makes connect wait)
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

/// One client sends `n` GETs of a value of `len` bytes in one write; `sig` comes once the
/// server has begun answering them and every request has reached it. Then: no new
/// connection, every reply, EOF, exit 0; with `prompt_exit`, that exit within [`AT_ONCE`] of
/// the EOF (the client took every reply at once, so nothing is owed any more).
fn owed_at_signal(
    ctx: &mut Ctx,
    sig: Signal,
    n: usize,
    len: usize,
    prompt_exit: bool,
) -> CheckResult {
    let mut server = harness::start(ctx, &[])?;
    let name = sig.as_str();
    // Letters only: this scenario is about the signal, not about binary values.
    let value: Vec<u8> = ctx
        .random_bytes(len)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect();
    let subject = format!("{name} with replies owed");
    let mut c = Raw::connect(server.addr)?;
    harness::pipelining_works(&mut c, &subject)?;
    harness::prepare(&mut c, b"term:big", &value, &subject)?;
    let one = req(&[b"GET", b"term:big"]);
    let gets: Vec<u8> = one.repeat(n);
    c.send(&gets)?;
    let what = format!("{n} pipelined GETs of {} KiB", len >> 10);
    let unread = harness::await_received(&c, &what)
        .map_err(|f| crate::check::Fail(format!("{}; {}", f.0, doing(server.proc.pid))))?;
    server.proc.signal(sig);
    let sent_at = Instant::now();
    // A new connection must be refused now, while the replies are still owed (once they are
    // all sent the server exits, and its port is closed anyway). Tried for at most 2 s, well
    // within the 5 s a server gives its slow readers: a listener left open costs the
    // replies nothing.
    let refused = refused_by(server.addr, sent_at + AT_ONCE);
    let want = bulk(&value);
    for i in 0..n {
        let got = c.read_n(want.len());
        if got != want {
            let end = server.proc.wait_until(Instant::now() + PROMPT);
            // Which requests the server had read itself when the signal came.
            let read = (gets.len() as u64).saturating_sub(unread) / one.len() as u64;
            let cause = if end == Some(Ending::Signaled(sig as i32)) {
                format!(
                    ". It died of {name} itself: block {name} with the other signal and read \
                     both from the signalfd (a signal nobody takes has its default action, \
                     which ends the process)"
                )
            } else if unread > 0 {
                // Whether the lost reply answers a request still in the receive queue then,
                // or one the server had read itself (a server that stops reading may also
                // stop writing half-way): the evidence is named either way.
                let lost = if i as u64 >= read {
                    "it answered none of those: they count as received too, so read the \
                     socket until it has nothing more before you stop"
                } else {
                    "a reply to a request it had read was cut short before it exited: the \
                     requests in the receive queue count as received too, and every reply \
                     must be sent whole"
                };
                format!(
                    ". When {name} came, kv-server had read {read} of the {n} requests; the \
                     other {} ({unread} bytes) were still in its socket's receive queue, and \
                     {lost}",
                    n as u64 - read
                )
            } else {
                String::new()
            };
            fail!(
                "{what} were sent, and {name} came while most replies were still owed: reply \
                 {} arrived {} (then kv-server {}){cause}. On {name} stop accepting, but \
                 answer every request already received and send every reply before closing \
                 (wait for the sockets to take them)",
                i + 1,
                if got.is_empty() {
                    "not at all".to_string()
                } else {
                    format!("with {} of its {} bytes", got.len(), want.len())
                },
                end.map_or("was still running".into(), |e| e.describe())
            );
        }
    }
    if !c.closed_by_server() {
        let running = server.proc.try_ending().is_none();
        fail!(
            "after {name} and the last reply, the server must close the connection{}",
            if running {
                format!(
                    "; it was still open {} s later, and {}: it has not acted on {name}. \
                     Either it does not take {name} (block SIGTERM and SIGINT both and read \
                     them from the signalfd in the loop), or it never gets back to the loop \
                     where it would (a blocking call on one client)",
                    PROMPT.as_secs(),
                    doing(server.proc.pid)
                )
            } else {
                String::new()
            }
        );
    }
    let closed_at = Instant::now();
    // Exiting late is judged by the `signals` item (`prompt_exit`); here, only that it
    // exits 0.
    let ending = server
        .proc
        .wait_until(sent_at + DRAIN + Duration::from_secs(3));
    let after_close = closed_at.elapsed();
    ensure!(
        ending == Some(Ending::Exited(0)),
        "after {name} and the last reply, kv-server {} (expected exit 0 once every connection \
         is closed)",
        ending.map_or(
            format!(
                "was still running {} s after the signal",
                (DRAIN + Duration::from_secs(3)).as_secs()
            ),
            |e| e.describe()
        )
    );
    ensure!(
        refused,
        "after {name} kv-server still accepted new connections while it sent its last \
         replies: close the listening socket as soon as {name} arrives"
    );
    // The client took every reply as fast as it came and the server closed its only
    // connection: nothing is owed any more, so the exit comes now, not at the drain's
    // deadline (a right server exits in milliseconds; one that waits out the 5 s, 5 s after
    // the signal, while the replies took far less).
    ensure!(
        !prompt_exit || after_close <= AT_ONCE,
        "after {name} the client took every reply at once and kv-server closed its connection \
         ({} ms after the signal), but kv-server exited only {} ms after that, {} ms after the \
         signal (expected at once: within {} s of the last connection closing). The 5 s are a limit \
         for clients slow to take their replies, not a wait: end the drain as soon as no \
         connection is left (check it on every turn of the loop, not only when the signal \
         comes)",
        (closed_at - sent_at).as_millis(),
        after_close.as_millis(),
        (closed_at + after_close)
            .duration_since(sent_at)
            .as_millis(),
        AT_ONCE.as_secs()
    );
    Ok(())
}

/// SIGTERM while 24 MiB of replies are owed to a client that has not read them, and some of
/// its requests still wait in the socket's receive queue: no new connection is accepted,
/// every reply arrives, then EOF and exit 0.
pub(in crate::labs) fn sigterm_in_flight(ctx: &mut Ctx) -> CheckResult {
    // 3000 GETs are 81 KB: more than a 64 KiB read, and the first read's replies alone are
    // more than the sockets hold, so the rest stays in the receive queue.
    owed_at_signal(ctx, Signal::SIGTERM, 3000, 8 << 10, false)
}

/// SIGINT is SIGTERM; exit at once when nothing is owed; a client that never reads holds
/// the exit back at most 5 s, and the exit status is still 0.
pub(in crate::labs) fn signals(ctx: &mut Ctx) -> CheckResult {
    // 800 GETs are 23 KB, taken in one read: this is about SIGINT, not the receive queue.
    owed_at_signal(ctx, Signal::SIGINT, 800, 32 << 10, true)?;
    nothing_owed(ctx)?;
    a_client_that_never_reads(ctx)
}

/// SIGTERM with three clients that owe nothing (idle, answered, silent mid-request): each
/// connection closed, exit 0, in milliseconds.
fn nothing_owed(ctx: &mut Ctx) -> CheckResult {
    let mut server = harness::start(ctx, &[])?;
    // Accepted before the others are answered: one listener, taken in order.
    let idle = Raw::connect(server.addr)?;
    let mut answered = Raw::connect(server.addr)?;
    answered.send(&req(&[b"PING"]))?;
    expect(&mut answered, "PING", b"+PONG\r\n")?;
    let mut half = Raw::connect(server.addr)?;
    half.send_and_wait_read(b"*2\r\n$4\r\nECHO\r\n$5\r\nhal")?;
    server.proc.signal(Signal::SIGTERM);
    let sent_at = Instant::now();
    let ending = server
        .proc
        .wait_until(sent_at + DRAIN + Duration::from_secs(3));
    let took = sent_at.elapsed();
    match ending {
        None => fail!(
            "SIGTERM while three clients owed nothing (one idle, one answered, one silent \
             in the middle of a request): kv-server was still running {} s later; {}. Close \
             the connections that are owed nothing at once (a request that is not whole \
             yet is not received) and exit 0",
            (DRAIN + Duration::from_secs(3)).as_secs(),
            doing(server.proc.pid)
        ),
        Some(Ending::Exited(0)) if took <= AT_ONCE => {}
        Some(Ending::Exited(0)) => fail!(
            "SIGTERM while three clients owed nothing (one idle, one answered, one silent in \
             the middle of a request): kv-server exited 0 after {} ms, expected at once \
             (within {} s; a right server takes a few ms). The 5 s are for clients that are \
             slow to take replies owed; with nothing owed, close each connection and exit \
             without waiting{}",
            took.as_millis(),
            AT_ONCE.as_secs(),
            if took >= DRAIN - Duration::from_millis(200) {
                " (it waited out the whole drain time: is the end of the drain loop only its \
                 deadline, not also \"no connection left\"?)"
            } else {
                ""
            }
        ),
        Some(e) => fail!(
            "SIGTERM while three clients owed nothing: kv-server {} after {} ms (expected exit \
             0); {}",
            e.describe(),
            took.as_millis(),
            crate::check::stderr_of(&server.proc)
        ),
    }
    for (mut c, who) in [
        (idle, "idle"),
        (answered, "answered"),
        (half, "silent mid-request"),
    ] {
        ensure!(
            c.closed_by_server(),
            "after SIGTERM and the exit, the {who} client's connection was not closed"
        );
    }
    Ok(())
}

/// SIGTERM while 25 MiB of replies are owed to a client that never reads: kv-server gives
/// up on it after at most 5 s and exits 0.
fn a_client_that_never_reads(ctx: &mut Ctx) -> CheckResult {
    let mut server = harness::start(ctx, &[])?;
    let value = vec![b'z'; 32 << 10];
    let subject = "SIGTERM with a client that never reads";
    let mut c = Raw::connect(server.addr)?;
    harness::pipelining_works(&mut c, subject)?;
    harness::prepare(&mut c, b"term:stuck", &value, subject)?;
    c.send(&req(&[b"GET", b"term:stuck"]).repeat(800))?;
    harness::await_received(&c, "800 pipelined GETs of 32 KiB")?;
    server.proc.signal(Signal::SIGTERM);
    let sent_at = Instant::now();
    let limit = DRAIN + Duration::from_secs(3);
    let ending = server.proc.wait_until(sent_at + limit);
    let took = sent_at.elapsed();
    match ending {
        Some(Ending::Exited(0)) => Ok(()),
        None => fail!(
            "SIGTERM while a client that never reads was owed 25 MiB of replies: kv-server \
             was still running {} s later; {}. Wait for slow readers at most 5 s after the \
             signal, then close their connections and exit 0",
            limit.as_secs(),
            doing(server.proc.pid)
        ),
        Some(e) => fail!(
            "SIGTERM while a client that never reads was owed 25 MiB of replies: kv-server {} \
             {} ms after the signal (expected exit 0 within 5 s: giving up on a client that \
             does not take its replies is the normal end of the drain, not an error); {}",
            e.describe(),
            took.as_millis(),
            crate::check::stderr_of(&server.proc)
        ),
    }
}
