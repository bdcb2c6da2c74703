//! Part A: `Mailbox`, a POSIX message queue.

mod common;

use std::io::ErrorKind;

use common::QueueName;
use mqueue::{Mailbox, Message, check_name};
use rstest::rstest;

/// A message sent comes back whole, with its priority.
#[test]
fn send_then_receive_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 4, 64).expect("create");
    mb.send(b"hello", 3).expect("send");
    let msg = mb.receive().expect("receive");
    assert_eq!(
        msg,
        Message {
            data: b"hello".to_vec(),
            priority: 3
        }
    );
}

/// The capacity and message size given at creation are what the queue has, also when it
/// is opened again by name.
#[rstest]
#[case::one_tiny(1, 16)]
#[case::default_limits(10, 8192)]
#[case::five_of_100(5, 100)]
fn capacity_and_size_part_a(#[case] capacity: usize, #[case] msg_size: usize) {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), capacity, msg_size).expect("create");
    assert_eq!(
        (mb.capacity(), mb.msg_size()),
        (capacity, msg_size),
        "create"
    );
    assert_eq!(mb.name(), name.as_str());
    let again = Mailbox::open(name.as_str()).expect("open");
    assert_eq!(
        (again.capacity(), again.msg_size()),
        (capacity, msg_size),
        "open reads the attributes with mq_getattr"
    );
}

/// Creating is exclusive: a second create of the same name is AlreadyExists.
#[test]
fn create_is_exclusive_part_a() {
    let name = QueueName::new();
    let _mb = Mailbox::create(name.as_str(), 2, 32).expect("create");
    let err = Mailbox::create(name.as_str(), 2, 32).expect_err("a second create must fail");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
}

/// Opening a queue that does not exist is NotFound.
#[test]
fn open_missing_part_a() {
    let name = QueueName::new();
    let err = Mailbox::open(name.as_str()).expect_err("no such queue");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// Names are checked before any system call: a leading '/', no other '/'.
#[rstest]
#[case::empty("")]
#[case::no_slash("jobs")]
#[case::only_slash("/")]
#[case::inner_slash("/a/b")]
#[case::too_long(&"/x".repeat(200))]
fn bad_names_part_a(#[case] name: &str) {
    let err = check_name(name).expect_err("a bad name");
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "check_name({name:?}): {err}"
    );
    let err = Mailbox::create(name, 2, 16).expect_err("create with a bad name");
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "create({name:?}): {err}"
    );
}

/// Good names pass the check.
#[rstest]
#[case::short("/q")]
#[case::with_dashes("/mqlab-123-4")]
fn good_names_part_a(#[case] name: &str) {
    check_name(name).expect("a good name");
}

/// After unlink the name is gone: open is NotFound, and so is a second unlink.
#[test]
fn unlink_removes_part_a() {
    let name = QueueName::new();
    drop(Mailbox::create(name.as_str(), 2, 16).expect("create"));
    Mailbox::unlink(name.as_str()).expect("unlink");
    assert!(
        !common::queue_exists(name.as_str()),
        "the queue still exists after unlink"
    );
    let err = Mailbox::open(name.as_str()).expect_err("open after unlink");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = Mailbox::unlink(name.as_str()).expect_err("a second unlink");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// receive returns the highest priority first, oldest first within one priority, and
/// reports each message's priority.
#[test]
fn highest_priority_first_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 5, 16).expect("create");
    for (data, prio) in [("a", 1), ("b", 5), ("c", 3), ("d", 5), ("e", 0)] {
        mb.send(data.as_bytes(), prio).expect("send");
    }
    let got: Vec<(String, u32)> = (0..5)
        .map(|_| {
            let m = mb.receive().expect("receive");
            (String::from_utf8_lossy(&m.data).into_owned(), m.priority)
        })
        .collect();
    let want: Vec<(String, u32)> = [("b", 5), ("d", 5), ("c", 3), ("a", 1), ("e", 0)]
        .iter()
        .map(|(d, p)| (d.to_string(), *p))
        .collect();
    assert_eq!(
        got, want,
        "messages and their priority as received: highest priority first, and each Message \
         must carry the priority mq_receive reported"
    );
}

/// try_receive on an empty queue is WouldBlock, at once.
#[test]
fn try_receive_empty_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 2, 16).expect("create");
    let err = common::within_deadline(
        "try_receive on an empty queue",
        "try_receive must never wait",
        move || mb.try_receive().expect_err("the queue is empty"),
    );
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
}

/// len counts the messages in the queue.
#[test]
fn len_counts_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 4, 16).expect("create");
    assert_eq!(mb.len().expect("len"), 0);
    mb.send(b"1", 0).expect("send");
    mb.send(b"2", 0).expect("send");
    assert_eq!(mb.len().expect("len"), 2);
    mb.receive().expect("receive");
    assert_eq!(mb.len().expect("len"), 1);
}

/// Messages keep their boundaries and bytes, from empty to exactly the message size.
#[rstest]
#[case::empty(0)]
#[case::one(1)]
#[case::full_size(128)]
fn keeps_boundaries_part_a(#[case] len: usize) {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 3, 128).expect("create");
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
    mb.send(&data, 1).expect("send");
    mb.send(b"next", 1).expect("send");
    assert_eq!(mb.receive().expect("receive").data, data);
    assert_eq!(mb.receive().expect("receive").data, b"next");
}

/// A sender blocked on a full queue goes on once a receiver makes room: 50 messages
/// through a queue of 2, between two threads that each opened the queue.
#[test]
fn blocking_send_and_receive_part_a() {
    let name = QueueName::new();
    let rx = Mailbox::create(name.as_str(), 2, 16).expect("create");
    let tx = Mailbox::open(name.as_str()).expect("open");
    let got = common::within_deadline(
        "50 messages through a queue of 2",
        "send must wait while the queue is full, and receive while it is empty",
        move || {
            let sender = std::thread::spawn(move || {
                for i in 0..50u32 {
                    tx.send(i.to_string().as_bytes(), 1).expect("send");
                }
            });
            let got: Vec<String> = (0..50)
                .map(|_| String::from_utf8_lossy(&rx.receive().expect("receive").data).into_owned())
                .collect();
            sender.join().expect("the sender thread");
            got
        },
    );
    let want: Vec<String> = (0..50).map(|i: u32| i.to_string()).collect();
    assert_eq!(got, want);
}
