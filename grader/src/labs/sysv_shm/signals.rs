//! The `signals` check: SIGINT and SIGTERM, each sent, to a `shmctr add` caught while it
//! holds the counter's lock. It must end at once, and leave the lock exactly free (the
//! semaphore back to 1) and the segment detached.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::CheckResult;
use crate::{ensure, fail};

use super::kernel::{objects_of, poll_until, sem_state, shm_of, state};
use super::scene::Scene;
use super::text::{hex, quoted, s};

/// How long a signalled adder may take to end: its default action ends it in milliseconds.
const ENDS: Duration = Duration::from_secs(1);
/// How long the check gives it up to end before it stops waiting.
const GIVE_UP: Duration = Duration::from_secs(3);
/// How long to try to catch the adder holding the lock.
const HUNT: Duration = Duration::from_secs(5);
/// How many increments the adder makes before it is hunted.
const WARM_UP: u64 = 1000;

/// The counter's value, read through a read-only attachment of the grader's own that is
/// detached at once; `None` if the segment cannot be attached.
fn counter_value(shmid: i32) -> Option<u64> {
    // SAFETY: a null address lets the kernel choose; SHM_RDONLY maps it read-only.
    let at = unsafe { libc::shmat(shmid, std::ptr::null(), libc::SHM_RDONLY) };
    if at as isize == -1 {
        return None;
    }
    // SAFETY: the counter's segment holds at least one u64 (8 bytes, page-aligned), mapped
    // until the shmdt below; another process may write it, hence the volatile read.
    let value = unsafe { std::ptr::read_volatile(at.cast::<u64>()) };
    // SAFETY: `at` came from shmat above and nothing refers to it any more.
    unsafe { libc::shmdt(at) };
    Some(value)
}

pub(super) fn signals(scene: &mut Scene) -> CheckResult {
    // A grader started in the background by a shell ignores SIGINT, and an ignored
    // disposition survives fork and exec: the adders must get the default ones, as a program
    // started from a terminal does.
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: setting a default disposition; this process is the check's alone.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        one_signal(scene, &path, sig)?;
    }
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// Starts `shmctr add PATH 1000000000`, stops it while it holds the lock (if it ever takes
/// one), sends `sig` and continues it; judges how fast it ends and what it leaves.
fn one_signal(scene: &mut Scene, path: &Path, sig: Signal) -> CheckResult {
    let key = scene.key(path);
    let (shm, sem) = objects_of(path, key)?;
    let before = counter_value(shm.id).unwrap_or(0);
    let spec = scene.shmctr(&["add", s(path), "1000000000"]);
    let mut p = scene.spawn(&spec)?;
    let pid = p.pid;
    // Let it make many increments first, so that what the kernel undoes at its exit is the
    // sum of many locks and unlocks, not of its first lock alone.
    poll_until(Instant::now() + HUNT, || {
        counter_value(shm.id).is_some_and(|v| v >= before + WARM_UP)
    });
    // Catch it holding the lock: wait until the semaphore is 0 and its last semop is the
    // adder's, stop it, and look again (it may have released the lock in between).
    let hunt = Instant::now() + HUNT;
    let mut holds = false;
    while Instant::now() < hunt {
        if let Some(ending) = p.try_ending() {
            fail!(
                "`shmctr add PATH 1000000000` {} before the grader sent it {sig} (expected it \
                 to run); its stderr: {}",
                ending.describe(),
                quoted(&String::from_utf8_lossy(&p.stderr().0))
            );
        }
        let taken = poll_until(Instant::now() + Duration::from_millis(200), || {
            sem_state(sem.id).is_some_and(|(val, last)| val == 0 && last == pid)
        });
        if !taken {
            continue;
        }
        p.signal(Signal::SIGSTOP);
        poll_until(Instant::now() + Duration::from_secs(2), || {
            matches!(state(pid), Some('T' | 't' | 'Z') | None)
        });
        if matches!(state(pid), Some('T' | 't'))
            && sem_state(sem.id).is_some_and(|(val, last)| val == 0 && last == pid)
        {
            holds = true;
            break;
        }
        p.signal(Signal::SIGCONT);
    }
    // An adder that never takes the lock is judged by other items; here it is signalled
    // while it runs.
    let when = if holds {
        "while it held the counter's lock"
    } else {
        "while it ran"
    };
    p.signal(sig);
    let sent = Instant::now();
    p.signal(Signal::SIGCONT);
    let Some(ending) = p.wait_until(sent + GIVE_UP) else {
        p.kill();
        fail!(
            "the grader sent {sig} to `shmctr add PATH 1000000000` {when}; it was still running \
             {} s later (the grader then killed it). A program must end at once on {sig}: its \
             default action does that, and SEM_UNDO releases the lock. Does `add` block or \
             ignore {sig} (sigprocmask, a handler that only sets a flag nobody reads)?",
            GIVE_UP.as_secs()
        );
    };
    let took = sent.elapsed();
    ensure!(
        took <= ENDS,
        "the grader sent {sig} to `shmctr add PATH 1000000000` {when}; it ended ({}) only {} \
         ms later. A program must end at once on {sig} (within {} ms): does it check for the \
         signal only now and then, or sleep before it exits?",
        ending.describe(),
        took.as_millis(),
        ENDS.as_millis()
    );
    let value = sem_state(sem.id).map(|(val, _)| val);
    ensure!(
        value == Some(1),
        "the grader sent {sig} to `shmctr add PATH 1000000000` {when}; it ended ({}), and the \
         counter's semaphore (key {}) is now {} instead of 1 (free). {}",
        ending.describe(),
        hex(key),
        value.map_or("gone".to_owned(), |v| v.to_string()),
        match value {
            Some(0) =>
                "0 means the lock stays taken by a process that no longer exists, and \
                        every other adder waits forever: the kernel undoes only the operations \
                        made with SEM_UNDO, so both the wait (semop -1) and the post (semop +1) \
                        need it",
            None => "A program must never remove the counter when it is signalled",
            Some(_) =>
                "A value above 1 lets two processes hold the lock at once: the kernel \
                        undid a wait (semop -1 with SEM_UNDO) whose post had no SEM_UNDO, or \
                        the program posted more often than it waited",
        }
    );
    let nattch = shm_of(key).map(|r| r.nattch);
    ensure!(
        nattch == Some(0),
        "the grader sent {sig} to `shmctr add PATH 1000000000` {when}; after it ended the \
         counter's segment has {} instead of 0 attachments",
        nattch.map_or("no segment at all".to_owned(), |n| n.to_string())
    );
    Ok(())
}
