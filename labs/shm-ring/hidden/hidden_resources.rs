//! Hidden tests, part A: a Ring leaks no descriptor, no mapping and no object however often
//! it is made and dropped, and its object has mode 0600.

mod common;

use common::{RingName, shm_mappings};
use shm_ring::Ring;
use testkit::Expect;

const ADVICE: &str = "close the shm_open descriptor once the object is mapped (or when the Ring \
drops), munmap the mapping when the Ring or its half drops, and shm_unlink in unlink";

/// 1000 rounds of create, open, both halves, a byte through, drop and unlink leave no
/// descriptor, no mapping and no object in /dev/shm.
#[test]
fn create_open_drop_unlink_leaks_nothing_part_a() {
    let _serial = testkit::leak::serial();
    let maps_before = shm_mappings();
    drop(_serial);
    testkit::assert_no_leak(
        1000,
        "Ring::create + open + producer + consumer + unlink",
        ADVICE,
        |_| {
            let name = RingName::new();
            let mut tx = Ring::create(name.as_str(), 4096)
                .expect_success("Ring::create")
                .producer()
                .expect_success("producer");
            let mut rx = Ring::open(name.as_str())
                .expect_success("Ring::open")
                .consumer()
                .expect_success("consumer");
            tx.write_all(b"x").expect_success("write_all");
            let mut b = [0u8; 1];
            rx.read(&mut b).expect_success("read");
            drop((tx, rx));
            Ring::unlink(name.as_str()).expect_success("Ring::unlink");
            Ring::open(name.as_str()).expect_failure("Ring::open after unlink");
        },
    );
    let maps_after = shm_mappings();
    assert!(
        maps_after < maps_before + 100,
        "after 1000 rings were made and dropped, this process has {} more mappings of /dev/shm \
         objects: {ADVICE}",
        maps_after - maps_before
    );
}

/// The object made by Ring::create has mode 0600, even under a umask of 0.
#[test]
fn object_mode_is_0600_part_a() {
    let _serial = testkit::leak::serial();
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let name = RingName::new();
    let made = Ring::create(name.as_str(), 4096);
    nix::sys::stat::umask(old);
    let _ring = made.expect_success("Ring::create");
    let (_, mode) = testkit::ipc::file_mode(std::path::Path::new(&name.path()))
        .unwrap_or_else(|| panic!("{} does not exist after Ring::create", name.path()));
    testkit::ipc::assert_mode(&format!("the object {}", name.path()), 0o600, mode);
}
