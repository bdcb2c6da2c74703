//! Hidden tests, part A: a Mailbox that is full or empty, timeouts, oversized messages,
//! priority order with many messages.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::QueueName;
use mqueue::Mailbox;
use rstest::rstest;

/// try_send on a full queue is WouldBlock, sends nothing, and does not wait.
#[test]
fn try_send_full_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 3, 16).expect("create");
    for m in ["a", "b", "c"] {
        mb.try_send(m.as_bytes(), 1).expect("try_send with room");
    }
    let mb = common::within_deadline(
        "try_send on a full queue",
        "try_send must never wait",
        move || {
            match mb.try_send(b"d", 1) {
                Err(e) => assert_eq!(
                    e.kind(),
                    ErrorKind::WouldBlock,
                    "try_send on a full queue must fail with WouldBlock: {e}"
                ),
                Ok(()) => panic!(
                    "try_send on a full queue (3 of 3 messages) returned Ok, but nothing was sent: \
                     it must fail with WouldBlock (mq_timedsend said ETIMEDOUT, or mq_send EAGAIN)"
                ),
            }
            mb
        },
    );
    assert_eq!(
        mb.len().expect("len"),
        3,
        "the queue still holds its 3 messages"
    );
    let got: Vec<Vec<u8>> = (0..3)
        .map(|_| mb.receive().expect("receive").data)
        .collect();
    assert_eq!(got, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

/// send_timeout on a full queue is TimedOut after about the timeout.
#[test]
fn send_timeout_full_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 1, 16).expect("create");
    mb.send(b"full", 0).expect("send");
    let (err, took) = common::within_deadline(
        "send_timeout(200 ms) on a full queue",
        "send_timeout must give up after its timeout",
        move || {
            let start = Instant::now();
            let err = mb
                .send_timeout(b"x", 0, Duration::from_millis(200))
                .expect_err("full");
            (err, start.elapsed())
        },
    );
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(
        took >= Duration::from_millis(150),
        "send_timeout(200 ms) gave up after {took:?}: it must wait for room until the timeout"
    );
}

/// receive_timeout on an empty queue is TimedOut after about the timeout; a message that
/// arrives in time is returned.
#[test]
fn receive_timeout_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 2, 16).expect("create");
    let (err, took, mb) = common::within_deadline(
        "receive_timeout(200 ms) on an empty queue",
        "receive_timeout must give up after its timeout",
        move || {
            let start = Instant::now();
            let err = mb
                .receive_timeout(Duration::from_millis(200))
                .expect_err("empty");
            (err, start.elapsed(), mb)
        },
    );
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert!(took >= Duration::from_millis(150), "gave up after {took:?}");
    mb.send(b"here", 4).expect("send");
    let msg = mb
        .receive_timeout(Duration::from_secs(2))
        .expect("a message is there");
    assert_eq!((msg.data.as_slice(), msg.priority), (&b"here"[..], 4));
}

/// A message longer than the queue's message size is InvalidInput, whichever send.
#[rstest]
#[case::send("send")]
#[case::try_send("try_send")]
#[case::send_timeout("send_timeout")]
fn oversized_part_a(#[case] how: &str) {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 2, 16).expect("create");
    let big = [7u8; 17];
    let result = match how {
        "send" => mb.send(&big, 0),
        "try_send" => mb.try_send(&big, 0),
        _ => mb.send_timeout(&big, 0, Duration::from_millis(100)),
    };
    let err = result.expect_err("17 bytes into a queue of 16-byte messages");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{how}: {err}");
    mb.send(&[7u8; 16], 0).expect("exactly 16 bytes fit");
    assert_eq!(mb.len().expect("len"), 1);
}

/// Many messages with mixed priorities come out highest priority first, oldest first
/// within a priority, each with its priority.
#[test]
fn priority_order_many_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 10, 32).expect("create");
    let prios = [3u32, 9, 0, 3, 7, 9, 1, 0, 7, 3];
    for (i, p) in prios.iter().enumerate() {
        mb.send(format!("m{i}").as_bytes(), *p).expect("send");
    }
    let mut want: Vec<(u32, usize)> = prios.iter().copied().zip(0..).collect();
    want.sort_by_key(|&(p, i)| (std::cmp::Reverse(p), i));
    let want: Vec<(String, u32)> = want.iter().map(|(p, i)| (format!("m{i}"), *p)).collect();
    let got: Vec<(String, u32)> = (0..prios.len())
        .map(|_| {
            let m = mb.receive().expect("receive");
            (String::from_utf8_lossy(&m.data).into_owned(), m.priority)
        })
        .collect();
    assert_eq!(
        got, want,
        "(message, priority) in the order received: highest priority first, each with the \
         priority it was sent with"
    );
}

/// A sender waiting on a full queue goes on when a message is taken.
#[test]
fn send_waits_for_room_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 1, 16).expect("create");
    let other = Mailbox::open(name.as_str()).expect("open");
    mb.send(b"first", 0).expect("send");
    let got = common::within_deadline(
        "a blocking send on a full queue, then two receives",
        "send must wait for room, and go on once there is some",
        move || {
            let sender = std::thread::spawn(move || other.send(b"second", 0));
            let a = mb
                .receive_timeout(Duration::from_secs(5))
                .expect("first")
                .data;
            let b = mb
                .receive_timeout(Duration::from_secs(5))
                .expect("second")
                .data;
            sender
                .join()
                .expect("sender thread")
                .expect("the blocked send");
            (a, b)
        },
    );
    assert_eq!(got, (b"first".to_vec(), b"second".to_vec()));
}

/// A capacity or size of 0 is InvalidInput, and creates nothing.
#[rstest]
#[case::no_capacity(0, 16)]
#[case::no_size(4, 0)]
fn zero_attributes_part_a(#[case] capacity: usize, #[case] size: usize) {
    let name = QueueName::new();
    let err = Mailbox::create(name.as_str(), capacity, size).expect_err("invalid attributes");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        !common::queue_exists(name.as_str()),
        "no queue may be created"
    );
}
