//! Part B: the semaphore: create, open, wait, post, the lock guard, value, remove.

mod common;

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Cleanup, Counter};
use rstest::rstest;
use sysv_shm::{Key, Segment, Semaphore};
use testkit::expect::{Expect, expect_err_kind};

const BLOCKS: &str = "wait blocks while the value is 0: is the value what you think (SETVAL \
after semget), and does post add 1?";

/// A new semaphore has the value it was created with.
#[rstest]
#[case::free_lock(1)]
#[case::taken(0)]
#[case::three(3)]
fn create_with_value_part_b(#[case] value: u16) {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, value, 0o600).expect("Semaphore::create");
    cleanup.semaphore(sem.id());
    assert_eq!(sem.value().expect("value"), i32::from(value));
}

/// `wait` takes 1, `post` gives it back.
#[test]
fn wait_and_post_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 2, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 2, 0o600)");
    cleanup.semaphore(sem.id());
    common::within_deadline("wait() on a semaphore of value 2", BLOCKS, move || {
        sem.wait().expect("wait");
        assert_eq!(
            sem.value().expect_success("value after one wait"),
            1,
            "after one wait"
        );
        sem.wait().expect("wait");
        assert_eq!(
            sem.value().expect_success("value after two waits"),
            0,
            "after two waits"
        );
        sem.post().expect("post");
        assert_eq!(
            sem.value().expect_success("value after a post"),
            1,
            "after a post"
        );
    });
}

/// The guard holds the lock (value 0) and releases it when dropped (value 1).
#[test]
fn lock_guard_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 1, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 1, 0o600)");
    cleanup.semaphore(sem.id());
    common::within_deadline("lock() on a free lock", BLOCKS, move || {
        {
            let _guard = sem.lock().expect("lock");
            assert_eq!(
                sem.value().expect_success("value while the guard lives"),
                0,
                "while the guard lives the lock is taken"
            );
        }
        assert_eq!(
            sem.value().expect_success("value after dropping the guard"),
            1,
            "dropping the guard releases the lock"
        );
        let _again = sem.lock().expect("the lock can be taken again");
    });
}

/// A waiter wakes up once someone posts.
#[test]
fn post_wakes_waiter_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 0, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 0, 0o600)");
    cleanup.semaphore(sem.id());
    let waiter = std::thread::spawn(move || sem.wait());
    sem.post().expect("post");
    common::within_deadline("wait() after a post", BLOCKS, move || {
        waiter.join().expect("the waiting thread").expect("wait");
    });
    assert_eq!(
        sem.value()
            .expect_success("value after one post and one wait"),
        0
    );
}

/// `create` is exclusive and `open` finds the same set; a missing one is ENOENT.
#[rstest]
fn create_exclusive_and_open_part_b(#[from(common::counter)] c: Counter) {
    expect_err_kind(
        Semaphore::open(c.key),
        "Semaphore::open before any create (open must not create: semget without IPC_CREAT \
         fails with ENOENT)",
        ErrorKind::NotFound,
    );
    let sem = Semaphore::create(c.key, 1, 0o600).expect("create on a free key");
    let again = expect_err_kind(
        Semaphore::create(c.key, 1, 0o600),
        "Semaphore::create on a key that has a set already (create must be exclusive: semget \
         with IPC_CREAT | IPC_EXCL fails with EEXIST)",
        ErrorKind::AlreadyExists,
    );
    assert_eq!(
        again.raw_os_error(),
        Some(libc::EEXIST),
        "keep the OS error: {again:?}"
    );
    assert_eq!(Semaphore::open(c.key).expect("open").id(), sem.id());
    assert_eq!(
        sem.value()
            .expect_success("value of the first set after a second create failed"),
        1,
        "a failed create leaves the existing one alone"
    );
}

/// After `remove` the set is gone.
#[rstest]
fn remove_part_b(#[from(common::counter)] c: Counter) {
    let sem = Semaphore::create(c.key, 1, 0o600).expect_success("Semaphore::create on a free key");
    sem.remove().expect("remove");
    expect_err_kind(
        Semaphore::open(c.key),
        "Semaphore::open after remove (remove must delete the set: semctl IPC_RMID)",
        ErrorKind::NotFound,
    );
    let err = sem
        .value()
        .expect_failure("value of a removed set (its id is gone after remove)");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EINVAL),
        "value of a removed set: {err:?}"
    );
}

/// 4 threads x 2000 read-yield-write increments under the lock lose nothing.
#[test]
fn lock_makes_increments_exact_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 1, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 1, 0o600)");
    cleanup.semaphore(sem.id());
    let seg = Segment::create(Key::PRIVATE, 8, 0o600)
        .expect_success("Segment::create(Key::PRIVATE, 8, 0o600)");
    cleanup.segment(seg.id());
    let at = Arc::new(seg.attach().expect_success("attach of an 8-byte segment"));
    let total = common::within_deadline("4 threads x 2000 locked increments", BLOCKS, move || {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let at = Arc::clone(&at);
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let _guard = sem.lock().expect("lock");
                        let v = at.words()[0].load(Ordering::Relaxed);
                        std::thread::yield_now();
                        at.words()[0].store(v + 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("an incrementing thread");
        }
        at.words()[0].load(Ordering::SeqCst)
    });
    assert_eq!(
        total, 8000,
        "increments were lost: the guard must hold the lock"
    );
}
