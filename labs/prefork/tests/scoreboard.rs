//! Part B: the scoreboard in shared memory, seen by processes forked after it was made.

use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use prefork::scoreboard::{Scoreboard, State};

/// A new scoreboard has empty slots and a total of 0; start, states, served and release
/// show in its slots.
#[test]
fn slots_and_total_part_b() {
    let b = Scoreboard::new(3).expect("Scoreboard::new(3)");
    assert_eq!(b.slots(), 3);
    assert_eq!(b.total(), 0);
    for i in 0..3 {
        let s = b.slot(i);
        assert_eq!(
            (s.pid, s.state, s.requests),
            (0, State::Empty, 0),
            "slot {i} of a new board"
        );
    }
    assert_eq!(b.free_slot(), Some(0));
    b.start(1, 4242);
    b.set_state(1, State::Writing);
    b.served(1);
    b.served(1);
    let s = b.slot(1);
    assert_eq!((s.pid, s.state, s.requests), (4242, State::Writing, 2));
    assert_eq!(b.total(), 2);
    b.release(1);
    assert_eq!(b.slot(1).state, State::Empty);
    assert_eq!(b.total(), 2, "a released slot's requests stay in the total");
    b.start(1, 4343);
    assert_eq!(
        b.slot(1).requests,
        0,
        "a new worker in a slot starts at 0 requests"
    );
}

/// The status text: the total, the number of workers, and one row per slot in use.
#[test]
fn renders_the_status_page_part_b() {
    let b = Scoreboard::new(4).unwrap();
    b.start(0, 100);
    b.start(2, 102);
    b.set_state(2, State::Reading);
    for _ in 0..5 {
        b.served(2);
    }
    let text = b.render();
    let lines: Vec<&str> = text.lines().collect();
    for (line, why) in [
        ("total requests: 5", "every request served"),
        ("workers: 2", "the slots in use, not every slot"),
        ("slot pid state requests", "the header of the rows"),
        ("0 100 idle 0", "slot 0's row"),
        ("2 102 reading 5", "slot 2's row"),
    ] {
        assert!(
            lines.contains(&line),
            "the status page must have the line `{line}` ({why}); it is:\n{text}"
        );
    }
    assert!(
        !text.contains(" - "),
        "empty slots are not shown (only the 2 slots in use have rows); the page is:\n{text}"
    );
}

/// A child forked after `new` writes; the parent sees it (the mapping is shared, not
/// copied on write).
#[test]
fn shared_with_forked_children_part_b() {
    let b = Scoreboard::new(2).unwrap();
    // SAFETY: the child only touches the scoreboard and calls _exit.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            b.start(1, 77);
            b.served(1);
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            assert!(matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0))));
        }
    }
    let s = b.slot(1);
    assert_eq!(
        (s.pid, s.requests, b.total()),
        (77, 1, 1),
        "what a forked child wrote into the scoreboard must be seen by its parent: map it \
         with MAP_SHARED (MAP_PRIVATE is copied on write)"
    );
}

/// Four processes count 200 000 requests each at once: the total is exactly 800 000.
#[test]
fn no_count_is_lost_part_b() {
    const EACH: u64 = 200_000;
    let b = Scoreboard::new(4).unwrap();
    let mut children = Vec::new();
    for i in 0..4 {
        b.start(i, 1000 + i as i32);
        // SAFETY: the child only touches the scoreboard and calls _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                for _ in 0..EACH {
                    b.served(i);
                }
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => children.push(child),
        }
    }
    let done = testkit::within(
        "4 processes calling served",
        Duration::from_secs(10),
        "served must not block",
        move || {
            children
                .into_iter()
                .all(|c| matches!(waitpid(c, None), Ok(WaitStatus::Exited(_, 0))))
        },
    );
    assert!(done, "a counting child failed");
    for i in 0..4 {
        assert_eq!(b.slot(i).requests, EACH, "slot {i}");
    }
    assert_eq!(
        b.total(),
        4 * EACH,
        "4 processes each counted {EACH} requests, but the total is {}: {} counts were lost. \
         Several processes add to the total at once; `total = total + 1` as a load and a \
         store loses the additions made in between: use an atomic add (fetch_add)",
        b.total(),
        4 * EACH - b.total().min(4 * EACH)
    );
}
