//! Hidden tests, parts A and B: a Mailbox and a TypedQueue leak nothing however often they
//! are used, and a Mailbox's queue has the mode its contract states.

mod common;

use common::{QueueName, SysvGuard};
use mqueue::typed::Select;
use mqueue::{Mailbox, TypedQueue};
use testkit::Expect;

/// What to do about a descriptor or a queue that the library leaves behind.
const MAILBOX_ADVICE: &str = "every Mailbox must close its queue descriptor (mq_close) when it \
is dropped, and unlink must remove the queue's name (mq_unlink)";

/// 1000 rounds of create, send, receive, drop and unlink leave no descriptor and no queue.
#[test]
fn mailbox_create_send_receive_unlink_leaks_nothing_part_a() {
    testkit::assert_no_leak(1000, "Mailbox::create + send + receive + unlink", MAILBOX_ADVICE, |_| {
        let name = QueueName::new();
        let mb = Mailbox::create(name.as_str(), 4, 64).expect_success("Mailbox::create");
        mb.send(b"ping", 1).expect_success("send");
        let got = mb.receive().expect_success("receive");
        testkit::assert_same_bytes("the message received", b"ping", &got.data);
        drop(mb);
        Mailbox::unlink(name.as_str()).expect_success("Mailbox::unlink");
    });
}

/// 1000 opens of one queue, each dropped, leave no descriptor; nor do 1000 failed opens,
/// try_receives on an empty queue and timed receives.
#[test]
fn mailbox_open_and_failed_calls_leak_nothing_part_a() {
    let name = QueueName::new();
    let mb = Mailbox::create(name.as_str(), 2, 32).expect_success("Mailbox::create");
    let missing = QueueName::new();
    testkit::assert_no_leak(1000, "Mailbox::open, try_receive and a failed open", MAILBOX_ADVICE, |_| {
        let other = Mailbox::open(name.as_str()).expect_success("Mailbox::open");
        other.try_receive().expect_failure("try_receive on an empty queue");
        drop(other);
        Mailbox::open(missing.as_str()).expect_failure("Mailbox::open of a missing queue");
    });
    mb.receive_timeout(std::time::Duration::from_millis(1))
        .expect_failure("receive_timeout on an empty queue");
}

/// A queue made by Mailbox::create has mode 0600, whatever the umask allows.
#[test]
fn mailbox_mode_is_0600_part_a() {
    let name = QueueName::new();
    let _mb = Mailbox::create(name.as_str(), 2, 32).expect_success("Mailbox::create");
    let mode = testkit::ipc::queue_mode(name.as_str())
        .unwrap_or_else(|| panic!("the queue {} does not exist after create", name.as_str()));
    testkit::ipc::assert_mode(&format!("the queue {}", name.as_str()), 0o600, mode);
}

/// 1000 rounds of create, send, receive and remove of a System V queue leave none behind.
#[test]
fn typed_queue_leaks_nothing_part_b() {
    testkit::assert_no_leak(
        1000,
        "TypedQueue::private + send + receive + remove",
        "remove must delete the queue (msgctl IPC_RMID)",
        |_| {
            let q = TypedQueue::private().expect_success("TypedQueue::private");
            let _guard = SysvGuard(q.id());
            q.send(7, b"typed").expect_success("send");
            let (t, data) = q.receive(Select::Any).expect_success("receive");
            assert_eq!(t, 7, "the type received");
            testkit::assert_same_bytes("the message received", b"typed", &data);
            q.remove().expect_success("TypedQueue::remove");
        },
    );
}

/// A System V queue made by TypedQueue::private has mode 0600.
#[test]
fn typed_queue_mode_is_0600_part_b() {
    let q = TypedQueue::private().expect_success("TypedQueue::private");
    let _guard = SysvGuard(q.id());
    let obj = testkit::ipc::sysv_by_id(testkit::ipc::SysvKind::Queue, q.id())
        .unwrap_or_else(|| panic!("queue id {} is not in /proc/sysvipc/msg", q.id()));
    testkit::ipc::assert_mode(&format!("System V queue {}", q.id()), 0o600, obj.mode);
}
