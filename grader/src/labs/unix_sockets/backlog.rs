//! A client that falls behind and then catches up: `catch_up`.
//!
//! Three clients: a talker (joined first), a stalled client that stops reading, and an
//! observer that reads at once. The talker sends rounds of 1 KiB lines; after each round the
//! observer sends a short sync line and the talker waits for it, so the bus has finished
//! passing the round on before the check looks (one thread: it reads the sync line only
//! after it is done with the round). What the stalled client's socket holds is `SIOCINQ` on
//! it; the rest of what it is owed waits in the bus. The rounds go on until another round
//! could take what waits past 64 KiB (the least bound the contract accepts, which a bus may
//! use): the client must not be dropped.
//!
//! Then the bus is stopped (SIGSTOP), the stalled client reads a little (its socket has room
//! again, while older lines still wait in the bus), the talker sends one more line, and the
//! bus goes on (SIGCONT). The stalled client must receive every line it is owed, in order,
//! that last one last: a bus that writes the new line to the socket ahead of the older ones
//! still queued mixes the order every time, and one that never writes its queue again when
//! the socket has room (POLLOUT) leaves the client waiting. Last, lines wait in the bus
//! again and the client reads with nothing new sent: a bus that flushes an outbox only when
//! a new line comes for it leaves the client waiting every time. Nothing here hopes for
//! timing.

use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::sys::signal::Signal;

use super::PROMPT;
use super::harness::{NoLine, Peer, me, server_state, start_bus, wait_logged};
use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::sandbox::Proc;
use crate::{ensure, fail};

/// Bytes per line of the talker.
const LINE: usize = 1024;
/// Lines per round.
const ROUND: usize = 16;
/// The least outbox the contract accepts: the check fills the bus's part to this and more.
const OUTBOX_MIN: usize = 64 * 1024;
/// Rounds at most (8 MiB): past that, the machine's socket buffers are not what the check
/// knows.
const MAX_ROUNDS: usize = 512;

/// Line `k` of the talker.
fn line(k: usize) -> Vec<u8> {
    let mut l = format!("t{k:05} ").into_bytes();
    l.resize(LINE - 1, b'a' + (k % 26) as u8);
    l.push(b'\n');
    l
}

/// The observer's sync line after round `r`.
fn sync(r: usize) -> Vec<u8> {
    format!("sync {r}\n").into_bytes()
}

/// Bytes waiting to be read in `peer`'s socket (SIOCINQ).
fn queued_in_socket(peer: &Peer) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD (= SIOCINQ) writes one int.
    let r = unsafe { libc::ioctl(peer.stream.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r == 0 { n as usize } else { 0 }
}

/// Whether the bus has closed `peer`'s connection (data may still be queued to read).
fn hung_up(peer: &Peer) -> bool {
    let mut pfd = libc::pollfd {
        fd: peer.stream.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    r > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// The bus stopped with SIGSTOP; continued (SIGCONT) when dropped, whatever happens.
struct Stopped(i32);

impl Stopped {
    fn new(bus: &Proc) -> Option<Stopped> {
        bus.signal(Signal::SIGSTOP);
        let stopped = Stopped(bus.pid);
        let state = || testkit::procfs::stat(bus.pid).map(|s| s.state);
        poll_until(Instant::now() + PROMPT, || {
            matches!(state(), Some('T' | 't'))
        })
        .then_some(stopped)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), Signal::SIGCONT);
    }
}

/// The next line of `owed` from `at`, with its `\n`.
fn next_of(owed: &[u8], at: usize) -> &[u8] {
    let rest = &owed[at.min(owed.len())..];
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .map_or(rest.len(), |n| n + 1);
    &rest[..end]
}

/// The start of a line, for messages.
fn head(line: &[u8]) -> String {
    crate::run::clip(String::from_utf8_lossy(line).trim_end(), 24)
}

/// A client that stops reading while at least 64 KiB wait for it in the bus is not dropped,
/// and once it reads again it gets every line it is owed, in order.
pub(super) fn catch_up(ctx: &mut Ctx) -> CheckResult {
    // A socket's send buffer (the bus's, towards the client) holds at most wmem_default
    // bytes: the rounds must be able to go past it.
    let wmem = std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(212_992);
    if wmem > MAX_ROUNDS * ROUND * LINE / 2 {
        return Err(ctx.not_gradable_here(format!(
            "net.core.wmem_default is {wmem} bytes on this machine: more than the check can \
             fill before it judges a client's outbox"
        )));
    }
    let path = ctx.scratch.join("bus.sock");
    let mut bus = start_bus(ctx, &path, &[])?;
    let mut talker = Peer::connect(ctx, &path)?;
    wait_logged(&mut bus, me(), "joined", 1, "after the talker connected")?;
    let mut stalled = Peer::connect(ctx, &path)?;
    wait_logged(
        &mut bus,
        me(),
        "joined",
        2,
        "after a second client connected",
    )?;
    let mut observer = Peer::connect(ctx, &path)?;
    wait_logged(
        &mut bus,
        me(),
        "joined",
        3,
        "after a third client connected",
    )?;

    // What the stalled client is owed, in the order the bus must deliver it.
    let mut owed: Vec<u8> = Vec::new();
    let mut next = (0, 0);
    let mut three = Three {
        bus: &mut bus,
        talker: &mut talker,
        stalled: &stalled,
        observer: &mut observer,
    };
    let in_bus = three.fill(&mut owed, &mut next, OUTBOX_MIN)?;
    ensure!(
        in_bus >= OUTBOX_MIN / 2,
        "after {} KiB of lines to a client that does not read, its socket held {} KiB of \
         them: uds-bus seems to have enlarged the socket's buffer (SO_SNDBUF); leave it as it is",
        owed.len() / 1024,
        queued_in_socket(&stalled) / 1024
    );

    // The client reads a little while the bus is stopped, and a new line comes meanwhile.
    let mut at = 0;
    {
        let Some(_stopped) = Stopped::new(&bus) else {
            fail!(
                "uds-bus did not stop on SIGSTOP within {} s; {}",
                PROMPT.as_secs(),
                server_state(&mut bus)
            );
        };
        for _ in 0..ROUND {
            let want = next_of(&owed, at).to_vec();
            let got = stalled.line(Instant::now() + PROMPT);
            ensure!(
                matches!(&got, Ok(l) if *l == want),
                "a client that had stopped reading started again and expected {:?}, but got {}",
                head(&want),
                describe(&got)
            );
            at += want.len();
        }
        let last = b"the last line\n";
        talker.send(last)?;
        owed.extend_from_slice(last);
    }
    let before = at;
    match read_owed(&mut stalled, &owed, &mut at) {
        Ok(()) => {}
        Err(Short::Order { got, want }) => fail!(
            "a client stopped reading until about {} KiB waited for it in the bus, then read \
             {} KiB; meanwhile another client sent one more line. The first client then got \
             {:?} where {:?} was next: lines must reach each client in the order they were \
             sent. A line that arrives while older ones wait in a client's outbox goes \
             behind them (write straight to the socket only when the outbox is empty)",
            in_bus / 1024,
            (at - before + ROUND * LINE) / 1024,
            head(&got),
            head(&want)
        ),
        Err(Short::Late) => fail!(
            "a client stopped reading until about {} KiB waited for it in the bus, then read \
             again: it received {} KiB more, and then nothing for {} s although {} KiB were \
             still owed to it. The bus must write a client's outbox when its socket has room \
             again: ask poll for POLLOUT for every client whose outbox holds bytes, and flush \
             it then (not only when a new line comes). {}",
            in_bus / 1024,
            (at - before) / 1024,
            PROMPT.as_secs(),
            (owed.len() - at).div_ceil(1024),
            server_state(&mut bus)
        ),
        Err(Short::Cut(why)) => return Err(cut_off(in_bus, why, owed.len() - at, &mut bus)),
    }

    // Last, lines wait in the bus again and nothing new comes: only the bus's own POLLOUT
    // can bring them to the client as it reads (a bus that flushes an outbox only when a
    // new line comes for it never does).
    let got = observer.line(Instant::now() + PROMPT);
    ensure!(
        matches!(&got, Ok(l) if l.as_slice() == b"the last line\n"),
        "the third client expected the talker's line \"the last line\" and got {}. {}",
        describe(&got),
        server_state(&mut bus)
    );
    let mut three = Three {
        bus: &mut bus,
        talker: &mut talker,
        stalled: &stalled,
        observer: &mut observer,
    };
    let in_bus = three.fill(&mut owed, &mut next, LINE)?;
    let before = at;
    match read_owed(&mut stalled, &owed, &mut at) {
        Ok(()) => {}
        Err(Short::Order { got, want }) => fail!(
            "a client that had caught up stopped reading again until about {} KiB waited \
             for it in the bus, then read with no new line coming; it got {:?} where {:?} \
             was next: lines must reach each client in the order they were sent",
            in_bus / 1024,
            head(&got),
            head(&want)
        ),
        Err(Short::Late) => fail!(
            "a client stopped reading until about {} KiB waited for it in the bus, then read \
             again while nobody sent anything: it received {} KiB (what its socket held), \
             and then nothing for {} s although {} KiB were still owed to it. The bus must \
             write a client's outbox when its socket has room again, without waiting for a \
             new line: ask poll for POLLOUT for every client whose outbox holds bytes, and \
             flush it then. {}",
            in_bus / 1024,
            (at - before) / 1024,
            PROMPT.as_secs(),
            (owed.len() - at).div_ceil(1024),
            server_state(&mut bus)
        ),
        Err(Short::Cut(why)) => return Err(cut_off(in_bus, why, owed.len() - at, &mut bus)),
    }
    Ok(())
}

/// Where reading what a client is owed fell short.
enum Short {
    /// A line came out of order.
    Order { got: Vec<u8>, want: Vec<u8> },
    /// Nothing came for [`PROMPT`].
    Late,
    /// The bus closed the connection, or reading failed.
    Cut(NoLine),
}

/// Reads the lines of `owed` from `at` to its end, one by one, moving `at` past each.
fn read_owed(client: &mut Peer, owed: &[u8], at: &mut usize) -> Result<(), Short> {
    while *at < owed.len() {
        let want = next_of(owed, *at).to_vec();
        match client.line(Instant::now() + PROMPT) {
            Ok(l) if l == want => *at += want.len(),
            Ok(got) => return Err(Short::Order { got, want }),
            Err(NoLine::Late) => return Err(Short::Late),
            Err(why) => return Err(Short::Cut(why)),
        }
    }
    Ok(())
}

/// The failure of a client cut off (`why`) with `left` bytes still owed to it.
fn cut_off(in_bus: usize, why: NoLine, left: usize, bus: &mut Proc) -> Fail {
    Fail(format!(
        "a client stopped reading until about {} KiB waited for it in the bus (within the \
         bound), then read again, and {} with {} KiB still owed to it; {}",
        in_bus / 1024,
        match why {
            NoLine::Closed => "the bus closed its connection".to_string(),
            other => format!("reading failed ({other:?})"),
        },
        left.div_ceil(1024),
        server_state(bus)
    ))
}

/// The bus and its three clients: a talker, a client that has stopped reading, an observer.
struct Three<'a> {
    bus: &'a mut Proc,
    talker: &'a mut Peer,
    stalled: &'a Peer,
    observer: &'a mut Peer,
}

impl Three<'_> {
    /// Rounds of the talker's lines (each followed by the observer's sync line) until at
    /// least `enough` bytes owed to the stalled client wait in the bus, or another round
    /// could take them past the least bound the contract accepts (`OUTBOX_MIN`); `next` is
    /// the next line and round number. Returns the bytes waiting in the bus.
    fn fill(
        &mut self,
        owed: &mut Vec<u8>,
        next: &mut (usize, usize),
        enough: usize,
    ) -> Result<usize, crate::check::Fail> {
        let (talker, observer, stalled) = (&mut *self.talker, &mut *self.observer, self.stalled);
        let mut in_bus = 0;
        for _ in 0..MAX_ROUNDS {
            let (k0, r) = *next;
            let mut round = Vec::with_capacity(ROUND * LINE);
            for k in k0..k0 + ROUND {
                round.extend(line(k));
            }
            *next = (k0 + ROUND, r + 1);
            talker.send(&round)?;
            owed.extend_from_slice(&round);
            for j in k0..k0 + ROUND {
                let got = observer.line(Instant::now() + PROMPT);
                ensure!(
                    matches!(&got, Ok(l) if *l == line(j)),
                    "one client stopped reading while another sent lines of 1 KiB; a third \
                     client, which reads, expected line {j} ({:?}) and got {}. A client that \
                     does not read must not stall the others: write to client sockets without \
                     blocking and keep what one cannot take yet in its outbox. {}",
                    head(&line(j)),
                    describe(&got),
                    server_state(self.bus)
                );
            }
            let s = sync(r);
            observer.send(&s)?;
            owed.extend_from_slice(&s);
            let got = talker.line(Instant::now() + PROMPT);
            ensure!(
                matches!(&got, Ok(l) if *l == s),
                "the talker expected the third client's line {:?} and got {}. {}",
                head(&s),
                describe(&got),
                server_state(self.bus)
            );
            // The bus has read the sync line, so it is done with the round: what the stalled
            // client's socket does not hold waits in the bus.
            let in_socket = queued_in_socket(stalled);
            in_bus = owed.len().saturating_sub(in_socket);
            if hung_up(stalled) {
                let (held, waited) = (in_socket / 1024, in_bus / 1024);
                if in_bus < OUTBOX_MIN / 2 {
                    fail!(
                        "a client stopped reading; once its socket was full ({held} KiB), with \
                         about {waited} KiB waiting for it in the bus, the bus dropped it. A \
                         client whose socket is full has only fallen behind: what it cannot take \
                         yet waits in its outbox, and it is dropped only when that would go past \
                         the bound (256 KiB; any bound from 64 KiB to 1 MiB is accepted)"
                    );
                }
                fail!(
                    "a client stopped reading; after {} KiB of lines for it, its socket held \
                     {held} KiB and about {waited} KiB more waited for it in the bus, and the \
                     bus dropped it. The contract lets a client's outbox hold up to 256 KiB (any \
                     bound from 64 KiB to 1 MiB is accepted): OUTBOX_LIMIT, or the bound you \
                     give Outbox::new, is too small",
                    owed.len() / 1024
                );
            }
            // The next round (its lines and a sync line) must not take what waits past the
            // least bound: a bus with a 64 KiB outbox would rightly drop the client.
            if in_bus >= enough || in_bus + ROUND * LINE + 64 > OUTBOX_MIN {
                break;
            }
        }
        Ok(in_bus)
    }
}

/// What came instead of a line, for messages.
fn describe(got: &Result<Vec<u8>, NoLine>) -> String {
    match got {
        Ok(l) => format!("{:?}", head(l)),
        Err(NoLine::Closed) => "the end of the connection (the bus closed it)".into(),
        Err(NoLine::Late) => format!("nothing within {} s", PROMPT.as_secs()),
        Err(NoLine::Error(e)) => format!("a read error ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_kib_and_numbered() {
        assert_eq!(line(7).len(), LINE);
        assert!(line(7).starts_with(b"t00007 "));
        let owed = [line(0), sync(0)].concat();
        assert_eq!(next_of(&owed, 0), line(0).as_slice());
        assert_eq!(next_of(&owed, LINE), b"sync 0\n");
    }
}
