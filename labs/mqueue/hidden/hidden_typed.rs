//! Hidden tests, part B: selecting by type, non-blocking receive, message sizes.

mod common;

use std::io::ErrorKind;

use common::SysvGuard;
use mqueue::{Select, TypedQueue};

fn private_queue() -> (TypedQueue, SysvGuard) {
    let q = TypedQueue::private().expect("TypedQueue::private");
    let guard = SysvGuard(q.id());
    (q, guard)
}

fn types(q: &TypedQueue, which: Select, n: usize) -> Vec<(i64, String)> {
    (0..n)
        .map(|_| {
            let (t, d) = q.try_receive(which).expect("a matching message is there");
            (t, String::from_utf8_lossy(&d).into_owned())
        })
        .collect()
}

/// AtMost(t) always takes the lowest type <= t first, oldest first within a type.
#[test]
fn at_most_lowest_first_part_b() {
    let (q, _guard) = private_queue();
    for (t, d) in [(7, "a"), (3, "b"), (9, "c"), (3, "d"), (5, "e")] {
        q.send(t, d.as_bytes()).expect("send");
    }
    assert_eq!(
        types(&q, Select::AtMost(8), 4),
        [
            (3, "b".into()),
            (3, "d".into()),
            (5, "e".into()),
            (7, "a".into())
        ],
        "AtMost(8) is msgrcv with msgtyp -8"
    );
    let err = q
        .try_receive(Select::AtMost(8))
        .expect_err("only type 9 is left");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    assert_eq!(types(&q, Select::Any, 1), [(9, "c".into())]);
}

/// try_receive with no matching message is WouldBlock and leaves the queue alone.
#[test]
fn try_receive_no_match_part_b() {
    let (q, _guard) = private_queue();
    let err = q.try_receive(Select::Any).expect_err("empty queue");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    q.send(4, b"four").expect("send");
    let err = q.try_receive(Select::Exactly(2)).expect_err("no type 2");
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    assert_eq!(
        q.len().expect("len"),
        1,
        "the type-4 message is still there"
    );
    assert_eq!(types(&q, Select::Exactly(4), 1), [(4, "four".into())]);
}

/// Up to 8192 bytes per message; more is InvalidInput.
#[test]
fn message_sizes_part_b() {
    let (q, _guard) = private_queue();
    let big: Vec<u8> = (0..8192).map(|i| (i % 251) as u8).collect();
    q.send(1, &big).expect("8192 bytes");
    q.send(2, b"").expect("an empty message");
    assert_eq!(q.receive(Select::Any).expect("receive"), (1, big));
    assert_eq!(q.receive(Select::Any).expect("receive"), (2, Vec::new()));
    let err = q.send(1, &[0u8; 8193]).expect_err("8193 bytes");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// Selecting type 0 or below with Exactly/AtMost is InvalidInput.
#[test]
fn bad_selection_part_b() {
    let (q, _guard) = private_queue();
    for which in [Select::Exactly(0), Select::AtMost(0), Select::Exactly(-2)] {
        let err = q.try_receive(which).expect_err("a selection of type <= 0");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{which:?}: {err}");
    }
}

/// len counts the messages of every type.
#[test]
fn len_part_b() {
    let (q, _guard) = private_queue();
    for t in 1..=5 {
        q.send(t, b"x").expect("send");
    }
    assert_eq!(q.len().expect("len"), 5);
    q.receive(Select::Exactly(3)).expect("receive");
    assert_eq!(q.len().expect("len"), 4);
    assert!(!q.is_empty().expect("is_empty"));
}
