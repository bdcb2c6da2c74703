//! Hidden tests, parts A and B: segments, attachments and semaphores leak nothing however
//! often they are used, and every object has the mode it was created with.

mod common;

use std::sync::atomic::Ordering;

use common::Cleanup;
use sysv_shm::{Key, Segment, Semaphore};
use testkit::Expect;
use testkit::ipc::{SysvKind, assert_mode, sysv_by_id};

/// 1000 rounds of create, attach, write, detach and remove leave no segment and no
/// attachment behind.
#[test]
fn segment_lifecycle_leaks_nothing_part_a() {
    testkit::assert_no_leak(
        1000,
        "Segment::create + attach + detach + remove",
        "remove must delete the segment (shmctl IPC_RMID), and detach (or dropping the \
         Attachment) must shmdt it",
        |i| {
            let mut cleanup = Cleanup::new();
            let seg = Segment::create(Key::PRIVATE, 64, 0o600).expect_success("Segment::create");
            cleanup.segment(seg.id());
            let at = seg.attach().expect_success("Segment::attach");
            at.words()[0].store(i as u64, Ordering::SeqCst);
            at.detach().expect_success("Attachment::detach");
            seg.remove().expect_success("Segment::remove");
        },
    );
}

/// 1000 opens and attachments of one segment, each dropped, leave no attachment behind.
#[test]
fn open_and_attach_leak_nothing_part_a() {
    let mut cleanup = Cleanup::new();
    let seg = Segment::create(Key::PRIVATE, 4096, 0o600).expect_success("Segment::create");
    cleanup.segment(seg.id());
    testkit::assert_no_leak(
        1000,
        "Segment::attach (the Attachment dropped)",
        "dropping an Attachment must detach it (shmdt in Drop)",
        |_| {
            let at = Segment::from_id(seg.id())
                .attach()
                .expect_success("Segment::attach");
            at.words()[1].fetch_add(1, Ordering::SeqCst);
            drop(at);
        },
    );
    assert_eq!(
        seg.stat().expect_success("Segment::stat").nattch,
        0,
        "nattch after every Attachment was dropped"
    );
}

/// 1000 rounds of create, wait, post, lock and remove leave no semaphore set behind.
#[test]
fn semaphore_lifecycle_leaks_nothing_part_b() {
    testkit::assert_no_leak(
        1000,
        "Semaphore::create + wait + post + lock + remove",
        "remove must delete the semaphore set (semctl IPC_RMID)",
        |_| {
            let mut cleanup = Cleanup::new();
            let sem = Semaphore::create(Key::PRIVATE, 1, 0o600).expect_success("Semaphore::create");
            cleanup.semaphore(sem.id());
            sem.wait().expect_success("Semaphore::wait on a free semaphore");
            sem.post().expect_success("Semaphore::post");
            drop(sem.lock().expect_success("Semaphore::lock on a free lock"));
            sem.remove().expect_success("Semaphore::remove");
        },
    );
}

/// A segment and a semaphore set have exactly the mode they were created with: 0600 (the
/// contract of `shmctr`) and 0640.
#[test]
fn objects_have_the_mode_asked_for_part_a() {
    let mut cleanup = Cleanup::new();
    for mode in [0o600, 0o640] {
        let seg = Segment::create(Key::PRIVATE, 64, mode).expect_success("Segment::create");
        cleanup.segment(seg.id());
        let sem = Semaphore::create(Key::PRIVATE, 1, mode).expect_success("Semaphore::create");
        cleanup.semaphore(sem.id());
        let seg_mode = sysv_by_id(SysvKind::Segment, seg.id())
            .unwrap_or_else(|| panic!("segment {} is not in /proc/sysvipc/shm", seg.id()))
            .mode;
        assert_mode(
            &format!("a segment created with mode {mode:04o}"),
            mode,
            seg_mode,
        );
        let sem_mode = sysv_by_id(SysvKind::Semaphores, sem.id())
            .unwrap_or_else(|| panic!("semaphore set {} is not in /proc/sysvipc/sem", sem.id()))
            .mode;
        assert_mode(
            &format!("a semaphore set created with mode {mode:04o}"),
            mode,
            sem_mode,
        );
    }
}
