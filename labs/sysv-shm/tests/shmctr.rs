//! Part C: the `shmctr` program, one process at a time.

mod common;

use predicates::prelude::*;
use rstest::rstest;
use sysv_shm::{Segment, Semaphore};
use testkit::expect::Expect;

use common::{Counter, shmctr, stdout};

/// create, add and get: the counter starts at 0 and counts.
#[rstest]
fn create_add_get_part_c(#[from(common::counter)] c: Counter) {
    shmctr(&["create", c.arg()]).code(0);
    shmctr(&["get", c.arg()]).code(0).stdout("0\n");
    shmctr(&["add", c.arg(), "5"]).code(0);
    shmctr(&["add", c.arg(), "0"]).code(0);
    shmctr(&["add", c.arg(), "37"]).code(0);
    shmctr(&["get", c.arg()]).code(0).stdout("42\n");
    shmctr(&["remove", c.arg()]).code(0);
}

/// create makes a segment and a semaphore with the key ftok(PATH, 'c'), both mode 0600.
#[rstest]
fn create_uses_ftok_key_part_c(#[from(common::counter)] c: Counter) {
    shmctr(&["create", c.arg()]).code(0);
    let seg = Segment::open(c.key).expect("a segment with the key ftok(PATH, 'c') after create");
    let st = seg
        .stat()
        .expect_success("stat of the segment `shmctr create` made");
    assert_eq!(st.size, 8, "the counter's segment holds one u64: 8 bytes");
    assert_eq!(
        st.mode, 0o600,
        "the segment must have mode=600 (only its owner may use it)"
    );
    let sem = Semaphore::open(c.key).expect("a semaphore set with the key ftok(PATH, 'c')");
    assert_eq!(
        sem.value()
            .expect_success("value of the semaphore `shmctr create` made"),
        1,
        "the lock starts free (value 1)"
    );
    shmctr(&["remove", c.arg()]).code(0);
}

/// stat prints one line: size, nattch, mode in octal, cpid.
#[rstest]
fn stat_line_part_c(#[from(common::counter)] c: Counter) {
    shmctr(&["create", c.arg()]).code(0);
    let out = stdout(&shmctr(&["stat", c.arg()]).code(0));
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        fields.len(),
        4,
        "one line `size=.. nattch=.. mode=.. cpid=..`, got {out:?}"
    );
    assert_eq!(
        &fields[..3],
        ["size=8", "nattch=0", "mode=600"],
        "stat printed {out:?}"
    );
    let cpid: i32 = fields[3]
        .strip_prefix("cpid=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the 4th field must be cpid=<pid>: {out:?}"));
    let seg = Segment::open(c.key)
        .expect_success("Segment::open of the key ftok(PATH, 'c') after `shmctr create`");
    let st = seg
        .stat()
        .expect_success("stat of the segment `shmctr create` made");
    assert_eq!(
        cpid, st.cpid,
        "stat's cpid= must be the pid of the process that created the segment (shm_cpid)"
    );
    shmctr(&["remove", c.arg()]).code(0);
}

/// A second create fails (exit 1) and leaves the counter as it was.
#[rstest]
fn create_twice_part_c(#[from(common::counter)] c: Counter) {
    shmctr(&["create", c.arg()]).code(0);
    shmctr(&["add", c.arg(), "3"]).code(0);
    shmctr(&["create", c.arg()])
        .code(1)
        .stderr(predicate::str::starts_with("shmctr: "));
    shmctr(&["get", c.arg()]).code(0).stdout("3\n");
    shmctr(&["remove", c.arg()]).code(0);
}

/// remove deletes both the segment and the semaphore; a second remove fails.
#[rstest]
fn remove_deletes_both_part_c(#[from(common::counter)] c: Counter) {
    shmctr(&["create", c.arg()]).code(0);
    shmctr(&["remove", c.arg()]).code(0);
    assert!(
        Segment::open(c.key).is_err(),
        "the segment still exists after `shmctr remove`: remove must call shmctl(IPC_RMID) on it"
    );
    assert!(
        Semaphore::open(c.key).is_err(),
        "the semaphore still exists after `shmctr remove`: remove must call semctl(IPC_RMID) on it"
    );
    shmctr(&["remove", c.arg()])
        .code(1)
        .stderr(predicate::str::starts_with("shmctr: "));
}

/// Commands on a counter that was never created fail with exit 1 and a message.
#[rstest]
#[case::get(&["get"])]
#[case::add(&["add", "1"])]
#[case::stat(&["stat"])]
#[case::remove(&["remove"])]
fn missing_counter_part_c(#[case] command: &[&str], #[from(common::counter)] c: Counter) {
    let mut args = vec![command[0], c.arg()];
    args.extend(&command[1..]);
    shmctr(&args)
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with("shmctr: "));
}

/// Usage errors exit with 2 and print the usage.
#[rstest]
#[case::nothing(&[])]
#[case::unknown(&["frobnicate", "x"])]
#[case::no_path(&["get"])]
#[case::no_count(&["add", "x"])]
#[case::bad_count(&["add", "x", "lots"])]
#[case::extra(&["remove", "x", "y"])]
fn usage_errors_part_c(#[case] args: &[&str]) {
    shmctr(args)
        .code(2)
        .stderr(predicate::str::contains("usage"));
}
