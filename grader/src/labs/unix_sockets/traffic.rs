//! The bus under traffic: `many_clients` (50 clients talking at once, lines cut in random
//! pieces) and `slow_reader` (a client that never reads while two others talk).

use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::PROMPT;
use super::harness::{NoLine, Peer, me, server_state, start_bus, wait_logged, wait_read_by_bus};
use crate::check::{CheckResult, Ctx, Fail};
use crate::{ensure, fail};

/// Clients of `many_clients`.
const CLIENTS: usize = 50;
/// Lines each of them sends.
const LINES: usize = 100;

/// Line `k` of client `i`: `c07 042 <letters>\n`, its length varying with both.
fn line_of(i: usize, k: usize) -> Vec<u8> {
    let pad = (i * 7 + k * 13) % 50;
    let letter = b'a' + ((i + k) % 26) as u8;
    let mut line = format!("c{i:02} {k:03} ").into_bytes();
    line.extend(std::iter::repeat_n(letter, pad));
    line.push(b'\n');
    line
}

/// A small generator for the piece sizes of one client (xorshift64*).
struct Pieces(u64);

impl Pieces {
    fn next(&mut self) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 58) as usize + 1
    }
}

/// How many lines a sender may be ahead of the slowest client that reads them. A piece never
/// goes past the end of its line, so at most `AHEAD + 1` lines of each sender are on their
/// way to a client: 98 writes of the bus at most, which no client's socket buffer is too
/// small for, however the 100 threads are scheduled. The bus's outboxes are never needed
/// here (whether one is would depend on scheduling); `catch_up` forces that case instead.
const AHEAD: usize = 1;

/// Per sender: how many of its lines each client has received (its own count stays at
/// `LINES`).
type Delivered = Arc<Vec<(Mutex<Vec<usize>>, Condvar)>>;

/// What one receiver found, or the first thing wrong: whether the bus closed its connection,
/// and what happened.
type Received = Result<(), (bool, String)>;

/// Reads lines at `me` until every other client's `LINES` lines came, checking that each is
/// whole, from another client, and the next one of its sender.
fn receive_all(me: usize, mut peer: Peer, deadline: Instant, delivered: &Delivered) -> Received {
    let mut next = [0usize; CLIENTS];
    let mut got = 0;
    let want = (CLIENTS - 1) * LINES;
    while got < want {
        let line = match peer.line(deadline) {
            Ok(l) => l,
            Err(NoLine::Closed) => {
                return Err((
                    true,
                    format!(
                        "client {me} was disconnected by the bus after {got} of its {want} lines"
                    ),
                ));
            }
            Err(NoLine::Late) => {
                return Err((
                    false,
                    format!(
                        "client {me} received only {got} of {want} lines in time (a partial line: \
                     {:?})",
                        crate::run::clip(&peer.partial(), 80)
                    ),
                ));
            }
            Err(NoLine::Error(e)) => {
                return Err((false, format!("client {me} could not read: {e}")));
            }
        };
        let text = String::from_utf8_lossy(&line);
        let sender = text
            .strip_prefix('c')
            .and_then(|t| t.get(..2))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&i| i < CLIENTS);
        let Some(i) = sender else {
            return Err((
                false,
                format!(
                    "client {me} received {:?}, which no client sent",
                    crate::run::clip(&text, 120)
                ),
            ));
        };
        if i == me {
            return Err((
                false,
                format!(
                    "client {me} received its own line {:?} back: a line goes to every other client, \
                 not to its sender",
                    text.trim_end()
                ),
            ));
        }
        if next[i] >= LINES || line != line_of(i, next[i]) {
            let expected = line_of(i, next[i].min(LINES - 1));
            return Err((
                false,
                format!(
                    "client {me} received {:?} where the next line of client {i} was {:?} (line \
                 {} of {LINES}): lines must arrive whole, exactly once, and in the order their \
                 sender wrote them",
                    crate::run::clip(&text, 120),
                    String::from_utf8_lossy(&expected),
                    next[i]
                ),
            ));
        }
        next[i] += 1;
        got += 1;
        let (counts, cv) = &delivered[i];
        counts.lock().unwrap_or_else(|e| e.into_inner())[me] = next[i];
        cv.notify_one();
    }
    Ok(())
}

/// 50 clients at once, each sending 100 numbered lines cut in random pieces: every other
/// client receives every line exactly once, whole, in per-sender order. A sender stays at most
/// [`AHEAD`] lines ahead of the clients reading it.
pub(super) fn many_clients(ctx: &mut Ctx) -> CheckResult {
    let path = ctx.scratch.join("bus.sock");
    let mut bus = start_bus(ctx, &path, &[])?;
    let mut peers = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        peers.push(Peer::connect(ctx, &path)?);
        wait_logged(
            &mut bus,
            me(),
            "joined",
            i + 1,
            &format!("after {} clients connected", i + 1),
        )?;
    }
    // Every client first sends 3 bytes of its first line, and the bus reads them all before
    // any line is finished: a bus that forwards what it reads instead of whole lines mixes
    // these pieces, whatever the timing.
    for (i, p) in peers.iter_mut().enumerate() {
        p.send(&line_of(i, 0)[..3])?;
    }
    if !wait_read_by_bus(&peers.iter().collect::<Vec<_>>(), PROMPT) {
        fail!(
            "50 clients each sent 3 bytes, and uds-bus did not read them within {} s; {}",
            PROMPT.as_secs(),
            server_state(&mut bus)
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let (tx, rx) = mpsc::channel::<(usize, Received)>();
    let delivered: Delivered = Arc::new(
        (0..CLIENTS)
            .map(|i| {
                let mut counts = vec![0; CLIENTS];
                counts[i] = LINES;
                (Mutex::new(counts), Condvar::new())
            })
            .collect(),
    );
    let mut writers = Vec::new();
    for (i, peer) in peers.into_iter().enumerate() {
        let mut writer = Peer::from(peer.stream.try_clone()?);
        let mut pieces = Pieces(ctx.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let seen = Arc::clone(&delivered);
        writers.push(thread::spawn(move || {
            let mut rest: Vec<u8> = line_of(i, 0)[3..].to_vec();
            // Where each line ends in `rest`.
            let mut ends = vec![rest.len()];
            for k in 1..LINES {
                rest.extend(line_of(i, k));
                ends.push(rest.len());
            }
            let mut at = 0;
            while at < rest.len() {
                // The piece is part of line `k`: every line before it is written whole. Wait
                // until every other client has received all of them but the last AHEAD.
                let k = ends.partition_point(|&end| end <= at);
                let (counts, cv) = &seen[i];
                let mut got = counts.lock().unwrap_or_else(|e| e.into_inner());
                while got.iter().min().copied().unwrap_or(0) < k.saturating_sub(AHEAD) {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return;
                    }
                    got = cv
                        .wait_timeout(got, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                drop(got);
                let n = pieces.next().min(ends[k] - at);
                if writer.send(&rest[at..at + n]).is_err() {
                    return;
                }
                at += n;
                thread::yield_now();
            }
        }));
        let tx = tx.clone();
        let delivered = Arc::clone(&delivered);
        thread::spawn(move || {
            let _ = tx.send((i, receive_all(i, peer, deadline, &delivered)));
        });
    }
    drop(tx);
    // The first problem is the verdict: once one client is wrong, the others may wait for
    // lines that will never come.
    let first = rx.iter().find_map(|(_, result)| result.err());
    let Some((closed, what)) = first else {
        for w in writers {
            let _ = w.join();
        }
        return Ok(());
    };
    if closed {
        fail!(
            "50 clients each sent {LINES} numbered lines, written in random pieces of 1 to 64 \
             bytes, and every client read all the time; {what}. A client that reads must never \
             be dropped: when its socket is full for a moment, what it cannot take yet waits in \
             its outbox (up to 256 KiB) and is written when poll reports POLLOUT. {}",
            server_state(&mut bus)
        );
    }
    fail!(
        "50 clients each sent {LINES} numbered lines, written in random pieces of 1 to 64 bytes; \
         {what}. Keep the unfinished end of each client's stream in its own buffer until its \
         newline arrives, and send each line, whole, to every other client in the order it \
         came. {}",
        server_state(&mut bus)
    );
}

/// Lines the talker sends in `slow_reader`, of [`BIG_LINE`] bytes each: 4 MiB.
const BIG_LINES: usize = 4096;
/// Bytes per line in `slow_reader`.
const BIG_LINE: usize = 1024;
/// How many lines the talker may be ahead of the reading client (64 KiB).
const WINDOW: usize = 64;
/// The longest pause in the flow to the reading client that counts as no stall.
const STALL: Duration = Duration::from_secs(5);

/// Line `k` of the talker in `slow_reader`.
fn big_line(k: usize) -> Vec<u8> {
    let mut line = format!("a{k:05} ").into_bytes();
    line.resize(BIG_LINE - 1, b'a' + (k % 26) as u8);
    line.push(b'\n');
    line
}

/// A client that never reads while another sends 4 MiB to a third: the third gets every line
/// without a stall, and the one that never reads is dropped (logged) and disconnected.
pub(super) fn slow_reader(ctx: &mut Ctx) -> CheckResult {
    let path = ctx.scratch.join("bus.sock");
    let mut bus = start_bus(ctx, &path, &[])?;
    let mut sleeper = Peer::connect(ctx, &path)?;
    wait_logged(&mut bus, me(), "joined", 1, "after one client connected")?;
    let mut talker = Peer::connect(ctx, &path)?;
    wait_logged(&mut bus, me(), "joined", 2, "after two clients connected")?;
    let mut reader = Peer::connect(ctx, &path)?;
    wait_logged(&mut bus, me(), "joined", 3, "after three clients connected")?;
    // The talker stays at most WINDOW lines ahead of the reading client, as a sender that
    // waits for replies would: a reader that keeps up is never more than that behind, while
    // the one that never reads falls 4 MiB behind.
    let progress = Arc::new((Mutex::new(0usize), Condvar::new()));
    let seen = Arc::clone(&progress);
    let sending = thread::spawn(move || {
        let (lock, cv) = &*seen;
        for k in 0..BIG_LINES {
            let mut got = lock.lock().unwrap_or_else(|e| e.into_inner());
            while k >= *got + WINDOW {
                let (g, timeout) = cv
                    .wait_timeout(got, STALL * 2)
                    .unwrap_or_else(|e| e.into_inner());
                got = g;
                if timeout.timed_out() {
                    return talker;
                }
            }
            drop(got);
            if talker.send(&big_line(k)).is_err() {
                break;
            }
        }
        talker
    });
    for k in 0..BIG_LINES {
        let line = match reader.line(Instant::now() + STALL) {
            Ok(l) => l,
            Err(why) => {
                let what = match why {
                    NoLine::Closed => "the bus closed its connection".to_string(),
                    NoLine::Late => format!("nothing more came for {} s", STALL.as_secs()),
                    NoLine::Error(e) => format!("reading failed: {e}"),
                };
                fail!(
                    "one client never reads, another sends 4 MiB in lines of 1 KiB to the bus, \
                     and the third client received only {k} of the 4096 lines: {what}. The \
                     client that never reads must not stall the others: {}. Make every client \
                     socket non-blocking, keep what a client cannot take yet in a bounded \
                     buffer (written when poll reports POLLOUT), and drop that client once its \
                     buffer is full",
                    server_state(&mut bus)
                );
            }
        };
        {
            let (lock, cv) = &*progress;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = k + 1;
            cv.notify_one();
        }
        ensure!(
            line == big_line(k),
            "the reading client's line {k} of 4096 was {:?} instead of {:?}",
            crate::run::clip(&String::from_utf8_lossy(&line), 60),
            crate::run::clip(&String::from_utf8_lossy(&big_line(k)), 60)
        );
    }
    let _talker = sending
        .join()
        .map_err(|_| Fail("the talker thread panicked".into()))?;
    wait_logged(
        &mut bus,
        me(),
        "dropped",
        1,
        "after 4 MiB went past a client that never reads",
    )?;
    let (_, closed) = sleeper.until_closed(Instant::now() + PROMPT);
    ensure!(
        closed,
        "uds-bus logged that it dropped the client that never reads, but did not close its \
         connection (it could still read after {} s): close the socket of a dropped client",
        PROMPT.as_secs()
    );
    Ok(())
}
