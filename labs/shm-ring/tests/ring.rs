//! Part A: creating, opening, validating and removing a ring, and bytes through it in one
//! process (both halves here).

mod common;

use common::{DEADLINE, RingName, pattern};
use shm_ring::{Ring, RingError};
use testkit::Expect;

/// Bytes written by the producer half come out of the consumer half of the same ring.
#[test]
fn bytes_come_out_as_they_went_in_part_a() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within("create, open, write, read", DEADLINE, "", move || {
        let mut tx = Ring::create(&n, 4096)
            .expect_success("Ring::create")
            .producer()
            .expect_success("producer");
        let mut rx = Ring::open(&n)
            .expect_success("Ring::open")
            .consumer()
            .expect_success("consumer");
        tx.write_all(b"hello, ring").expect_success("write_all");
        let mut buf = [0u8; 64];
        let got = rx.read(&mut buf).expect_success("read");
        testkit::assert_same_bytes("what read returned", b"hello, ring", &buf[..got]);
    });
}

/// Ten times the capacity through a 4096-byte ring, in pieces that do not divide it: every
/// byte arrives in order across many wrap-arounds.
#[test]
fn wraps_around_many_times_part_a() {
    let name = RingName::new();
    let n = name.0.clone();
    testkit::within(
        "40960 bytes through a 4096-byte ring",
        DEADLINE,
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
            let data = pattern(40960);
            let mut out = Vec::new();
            for piece in data.chunks(3001) {
                tx.write_all(piece).expect_success("write_all");
                let mut buf = vec![0u8; 4096];
                let mut got = 0;
                while got < piece.len() {
                    got += rx.read(&mut buf[got..piece.len()]).expect_success("read");
                }
                out.extend_from_slice(&buf[..got]);
            }
            testkit::assert_same_bytes("the bytes read back", &data, &out);
        },
    );
}

/// A second create of the same name is refused, and the first ring is untouched.
#[test]
fn create_is_exclusive_part_a() {
    let name = RingName::new();
    let _first = Ring::create(name.as_str(), 4096).expect_success("the first Ring::create");
    match Ring::create(name.as_str(), 4096) {
        Err(RingError::Exists(_)) => {}
        other => panic!(
            "a second Ring::create of {} returned {other:?}, expected Err(RingError::Exists)",
            name.0
        ),
    }
    Ring::open(name.as_str()).expect_success("Ring::open after the refused create");
}

/// A capacity that is not a power of two from 4096 up is refused before anything is made.
#[test]
fn capacity_must_be_a_power_of_two_part_a() {
    for cap in [0, 1000, 4095, 5000, 1 << 27] {
        let name = RingName::new();
        match Ring::create(name.as_str(), cap) {
            Err(RingError::BadCapacity(c)) => assert_eq!(c, cap),
            other => panic!(
                "Ring::create with capacity {cap} returned {other:?}, expected Err(RingError::BadCapacity)"
            ),
        }
        assert!(
            !name.exists(),
            "Ring::create with capacity {cap} failed but left {} behind",
            name.path()
        );
    }
}

/// Names that shm_open would not take the same way are refused.
#[test]
fn bad_names_are_refused_part_a() {
    for bad in ["", "/", "noslash", "/a/b", "/.", "/.."] {
        match Ring::create(bad, 4096) {
            Err(RingError::BadName(_)) => {}
            other => {
                panic!("Ring::create({bad:?}) returned {other:?}, expected Err(RingError::BadName)")
            }
        }
    }
}

/// Opening a name that does not exist says so.
#[test]
fn open_of_a_missing_ring_is_not_found_part_a() {
    let name = RingName::new();
    match Ring::open(name.as_str()) {
        Err(RingError::NotFound(_)) => {}
        other => panic!(
            "Ring::open of a missing ring returned {other:?}, expected Err(RingError::NotFound)"
        ),
    }
}

/// An object of the right size that is not a ring (wrong magic) is refused, not used.
#[test]
fn open_refuses_an_object_that_is_not_a_ring_part_a() {
    let name = RingName::new();
    std::fs::write(name.path(), vec![0xA5u8; 4096 + 4096]).expect("write a fake object");
    match Ring::open(name.as_str()) {
        Err(RingError::Mismatch { .. }) => {}
        other => panic!(
            "Ring::open of 8192 bytes of 0xA5 returned {other:?}, expected Err(RingError::Mismatch)"
        ),
    }
}

/// After unlink the name is gone; a ring already open keeps working.
#[test]
fn unlink_removes_the_name_part_a() {
    let name = RingName::new();
    let mut tx = Ring::create(name.as_str(), 4096)
        .expect_success("Ring::create")
        .producer()
        .expect_success("producer");
    let mut rx = Ring::open(name.as_str())
        .expect_success("Ring::open")
        .consumer()
        .expect_success("consumer");
    Ring::unlink(name.as_str()).expect_success("Ring::unlink");
    assert!(
        !name.exists(),
        "{} still exists after Ring::unlink",
        name.path()
    );
    tx.write_all(b"still here")
        .expect_success("write_all after unlink");
    let mut buf = [0u8; 16];
    let got = rx.read(&mut buf).expect_success("read after unlink");
    testkit::assert_same_bytes("what read returned", b"still here", &buf[..got]);
}

/// A side can be taken once: a second producer of the same ring is refused.
#[test]
fn a_second_producer_is_refused_part_a() {
    let name = RingName::new();
    let _tx = Ring::create(name.as_str(), 4096)
        .expect_success("Ring::create")
        .producer()
        .expect_success("producer");
    match Ring::open(name.as_str())
        .expect_success("Ring::open")
        .producer()
    {
        Err(RingError::Busy { .. }) => {}
        other => panic!("a second producer() returned {other:?}, expected Err(RingError::Busy)"),
    }
}
