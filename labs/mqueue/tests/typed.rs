//! Part B: `TypedQueue`, a System V message queue.

mod common;

use std::io::ErrorKind;

use common::SysvGuard;
use mqueue::{Select, TypedQueue, key_for};
use rstest::rstest;

/// A private queue, removed when the guard drops (even if the test fails).
fn private_queue() -> (TypedQueue, SysvGuard) {
    let q = TypedQueue::private().expect("TypedQueue::private");
    let guard = SysvGuard(q.id());
    (q, guard)
}

fn text((mtype, data): (i64, Vec<u8>)) -> (i64, String) {
    (mtype, String::from_utf8_lossy(&data).into_owned())
}

/// Select::Any takes the messages in the order they were sent, with their types.
#[test]
fn any_in_order_part_b() {
    let (q, _guard) = private_queue();
    q.send(2, b"first").expect("send");
    q.send(1, b"second").expect("send");
    assert_eq!(
        text(q.receive(Select::Any).expect("receive")),
        (2, "first".into())
    );
    assert_eq!(
        text(q.receive(Select::Any).expect("receive")),
        (1, "second".into())
    );
}

/// Select::Exactly(t) takes the oldest message of type t and leaves the others.
#[test]
fn exactly_one_type_part_b() {
    let (q, _guard) = private_queue();
    for (t, d) in [(3, "a"), (1, "b"), (2, "c"), (1, "d")] {
        q.send(t, d.as_bytes()).expect("send");
    }
    assert_eq!(
        text(q.receive(Select::Exactly(1)).expect("receive")),
        (1, "b".into())
    );
    assert_eq!(
        text(q.receive(Select::Exactly(1)).expect("receive")),
        (1, "d".into())
    );
    assert_eq!(
        text(q.receive(Select::Exactly(3)).expect("receive")),
        (3, "a".into())
    );
    assert_eq!(q.len().expect("len"), 1, "only the type-2 message is left");
}

/// Select::AtMost(t) takes the lowest type that is at most t.
#[test]
fn lowest_type_at_most_part_b() {
    let (q, _guard) = private_queue();
    for (t, d) in [(5, "five"), (3, "three"), (4, "four")] {
        q.send(t, d.as_bytes()).expect("send");
    }
    assert_eq!(
        text(q.receive(Select::AtMost(4)).expect("receive")),
        (3, "three".into())
    );
    assert_eq!(
        text(q.receive(Select::AtMost(4)).expect("receive")),
        (4, "four".into())
    );
    assert_eq!(
        text(q.receive(Select::AtMost(9)).expect("receive")),
        (5, "five".into())
    );
}

/// A message type must be > 0.
#[rstest]
#[case::zero(0)]
#[case::negative(-3)]
fn bad_type_part_b(#[case] mtype: i64) {
    let (q, _guard) = private_queue();
    let err = q.send(mtype, b"x").expect_err("a type <= 0");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "send({mtype}): {err}");
}

/// A key made from a path finds the same queue; create is exclusive; after remove the key
/// finds nothing.
#[test]
fn key_create_open_remove_part_b() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let key = key_for(dir.path(), b'q').expect("key_for");
    let q = TypedQueue::create(key).expect("create");
    let _guard = SysvGuard(q.id());
    let again = TypedQueue::open(key).expect("open");
    assert_eq!(again.id(), q.id(), "open finds the queue create made");
    let err = TypedQueue::create(key).expect_err("a second create");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    q.send(7, b"through the key").expect("send");
    assert_eq!(
        text(again.receive(Select::Any).expect("receive")),
        (7, "through the key".into())
    );
    q.remove().expect("remove");
    let err = TypedQueue::open(key).expect_err("open after remove");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// A removed queue refuses messages.
#[test]
fn removed_queue_fails_part_b() {
    let (q, _guard) = private_queue();
    let same = TypedQueue::from_id(q.id());
    q.remove().expect("remove");
    assert!(
        same.send(1, b"x").is_err(),
        "send to a removed queue must fail"
    );
    assert!(same.len().is_err(), "len of a removed queue must fail");
}
