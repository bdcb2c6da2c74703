//! Part B: blocking when the ring is empty or full, the end of the stream, and a peer that
//! dies without closing.

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, RingName, pattern};
use shm_ring::{Ring, RingError};
use testkit::Expect;

const FUTEX_HINT: &str = "a side that waits must wake up when the other side moves: after \
storing head (or tail), ring the futex word the other side sleeps on";

/// A writer of 1 MiB through a 4096-byte ring blocks while it is full and resumes as the
/// reader (another thread) drains it; every byte arrives.
#[test]
fn full_ring_blocks_the_writer_until_read_part_b() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "1 MiB through a 4096-byte ring, two threads",
        DEADLINE,
        FUTEX_HINT,
        move || {
            let mut tx = Ring::create(&n, 4096)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let mut rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            let data = pattern(1 << 20);
            let sent = data.clone();
            let writer = std::thread::spawn(move || {
                tx.write_all(&sent).expect_success("write_all");
                tx.close();
            });
            let mut out = Vec::new();
            let mut buf = vec![0u8; 1500];
            loop {
                let got = rx.read(&mut buf).expect_success("read");
                if got == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..got]);
            }
            writer.join().expect("the writer thread");
            testkit::assert_same_bytes("the bytes read", &data, &out);
        },
    );
}

/// A reader of an empty ring blocks until the writer writes, then returns those bytes.
#[test]
fn empty_ring_blocks_the_reader_until_written_part_b() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "a read that waits for a write",
        DEADLINE,
        FUTEX_HINT,
        move || {
            let mut tx = Ring::create(&n, 4096)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let mut rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            let (tid, reader) = common::reader_thread(move || {
                let mut buf = [0u8; 8];
                let got = rx.read(&mut buf).expect_success("read");
                buf[..got].to_vec()
            });
            // Best effort: the write should find the reader asleep on the empty ring.
            common::wait_asleep(tid, Duration::from_secs(1));
            tx.write_all(b"late").expect_success("write_all");
            let got = reader.join().expect("the reader thread");
            testkit::assert_same_bytes("what read returned", b"late", &got);
        },
    );
}

/// After the producer closes, read returns what is left and then 0, again and again.
#[test]
fn read_returns_zero_at_the_end_of_the_stream_part_b() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "read after close",
        DEADLINE,
        "read must return 0 once the producer closed and the ring is empty",
        move || {
            let mut tx = Ring::create(&n, 4096)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let mut rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            tx.write_all(b"last words").expect_success("write_all");
            tx.close();
            let mut buf = [0u8; 64];
            let got = rx.read(&mut buf).expect_success("read");
            testkit::assert_same_bytes("what read returned", b"last words", &buf[..got]);
            assert_eq!(
                rx.read(&mut buf).expect_success("read at the end"),
                0,
                "read at the end of the stream"
            );
            assert_eq!(
                rx.read(&mut buf).expect_success("read again"),
                0,
                "a second read at the end"
            );
        },
    );
}

/// A reader asleep on an empty ring wakes as soon as the producer closes, and sees the end
/// of the stream: in a few milliseconds, not at its next 100 ms futex timeout. Five rings,
/// the median wake-up judged.
#[test]
fn close_wakes_a_blocked_reader_part_b() {
    let mut waits = Vec::new();
    for _ in 0..5 {
        let name = RingName::new();
        let n = name.0.clone();
        let took = testkit::within(
            "a blocked read, then close",
            DEADLINE,
            "close must wake a consumer that sleeps on an empty ring",
            move || {
                let tx = Ring::create(&n, 4096)
                    .expect_success("Ring::create")
                    .producer()
                    .expect_success("producer");
                let mut rx = Ring::open(&n)
                    .expect_success("Ring::open")
                    .consumer()
                    .expect_success("consumer");
                let (tid, reader) = common::reader_thread(move || {
                    let mut buf = [0u8; 8];
                    let got = rx.read(&mut buf).expect_success("read");
                    (got, Instant::now())
                });
                // The reader sleeps on the empty ring (its futex wait) before the close.
                common::wait_asleep(tid, Duration::from_secs(2));
                let closed = Instant::now();
                tx.close();
                let (got, woke) = reader.join().expect("the reader thread");
                assert_eq!(got, 0, "read after close of an empty ring");
                woke.saturating_duration_since(closed)
            },
        );
        waits.push(took);
    }
    waits.sort();
    let median = waits[waits.len() / 2];
    assert!(
        median < Duration::from_millis(50),
        "a consumer asleep on an empty ring returned 0 only {:.0} ms after the producer's close \
         (median of 5; each: {}): the close did not wake it, it saw the end of the stream at \
         its futex timeout. close must store `closed` and then ring the consumer's bell \
         (bump it and FUTEX_WAKE) when it sleeps, like a write does",
        median.as_secs_f64() * 1000.0,
        waits
            .iter()
            .map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// A writer blocked on a full ring wakes when the consumer closes, with
/// `RingError::PeerClosed`, instead of waiting for room that will never come.
#[test]
fn close_wakes_a_blocked_writer_part_b() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "a write blocked on a full ring, then the consumer closes",
        Duration::from_secs(3),
        "a producer waiting for room must also wake when the consumer closes: include the \
         consumer's closed flag in the condition it waits for",
        move || {
            let mut tx = Ring::create(&n, 4096)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            tx.write_all(&pattern(4096)).expect_success("write_all");
            let (tid, writer) = common::reader_thread(move || tx.write(b"one more"));
            common::wait_asleep(tid, Duration::from_secs(2));
            rx.close();
            match writer.join().expect("the writer thread") {
                Err(RingError::PeerClosed) => {}
                other => panic!(
                    "a write blocked on a full ring returned {other:?} after the consumer \
                     closed, expected Err(RingError::PeerClosed)"
                ),
            }
        },
    );
}

/// Dropping a half closes it like close(): the consumer reads what is left, then 0; the
/// producer's next write after the consumer is dropped fails with PeerClosed.
#[test]
fn dropping_a_half_closes_it_part_b() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "a read after the producer was dropped",
        Duration::from_secs(3),
        "dropping a Producer or Consumer must close it (impl Drop), exactly as close() does",
        move || {
            let mut tx = Ring::create(&n, 4096)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let mut rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            tx.write_all(b"bye").expect_success("write_all");
            drop(tx);
            let mut buf = [0u8; 8];
            let got = rx.read(&mut buf).expect_success("read");
            testkit::assert_same_bytes("what read returned", b"bye", &buf[..got]);
            assert_eq!(
                rx.read(&mut buf)
                    .expect_success("read after the producer was dropped"),
                0,
                "read after the producer was dropped (not closed) and the ring emptied"
            );
        },
    );
    let name = RingName::new();
    let mut tx = Ring::create(name.as_str(), 4096)
        .expect_success("Ring::create")
        .producer()
        .expect_success("producer");
    let rx = Ring::open(name.as_str())
        .expect_success("Ring::open")
        .consumer()
        .expect_success("consumer");
    drop(rx);
    match tx.write(b"anyone?") {
        Err(RingError::PeerClosed) => {}
        other => panic!(
            "write after the consumer was dropped returned {other:?}, expected Err(RingError::PeerClosed)"
        ),
    }
}

/// A producer process that dies without closing (it calls _exit) turns the consumer's read
/// into `RingError::PeerDied` within a second.
#[test]
fn a_dead_producer_is_noticed_part_b() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "read while the producer dies",
        DEADLINE,
        "check the peer's pid (pidfd or kill(pid, 0)) each time a futex wait times out",
        move || {
            let ring = Ring::create(&n, 4096).expect_success("Ring::create");
            let mut rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            // SAFETY: the child only attaches (no allocation) and leaves with _exit.
            match unsafe { nix::unistd::fork() }.expect("fork") {
                nix::unistd::ForkResult::Child => {
                    let tx = ring.producer();
                    let code = if tx.is_ok() { 0 } else { 1 };
                    // Die without closing: no destructor runs.
                    std::mem::forget(tx);
                    unsafe { libc::_exit(code) }
                }
                nix::unistd::ForkResult::Parent { child } => {
                    let t0 = Instant::now();
                    let mut buf = [0u8; 8];
                    let got = rx.read(&mut buf);
                    let _ = nix::sys::wait::waitpid(child, None);
                    match got {
                        Err(RingError::PeerDied { .. }) => {}
                        other => panic!(
                            "read after the producer died returned {other:?}, expected Err(RingError::PeerDied)"
                        ),
                    }
                    assert!(
                        t0.elapsed() < Duration::from_millis(1500),
                        "the dead producer was noticed only after {:?}",
                        t0.elapsed()
                    );
                }
            }
        },
    );
}

/// Once the consumer closed, a write fails instead of filling the ring for nobody.
#[test]
fn write_after_the_consumer_closed_fails_part_b() {
    let name = RingName::new();
    let mut tx = Ring::create(name.as_str(), 4096)
        .expect_success("Ring::create")
        .producer()
        .expect_success("producer");
    let rx = Ring::open(name.as_str())
        .expect_success("Ring::open")
        .consumer()
        .expect_success("consumer");
    rx.close();
    match tx.write(b"anyone?") {
        Err(RingError::PeerClosed) => {}
        other => panic!(
            "write after the consumer closed returned {other:?}, expected Err(RingError::PeerClosed)"
        ),
    }
}
