//! Streams through `ring-send NAME | ring-recv NAME`: the check writes seeded bytes into
//! ring-send's stdin in chunks of seeded random sizes and reads ring-recv's stdout from a
//! FIFO, comparing every byte on the fly (nothing of the stream is ever stored whole).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::check::{Ctx, Fail};
use crate::sandbox::{Ending, Proc};

use super::shm::{self, ensure_gone, first_line, made, start_recv, start_send, waiting_in};

/// The byte at stream offset `i` is `block[i % PERIOD]`: a prime period, so the pattern
/// never lines up with a power-of-two ring and a shifted, repeated or lost byte shows.
const PERIOD: usize = 1_048_573;

/// The seeded bytes of a stream, stored twice so that any chunk up to PERIOD is contiguous.
#[derive(Clone)]
pub(super) struct Pattern(Arc<Vec<u8>>);

impl Pattern {
    pub(super) fn new(ctx: &mut Ctx) -> Pattern {
        let mut block = ctx.random_bytes(PERIOD);
        block.extend_from_within(..);
        Pattern(Arc::new(block))
    }

    fn at(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % PERIOD as u64) as usize;
        &self.0[start..start + len]
    }
}

/// What came out of ring-recv.
#[derive(Debug, Default, Clone)]
pub(super) struct Received {
    /// Bytes read.
    pub bytes: u64,
    /// The first offset whose byte differs: (offset, expected, got).
    pub first_diff: Option<(u64, u8, u8)>,
}

/// Opens `fifo` for reading on a thread and reads it to EOF, comparing with `pattern` when
/// given. `progress` counts the bytes read so far.
pub(super) fn sink(
    fifo: PathBuf,
    pattern: Option<Pattern>,
    progress: Arc<AtomicU64>,
) -> mpsc::Receiver<Received> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = Received::default();
        if let Ok(mut f) = std::fs::File::open(&fifo) {
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let (Some(p), None) = (&pattern, got.first_diff) {
                    let want = p.at(got.bytes, n);
                    if want != &buf[..n] {
                        let k = want.iter().zip(&buf[..n]).position(|(a, b)| a != b);
                        let k = k.unwrap_or(0);
                        got.first_diff = Some((got.bytes + k as u64, want[k], buf[k]));
                    }
                }
                got.bytes += n as u64;
                progress.store(got.bytes, Ordering::Relaxed);
            }
        }
        let _ = tx.send(got);
    });
    rx
}

/// Writes `total` bytes of `pattern` into `p`'s stdin on a thread, in chunks of 1 to
/// `max_chunk` bytes drawn from `seed`, then closes it (once `hold` says so, if given).
/// EPIPE ends it quietly.
pub(super) fn feed(
    p: &mut Proc,
    pattern: Pattern,
    total: u64,
    max_chunk: usize,
    seed: u64,
    hold: Option<mpsc::Receiver<()>>,
) {
    let stdin = p.stdin().and_then(|s| s.as_fd().try_clone_to_owned().ok());
    p.close_stdin();
    let Some(stdin) = stdin else { return };
    std::thread::spawn(move || {
        let mut out = std::fs::File::from(stdin);
        let mut x = seed | 1;
        let mut sent = 0u64;
        while sent < total {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = ((x % max_chunk as u64) as usize + 1).min((total - sent) as usize);
            if out.write_all(pattern.at(sent, len)).is_err() {
                return;
            }
            sent += len as u64;
        }
        if let Some(hold) = hold {
            let _ = hold.recv();
        }
    });
}

/// A FIFO in the scratch folder for ring-recv's stdout.
pub(super) fn make_fifo(ctx: &Ctx, tag: &str) -> Result<PathBuf, Fail> {
    let path = ctx.scratch.join(format!("{tag}.fifo"));
    let _ = std::fs::remove_file(&path);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    Ok(path)
}

/// One stream through the two programs.
pub(super) struct Stream<'a> {
    /// The phrase for messages ("8 MiB through a 4096-byte ring").
    pub what: &'a str,
    /// Ring name tag.
    pub tag: &'a str,
    /// Bytes to send.
    pub total: u64,
    /// Largest chunk the check writes at once.
    pub max_chunk: usize,
    /// `--capacity` for ring-send, if any (then ring-send starts first).
    pub capacity: Option<usize>,
    /// Start ring-send first (else ring-recv first).
    pub sender_first: bool,
}

/// Runs `s`: both programs, the bytes through, both exits, nothing left in /dev/shm.
pub(super) fn run_stream(ctx: &mut Ctx, pattern: &Pattern, s: &Stream) -> Result<(), Fail> {
    let name = shm::ring_name(ctx, s.tag);
    let _remove = shm::RemoveOnDrop(name.clone());
    let fifo = make_fifo(ctx, s.tag)?;
    let cap_arg = s.capacity.map(|c| c.to_string());
    let extra: Vec<&str> = match &cap_arg {
        Some(c) => vec!["--capacity", c.as_str()],
        None => vec![],
    };
    let progress = Arc::new(AtomicU64::new(0));
    let got = sink(fifo.clone(), Some(pattern.clone()), progress.clone());
    let first_is = if s.sender_first {
        "ring-send"
    } else {
        "ring-recv"
    };
    let mut first = if s.sender_first {
        start_send(ctx, &name, &extra)?
    } else {
        start_recv(ctx, &name, &fifo.to_string_lossy())?
    };
    if !crate::check::poll_until(Instant::now() + Duration::from_secs(5), || made(&name)) {
        let out = ctx.finish(first_is, &mut first, Duration::from_millis(200));
        let said = out.map(|o| first_line(&o.stderr)).unwrap_or_default();
        return Err(Fail(format!(
            "`{first_is} {name}` started alone did not create /dev/shm{name} within 5 s (it said \
             {said}): the program that starts first creates the ring"
        )));
    }
    // The ring the first program made has the capacity asked for (`--capacity`, or the
    // default 256 KiB) and the header's 4096 bytes.
    let want = 4096 + s.capacity.unwrap_or(256 << 10) as u64;
    let mut size = 0;
    crate::check::poll_until(Instant::now() + Duration::from_secs(5), || {
        size = std::fs::metadata(shm::shm_file(&name)).map_or(0, |m| m.len());
        size != 0
    });
    if size != want {
        first.kill();
        let _ = std::fs::remove_file(shm::shm_file(&name));
        let asked = match s.capacity {
            Some(c) => format!("`--capacity {c}`"),
            None => "no --capacity (the default is 262144)".to_owned(),
        };
        return Err(Fail(format!(
            "`{first_is} {name}` with {asked} made /dev/shm{name} of {size} bytes, expected \
             {want} (the 4096-byte header and the capacity): create the ring with the capacity \
             the command line gives, and the default otherwise"
        )));
    }
    let mut second = if s.sender_first {
        start_recv(ctx, &name, &fifo.to_string_lossy())?
    } else {
        start_send(ctx, &name, &extra)?
    };
    let (send, recv) = if s.sender_first {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    let seed = ctx.next_u64();
    let (release, hold) = mpsc::channel();
    feed(
        send,
        pattern.clone(),
        s.total,
        s.max_chunk,
        seed,
        Some(hold),
    );

    // Wait for the output to end; a stall of 10 s with no byte moving is a hang. The input
    // ends only once ring-recv has written every byte and sleeps waiting for more: the end
    // of the stream must then wake it.
    let mut last = (0u64, Instant::now());
    let mut release = Some(release);
    let received = loop {
        match got.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => break r,
            Err(mpsc::RecvTimeoutError::Disconnected) => break Received::default(),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = progress.load(Ordering::Relaxed);
        if now >= s.total && release.is_some() {
            super::shm::wait_asleep(recv.pid, Duration::from_secs(2));
            release = None; // ring-send's stdin closes
            last = (now, Instant::now());
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            return Err(stalled(s, &name, now, send, recv));
        }
    };
    let send_out = ctx.finish("ring-send", send, Duration::from_secs(5))?;
    let recv_out = ctx.finish("ring-recv", recv, Duration::from_secs(5))?;
    let cmd = format!("`ring-send {name} | ring-recv {name}` ({})", s.what);
    if let Some((off, want, saw)) = received.first_diff {
        let ring = s.capacity.unwrap_or(0);
        let where_ = if ring > 0 {
            format!(
                ", byte {} of the {ring}-byte ring{}",
                off % ring as u64,
                if off % ring as u64 == 0 || off % ring as u64 == ring as u64 - 1 {
                    ", right at its end"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        };
        return Err(Fail(format!(
            "{cmd}: the checksum of ring-recv's output does not match what went into ring-send: \
             the first differing byte is at offset {off}{where_} (expected {want:#04x}, got \
             {saw:#04x}). Check the copy across the end of the ring: the part up to the end is \
             `capacity - (pos & (capacity - 1))` bytes, the rest goes to offset 0"
        )));
    }
    if received.bytes != s.total {
        return Err(Fail(format!(
            "{cmd}: ring-recv wrote {} bytes, expected {} (ring-send {}, ring-recv {}; \
             ring-recv said {})",
            received.bytes,
            s.total,
            send_out.ending.describe(),
            recv_out.ending.describe(),
            first_line(&recv_out.stderr)
        )));
    }
    for (prog, out) in [("ring-send", &send_out), ("ring-recv", &recv_out)] {
        if out.ending != Ending::Exited(0) {
            return Err(Fail(format!(
                "{cmd}: every byte arrived, but {prog} {} (expected status 0); it said {}",
                out.ending.describe(),
                first_line(&out.stderr)
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo);
    ensure_gone(&[&name], &format!("after {cmd} ended"))
}

/// The message for a stream that stopped moving.
fn stalled(s: &Stream, name: &str, bytes: u64, send: &mut Proc, recv: &mut Proc) -> Fail {
    let send_state = match send.try_ending() {
        Some(e) => format!("ring-send {}", e.describe()),
        None => format!("ring-send (pid {}) {}", send.pid, waiting_in(send.pid)),
    };
    let recv_state = match recv.try_ending() {
        Some(e) => format!("ring-recv {}", e.describe()),
        None => format!("ring-recv (pid {}) {}", recv.pid, waiting_in(recv.pid)),
    };
    let why = if bytes == s.total {
        "ring-recv wrote every byte but did not finish after ring-send's input ended: the end \
         of the stream never reached it. When read finds the ring empty it must check whether \
         the producer closed, also after each futex wait, and return 0"
    } else {
        "no byte moved for 10 s: one side sleeps although the other has moved (ring the \
         other side's futex word after each store of head or tail)"
    };
    let diagnosis = crate::sandbox::diagnose_tree();
    send.kill();
    recv.kill();
    let _ = std::fs::remove_file(shm::shm_file(name));
    Fail(format!(
        "`ring-send {name} | ring-recv {name}` ({}) did not finish within 10 s of its last \
         output, after {bytes} of {} bytes: {send_state}; {recv_state}. {why}. What its \
         processes were waiting for:\n{}",
        s.what,
        s.total,
        diagnosis.trim_end()
    ))
}
