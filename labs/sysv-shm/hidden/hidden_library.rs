//! Hidden tests: removal while attached, SEM_UNDO when a process dies holding the lock,
//! OS errors kept, a wait interrupted by a signal handler, many openers at once, `shmctr stat` with an attachment.

mod common;

use std::io::ErrorKind;
use std::sync::atomic::Ordering;

use common::{Cleanup, Counter};
use nix::sys::signal::{Signal, kill};
use rstest::rstest;
use sysv_shm::{Key, Segment, Semaphore};
use testkit::expect::{Expect, expect_err_kind};

const NO_UNDO: &str = "a process that exits or is killed while it holds the lock must not take \
the lock with it: give every semop the flag SEM_UNDO, so that the kernel undoes the dead \
process's operations";

/// A child takes the lock and exits without releasing it: SEM_UNDO releases it.
#[test]
fn lock_released_when_holder_exits_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 1, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 1, 0o600)");
    cleanup.semaphore(sem.id());
    let child = common::fork_child(|| {
        // Take the lock, then _exit(0) without posting.
        std::mem::forget(sem.lock());
    });
    let code = common::wait_child(child, "It only takes a free lock: does lock() block?");
    assert_eq!(
        code, 0,
        "the child could not take the lock (exit status {code})"
    );
    assert_eq!(
        sem.value()
            .expect_success("value after the child exited holding the lock"),
        1,
        "the child exited holding the lock and the lock stayed taken: {NO_UNDO}"
    );
}

/// A child holding the lock is SIGKILLed: SEM_UNDO releases the lock.
#[test]
fn lock_released_when_holder_killed_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 1, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 1, 0o600)");
    cleanup.semaphore(sem.id());
    let child = common::fork_child(|| {
        std::mem::forget(sem.lock());
        loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }
    });
    let held = common::eventually(|| sem.value().ok() == Some(0));
    let _ = kill(child, Signal::SIGKILL);
    common::wait_child(child, "A SIGKILLed process always exits.");
    assert!(
        held,
        "the child never took the lock (the value never became 0)"
    );
    assert_eq!(
        sem.value()
            .expect_success("value after the child was killed holding the lock"),
        1,
        "the child was SIGKILLed holding the lock and the lock stayed taken: {NO_UNDO}"
    );
}

/// A removed segment stays usable by those attached, but nobody can open it by key.
#[rstest]
fn removed_while_attached_part_a(#[from(common::counter)] c: Counter) {
    let seg = Segment::create(c.key, 4096, 0o600).expect_success("Segment::create on a free key");
    let id = seg.id();
    let at = seg.attach().expect_success("attach of a new segment");
    at.words()[0].store(7, Ordering::SeqCst);
    seg.remove().expect("remove while attached");
    expect_err_kind(
        Segment::open(c.key),
        "Segment::open of a segment removed while attached (a removed segment cannot be \
         opened by key)",
        ErrorKind::NotFound,
    );
    assert_eq!(
        at.words()[0].load(Ordering::SeqCst),
        7,
        "the attachment still works"
    );
    assert_eq!(
        Segment::from_id(id)
            .stat()
            .expect_success("stat of a removed segment that is still attached (it lives on until the last detach)")
            .nattch,
        1,
        "still attached once"
    );
    drop(at);
    assert!(
        Segment::from_id(id).stat().is_err(),
        "gone once the last attachment is dropped"
    );
}

/// Errors carry the errno of the call that failed.
#[test]
fn os_errors_are_kept_part_a() {
    let mut cleanup = Cleanup::new();
    let err = Segment::create(Key::PRIVATE, 0, 0o600)
        .expect_failure("Segment::create of size 0 (shmget fails with EINVAL)");
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "size 0: {err:?}");
    let seg = Segment::create(Key::PRIVATE, 64, 0o600)
        .expect_success("Segment::create(Key::PRIVATE, 64, 0o600)");
    cleanup.segment(seg.id());
    seg.remove().expect_success("remove of a segment nobody is attached to");
    let err = seg
        .attach()
        .expect_failure("attach of a removed segment (its id is gone)");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EINVAL),
        "attach after remove: {err:?}"
    );
    let sem = Semaphore::create(Key::PRIVATE, 1, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 1, 0o600)");
    cleanup.semaphore(sem.id());
    sem.remove().expect_success("remove of a semaphore set");
    let err = sem
        .value()
        .expect_failure("value of a removed set (its id is gone)");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EINVAL),
        "value after remove: {err:?}"
    );
    let err = sem
        .post()
        .expect_failure("post on a removed set (its id is gone)");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EINVAL),
        "post after remove: {err:?}"
    );
}

/// A waiter wakes with an error when the set is removed under it, instead of hanging.
#[test]
fn remove_wakes_waiter_part_b() {
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 0, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 0, 0o600)");
    cleanup.semaphore(sem.id());
    let waiter = std::thread::spawn(move || sem.wait());
    // Whether the waiter is already asleep or not, it must fail: the set is gone.
    sem.remove()
        .expect_success("remove of a set while a thread waits on it");
    let result = common::within_deadline(
        "wait() on a semaphore removed meanwhile",
        "semop fails with EIDRM (or EINVAL) when the set is removed: return that error",
        move || waiter.join().expect("the waiting thread"),
    );
    assert!(result.is_err(), "wait() on a removed semaphore returned Ok");
}

/// A signal handler runs while `wait` sleeps in semop (which then fails with EINTR, whatever
/// SA_RESTART says): `wait` waits again, and returns Ok once someone posts.
#[test]
fn wait_retries_after_signal_handler_part_b() {
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::atomic::AtomicBool;

    static HANDLED: AtomicBool = AtomicBool::new(false);
    extern "C" fn handler(_: libc::c_int) {
        HANDLED.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGUSR1, handler as libc::sighandler_t) };
    let mut cleanup = Cleanup::new();
    let sem = Semaphore::create(Key::PRIVATE, 0, 0o600)
        .expect_success("Semaphore::create(Key::PRIVATE, 0, 0o600)");
    cleanup.semaphore(sem.id());
    let id = sem.id();
    let waiter = std::thread::spawn(move || sem.wait());
    // SAFETY: GETNCNT takes no fourth argument.
    let asleep = common::eventually(|| unsafe { libc::semctl(id, 0, libc::GETNCNT) } == 1);
    assert!(
        asleep,
        "wait() on a semaphore of value 0 never slept in semop (semncnt stayed 0)"
    );
    // SAFETY: the thread is alive: it sleeps in semop.
    unsafe { libc::pthread_kill(waiter.as_pthread_t(), libc::SIGUSR1) };
    assert!(
        common::eventually(|| HANDLED.load(Ordering::SeqCst)),
        "the signal handler never ran"
    );
    sem.post().expect_success("post to wake the waiter");
    let result = common::within_deadline(
        "wait() interrupted by a signal handler, then posted",
        "after EINTR, wait must call semop again; the post then wakes it",
        move || waiter.join().expect("the waiting thread"),
    );
    assert!(
        result.is_ok(),
        "a signal handler ran while wait() slept in semop, and wait() returned {result:?}: \
         semop fails with EINTR (Interrupted) when a handler runs, and wait must then call \
         semop again instead of returning the error"
    );
}

/// 8 threads call open_or_create on one key at once: all get the same segment.
#[rstest]
fn open_or_create_from_many_threads_part_a(#[from(common::counter)] c: Counter) {
    let key = c.key;
    let ids: Vec<i32> = (0..8)
        .map(|_| {
            std::thread::spawn(move || Segment::open_or_create(key, 64, 0o600).map(|s| s.id()))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| {
            t.join()
                .expect("a thread calling open_or_create panicked")
                .expect_success("open_or_create from one of 8 threads at once")
        })
        .collect();
    assert!(
        ids.iter().all(|&id| id == ids[0]),
        "different segments: {ids:?}"
    );
}

/// A forked child writes through its copy of an attachment; the parent sees it.
#[test]
fn child_process_shares_segment_part_a() {
    let mut cleanup = Cleanup::new();
    let seg = Segment::create(Key::PRIVATE, 4096, 0o600)
        .expect_success("Segment::create(Key::PRIVATE, 4096, 0o600)");
    cleanup.segment(seg.id());
    let at = seg.attach().expect_success("attach of a new segment");
    let child = common::fork_child(|| {
        at.words()[3].store(12345, Ordering::SeqCst);
    });
    let code = common::wait_child(child, "It only stores one word.");
    assert_eq!(code, 0, "the child failed (exit status {code})");
    assert_eq!(at.words()[3].load(Ordering::SeqCst), 12345);
}

/// `shmctr stat` counts an attachment of another process, and does not attach itself.
#[rstest]
fn stat_counts_attachments_part_c(#[from(common::counter)] c: Counter) {
    common::shmctr(&["create", c.arg()]).code(0);
    let seg = Segment::open(c.key).expect("the counter's segment");
    let at = seg
        .attach()
        .expect_success("attach of the counter's segment");
    let out = common::stdout(&common::shmctr(&["stat", c.arg()]).code(0));
    assert!(
        out.contains("nattch=1 "),
        "with this test attached, stat must print nattch=1 (and not attach itself): {out:?}"
    );
    drop(at);
    common::shmctr(&["remove", c.arg()]).code(0);
}
