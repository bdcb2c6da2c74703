//! Hidden tests, part A: every way a write and a read can meet the end of the ring, and a
//! stress of two threads on two cores.

mod common;

use common::{DEADLINE, RingName, pattern};
use shm_ring::Ring;
use testkit::Expect;

/// Capacity 4096: from every start offset near the end and near the start, messages that
/// end just before the end, exactly at it, just after it, and that fill the whole ring.
/// Each comes back intact, and the read side is read in the same sizes so that reads
/// straddle the end too.
#[test]
fn every_wrap_around_size_class_part_a() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "messages across the end of a 4096-byte ring",
        DEADLINE,
        "",
        move || {
            const CAP: usize = 4096;
            let mut tx = Ring::create(&n, CAP)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let mut rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            let data = pattern(2 * CAP);
            let mut pos = 0usize; // stream position, the same on both sides between rounds
            let mut buf = vec![0u8; CAP];
            let starts: Vec<usize> = (0..70)
                .chain(CAP - 70..CAP)
                .chain([1000, 2048, 3000])
                .collect();
            for &start in &starts {
                // Move both sides to `start` (mod CAP).
                let skip = (start + CAP - pos % CAP) % CAP;
                if skip > 0 {
                    tx.write_all(&data[..skip]).expect_success("write_all");
                    let mut got = 0;
                    while got < skip {
                        got += rx.read(&mut buf[got..skip]).expect_success("read");
                    }
                    pos += skip;
                }
                let to_end = CAP - start;
                let mut sizes = vec![1, 2, 3, 63, 64, 65, CAP - 1, CAP];
                sizes.extend([to_end.saturating_sub(1), to_end, to_end + 1, to_end + 2]);
                for len in sizes.into_iter().filter(|&l| l >= 1 && l <= CAP) {
                    let msg = &data[pos % 251..pos % 251 + len];
                    tx.write_all(msg).expect_success("write_all");
                    let mut got = 0;
                    while got < len {
                        got += rx.read(&mut buf[got..len]).expect_success("read");
                    }
                    if buf[..len] != *msg {
                        panic!(
                            "a {len}-byte message written at ring offset {} (stream offset {pos}) came back \
                         different: {}",
                            pos % CAP,
                            testkit::compare::bytes_diff(msg, &buf[..len]).unwrap_or_default()
                        );
                    }
                    pos += len;
                }
            }
        },
    );
}

/// Two threads, 16 MiB in pieces of every size from 1 to 600 bytes through a 4096-byte
/// ring: the reader checks every byte, so a byte read before it was written shows.
#[test]
fn two_threads_stress_part_a() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "16 MiB between two threads",
        std::time::Duration::from_secs(10),
        "",
        move || {
            let mut tx = Ring::create(&n, 4096)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let mut rx = Ring::open(&n)
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            const TOTAL: usize = 16 << 20;
            let byte = |i: usize| (i % 253) as u8;
            let writer = std::thread::spawn(move || {
                let src: Vec<u8> = (0..1000).map(byte).collect();
                let (mut sent, mut size) = (0usize, 1usize);
                while sent < TOTAL {
                    let len = size.min(TOTAL - sent);
                    let off = sent % 253;
                    tx.write_all(&src[off..off + len])
                        .expect_success("write_all");
                    sent += len;
                    size = size % 600 + 1;
                }
            });
            let mut buf = vec![0u8; 4096];
            let (mut got, mut size) = (0usize, 7usize);
            while got < TOTAL {
                let n = rx.read(&mut buf[..size]).expect_success("read");
                assert_ne!(n, 0, "read returned 0 after {got} of {TOTAL} bytes");
                for (k, b) in buf[..n].iter().enumerate() {
                    if *b != byte(got + k) {
                        panic!(
                            "byte {} of the stream is {b:#04x}, expected {:#04x}: it was read before the producer's write of it was visible (store head with Release, load it with Acquire)",
                            got + k,
                            byte(got + k)
                        );
                    }
                }
                got += n;
                size = size % 4096 + 1;
            }
            writer.join().expect("the writer thread");
        },
    );
}
