//! Back-pressure, both halves: a client that pipelines requests whose replies are far more
//! than any output bound costs the server a bounded amount of memory while it does not
//! read, and gets every reply, in order, once it does.
//!
//! The condition is forced, not hoped for: the client reads nothing until kv-server has
//! read every request, begun answering, and gone to sleep (every thread waits) with replies
//! still owed, which the kernel's socket table and /proc show. Only then does it read.

use std::time::Instant;

use crate::check::{CheckResult, Ctx, poll_until};
use crate::{ensure, fail};

use super::harness::{self, PROMPT, Raw, all_asleep, bulk, doing, expect, req, vm_hwm};

/// GETs in the pipeline, and the value's size: 2000 x 32 KiB = 62.5 MiB of replies for
/// 52 KB of requests (one read). The value is sent in one SET of one segment.
const GETS: usize = 2000;
const VALUE: usize = 32 << 10;

/// How much the server's peak memory may grow while the client does not read.
const MAX_GROWTH_MIB: u64 = 16;

/// 2000 GETs of 32 KiB sent in one write by a client that reads nothing until the server
/// waits; then it reads all 62.5 MiB.
pub(in crate::labs) fn backpressure(ctx: &mut Ctx) -> CheckResult {
    let server = harness::start(ctx, &[])?;
    let pid = server.proc.pid;
    let value: Vec<u8> = ctx
        .random_bytes(VALUE)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect();
    let mut c = Raw::connect(server.addr)?;
    harness::pipelining_works(&mut c, "back-pressure")?;
    harness::prepare(&mut c, b"bp:big", &value, "back-pressure")?;
    let before = vm_hwm(pid);
    c.send(&req(&[b"GET", b"bp:big"]).repeat(GETS))?;
    let what = format!("{GETS} pipelined GETs of 32 KiB");
    harness::await_received(&c, &what)?;
    let me = c.stream.local_addr()?;
    // Every request is in; the server has done what it can once it sleeps with the client's
    // receive queue non-empty (it cannot be done: the replies are more than the sockets
    // hold).
    if !poll_until(Instant::now() + PROMPT, || {
        all_asleep(pid) && harness::rx_queue(me, server.addr).unwrap_or(0) > 0
    }) {
        fail!(
            "a client sent {what} and did not read: kv-server never went to sleep within {} \
             s ({}). While a client does not take its replies there is nothing to do for it: \
             wait in epoll_wait (for EPOLLOUT) or in a blocked write, without spinning (see \
             idle-cpu); back-pressure was not judged",
            PROMPT.as_secs(),
            doing(pid)
        );
    }
    let grew = vm_hwm(pid).saturating_sub(before) >> 10;
    ensure!(
        grew <= MAX_GROWTH_MIB,
        "a client sent {what} (62.5 MiB of replies) and did not read: kv-server's peak memory \
         (VmHWM) grew by {grew} MiB meanwhile (at most {MAX_GROWTH_MIB} MiB expected). Stop \
         running a connection's requests once the replies it owes pass a bound (say 1 MiB), \
         and go on with them when the replies are out; otherwise a client that sends \
         without reading fills your memory"
    );
    // Now it reads, and must get everything.
    let want = bulk(&value);
    for i in 0..GETS {
        let got = c.read_n(want.len());
        if got == want {
            continue;
        }
        if got.len() == want.len() || !want.starts_with(&got) {
            fail!(
                "{what} (the client reading only once kv-server had stopped writing): reply {} \
                 of {GETS} is not the value: {}. Replies must leave in request order, each \
                 whole: keep what a write did not take at the front of the connection's output \
                 and send it first",
                i + 1,
                testkit::compare::bytes_diff(&want, &got).unwrap_or_default()
            );
        }
        let unread = harness::queues(server.addr, me).map_or(0, |(_, rx)| rx);
        fail!(
            "{what}: the client read {i} whole replies ({} MiB) once kv-server had stopped \
             writing, and then {} within {} s. kv-server {}; {}. Back-pressure must resume: \
             once the replies that piled up are out, go on with the requests still in the \
             connection's buffer. A client that has sent everything will send nothing more to \
             wake you, so do not wait for it to",
            (i * want.len()) >> 20,
            if got.is_empty() {
                "nothing more came".to_string()
            } else {
                format!(
                    "only {} of the next reply's {} bytes",
                    got.len(),
                    want.len()
                )
            },
            PROMPT.as_secs(),
            if unread == 0 {
                "had read every request (its socket's receive queue was empty)".to_string()
            } else {
                format!("had {unread} bytes of the requests unread in its socket's receive queue")
            },
            doing(pid)
        );
    }
    c.send(&req(&[b"PING"]))?;
    expect(
        &mut c,
        "PING on the same connection after the 2000 replies",
        b"+PONG\r\n",
    )
}
