//! Part A: keys from files, and segments: create, open, stat, attach, detach, remove.

mod common;

use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::Ordering;

use common::{Cleanup, Counter};
use rstest::rstest;
use sysv_shm::{Key, Segment};
use testkit::expect::{Expect, expect_err_kind};

/// The same file and project id give the same key, and it is the key libc's ftok gives.
#[rstest]
fn key_from_path_is_ftok_part_a(#[from(common::counter)] c: Counter) {
    let key = Key::from_path(&c.path, b'c').expect("Key::from_path on an existing file");
    assert_eq!(
        key,
        Key::from_path(&c.path, b'c')
            .expect_success("Key::from_path(path, b'c') a second time on the same file"),
        "same file, same key"
    );
    assert_eq!(
        key,
        common::ftok(&c.path),
        "Key::from_path(path, b'c') must be ftok(path, 'c')"
    );
    assert_ne!(
        key,
        Key::from_path(&c.path, b'd')
            .expect_success("Key::from_path(path, b'd') on an existing file"),
        "another project id, another key"
    );
    assert_ne!(key, Key::PRIVATE, "a file's key is not IPC_PRIVATE");
}

/// A missing file has no key: the error is ftok's (stat's) ENOENT.
#[test]
fn key_of_missing_file_part_a() {
    let err = expect_err_kind(
        Key::from_path(Path::new("/nonexistent/sysv-shm-lab"), b'c'),
        "Key::from_path of a file that does not exist (ftok's stat fails with ENOENT: return \
         that error)",
        ErrorKind::NotFound,
    );
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOENT),
        "keep the OS error: {err:?}"
    );
}

/// A new segment is as asked: its size, its mode, no attachment, created by this process.
#[rstest]
#[case::one_page(4096, 0o600)]
#[case::one_word(8, 0o640)]
#[case::odd_size(1000, 0o600)]
fn create_and_stat_part_a(#[case] size: usize, #[case] mode: u32) {
    let mut cleanup = Cleanup::new();
    let seg = Segment::create(Key::PRIVATE, size, mode).expect("Segment::create");
    cleanup.segment(seg.id());
    let st = seg.stat().expect("stat of a new segment");
    assert_eq!(st.size, size, "size");
    assert_eq!(
        st.mode, mode,
        "mode: the permission bits only (mode & 0o777)"
    );
    assert_eq!(st.nattch, 0, "a new segment has no attachment");
    assert_eq!(
        st.cpid,
        std::process::id() as i32,
        "cpid: this process created it"
    );
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        st.uid,
        unsafe { libc::geteuid() },
        "uid: owned by the caller"
    );
}

/// `create` is exclusive; `open` and `open_or_create` find the same segment.
#[rstest]
fn create_is_exclusive_part_a(#[from(common::counter)] c: Counter) {
    let seg = Segment::create(c.key, 64, 0o600).expect("Segment::create on a free key");
    let again = expect_err_kind(
        Segment::create(c.key, 64, 0o600),
        "Segment::create on a key that has a segment already (create must be exclusive: \
         shmget with IPC_CREAT | IPC_EXCL fails with EEXIST)",
        ErrorKind::AlreadyExists,
    );
    assert_eq!(
        again.raw_os_error(),
        Some(libc::EEXIST),
        "keep the OS error: {again:?}"
    );
    assert_eq!(Segment::open(c.key).expect("Segment::open").id(), seg.id());
    assert_eq!(
        Segment::open_or_create(c.key, 64, 0o600)
            .expect("open_or_create of an existing one")
            .id(),
        seg.id()
    );
}

/// `open` of a key nobody created fails with ENOENT; `open_or_create` creates it.
#[rstest]
fn open_missing_part_a(#[from(common::counter)] c: Counter) {
    expect_err_kind(
        Segment::open(c.key),
        "Segment::open of a key nobody created (open must not create: shmget without \
         IPC_CREAT fails with ENOENT)",
        ErrorKind::NotFound,
    );
    let seg = Segment::open_or_create(c.key, 16, 0o600).expect("open_or_create of a free key");
    assert_eq!(
        seg.stat()
            .expect_success("stat of the segment open_or_create made")
            .size,
        16
    );
    assert_eq!(
        Segment::open(c.key)
            .expect_success("Segment::open of the key open_or_create just created")
            .id(),
        seg.id()
    );
}

/// Two attachments are two mappings of the same bytes: a write through one is seen through
/// the other; each counts in nattch until it is dropped.
#[test]
fn attachments_share_bytes_part_a() {
    let mut cleanup = Cleanup::new();
    let seg = Segment::create(Key::PRIVATE, 4096, 0o600)
        .expect_success("Segment::create(Key::PRIVATE, 4096, 0o600)");
    cleanup.segment(seg.id());
    let a = seg.attach().expect("attach");
    let b = seg.attach().expect("attach a second time");
    assert_ne!(
        a.as_ptr(),
        b.as_ptr(),
        "each attach maps the segment at a new address"
    );
    assert_eq!(
        seg.stat()
            .expect_success("stat of a segment with two attachments")
            .nattch,
        2,
        "nattch with two attachments"
    );
    assert_eq!(a.len(), 4096);
    assert_eq!(a.words().len(), 512, "4096 bytes are 512 words");
    assert!(
        a.words().iter().all(|w| w.load(Ordering::SeqCst) == 0),
        "a new segment is zeroed"
    );
    a.words()[7].store(0xdead_beef, Ordering::SeqCst);
    assert_eq!(
        b.words()[7].load(Ordering::SeqCst),
        0xdead_beef,
        "written through a, read through b"
    );
    // SAFETY: byte 0 lies in the mapping, which lives until `b` is dropped.
    unsafe { b.as_ptr().write_volatile(42) };
    assert_eq!(
        a.words()[0].load(Ordering::SeqCst) & 0xff,
        42,
        "a raw-pointer write through b"
    );
    drop(a);
    assert_eq!(
        seg.stat()
            .expect_success("stat after dropping one of two attachments")
            .nattch,
        1,
        "dropping an attachment detaches it"
    );
    b.detach().expect("detach");
    assert_eq!(
        seg.stat()
            .expect_success("stat after detaching the last attachment")
            .nattch,
        0,
        "detach() detaches"
    );
}

/// `words` covers only whole words.
#[test]
fn words_are_whole_part_a() {
    let mut cleanup = Cleanup::new();
    let seg = Segment::create(Key::PRIVATE, 20, 0o600)
        .expect_success("Segment::create(Key::PRIVATE, 20, 0o600)");
    cleanup.segment(seg.id());
    let at = seg.attach().expect_success("attach of a 20-byte segment");
    assert_eq!(at.len(), 20);
    assert_eq!(at.words().len(), 2, "20 bytes hold 2 whole u64");
}

/// After `remove`, the key is free again and the old id is gone.
#[rstest]
fn remove_part_a(#[from(common::counter)] c: Counter) {
    let seg = Segment::create(c.key, 64, 0o600).expect_success("Segment::create on a free key");
    let id = seg.id();
    seg.remove().expect("remove");
    expect_err_kind(
        Segment::open(c.key),
        "Segment::open after remove (remove must delete the segment: shmctl IPC_RMID)",
        ErrorKind::NotFound,
    );
    let err = Segment::from_id(id)
        .stat()
        .expect_failure("stat of a removed segment (the id must be gone after remove)");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EINVAL),
        "stat of a removed segment: {err:?}"
    );
    let err = Segment::from_id(id)
        .remove()
        .expect_failure("removing a segment a second time (its id is gone)");
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EINVAL),
        "removing twice: {err:?}"
    );
}
