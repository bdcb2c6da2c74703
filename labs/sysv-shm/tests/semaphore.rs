//! Part B: the semaphore: create, open, wait, post, the lock guard, value, remove.

mod common;

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Cleanup, Counter};
use rstest::rstest;
use sysv_shm::{Key, Segment, Semaphore};

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
    let sem = Semaphore::create(Key::PRIVATE, 2, 0o600).unwrap();
    cleanup.semaphore(sem.id());
    common::within_deadline("wait() on a semaphore of value 2", BLOCKS, move || {
        sem.wait().expect("wait");
        assert_eq!(sem.value().unwrap(), 1, "after one wait");
        sem.wait().expect("wait");
        assert_eq!(sem.value().unwrap(), 0, "after two waits");
        sem.post().expect("post");
        assert_eq!(sem.value().unwrap(), 1, "after a post");
    });
}

/// The guard holds the lock (value 0) and releases it when dropped (value 1).
#[test]
fn lock_guard_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 1, 0o600).unwrap();
    cleanup.semaphore(sem.id());
    common::within_deadline("lock() on a free lock", BLOCKS, move || {
        {
            let _guard = sem.lock().expect("lock");
            assert_eq!(
                sem.value().unwrap(),
                0,
                "while the guard lives the lock is taken"
            );
        }
        assert_eq!(
            sem.value().unwrap(),
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
    let sem = Semaphore::create(Key::PRIVATE, 0, 0o600).unwrap();
    cleanup.semaphore(sem.id());
    let waiter = std::thread::spawn(move || sem.wait());
    sem.post().expect("post");
    common::within_deadline("wait() after a post", BLOCKS, move || {
        waiter.join().expect("the waiting thread").expect("wait");
    });
    assert_eq!(sem.value().unwrap(), 0);
}

/// `create` is exclusive and `open` finds the same set; a missing one is ENOENT.
#[rstest]
fn create_exclusive_and_open_part_b(#[from(common::counter)] c: Counter) {
    let err = Semaphore::open(c.key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "open before create: {err}");
    let sem = Semaphore::create(c.key, 1, 0o600).expect("create on a free key");
    let again = Semaphore::create(c.key, 1, 0o600).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");
    assert_eq!(
        again.raw_os_error(),
        Some(libc::EEXIST),
        "keep the OS error: {again:?}"
    );
    assert_eq!(Semaphore::open(c.key).expect("open").id(), sem.id());
    assert_eq!(
        sem.value().unwrap(),
        1,
        "a failed create leaves the existing one alone"
    );
}

/// After `remove` the set is gone.
#[rstest]
fn remove_part_b(#[from(common::counter)] c: Counter) {
    let sem = Semaphore::create(c.key, 1, 0o600).unwrap();
    sem.remove().expect("remove");
    assert_eq!(
        Semaphore::open(c.key).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = sem.value().unwrap_err();
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
    let sem = Semaphore::create(Key::PRIVATE, 1, 0o600).unwrap();
    cleanup.semaphore(sem.id());
    let seg = Segment::create(Key::PRIVATE, 8, 0o600).unwrap();
    cleanup.segment(seg.id());
    let at = Arc::new(seg.attach().unwrap());
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
