//! Checks of the sysv-shm lab: many `shmctr` processes on one counter, killed adders,
//! `stat` against `ipcs`, removal, permissions and another user.
//!
//! Every counter is keyed by `ftok(PATH, 'c')` of a file in the check's scratch folder, so
//! two gradings at once never share a key. After each check, pass or fail, the grader kills
//! what it started and removes every System V segment or semaphore set it can attribute to
//! the check (the key of one of its files, or a creator among its processes); a failed
//! check's message names them ("left behind: ...").
//!
//! # Layout
//!
//! - `scene`: a check's `Scene` (counter files, processes, `shmctr` runs) and the clean-up
//!   after it.
//! - `kernel`: `ftok`, the rows of /proc/sysvipc/shm and /proc/sysvipc/sem, semctl, and a
//!   process's state.
//! - `text`: pieces of messages (commands, quoted output, keys, the lock's state).
//! - `ipcs`: `shmctr stat` and `ipcs -m` read side by side.
//! - `permissions`: the `permissions` check and the folder another user may reach.
//! - this file: the table of checks and the other checks.

mod ipcs;
mod kernel;
mod permissions;
mod scene;
mod signals;
mod text;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{Check, CheckResult, Fail};
use crate::sandbox::Proc;
use crate::{ensure, fail};

use ipcs::{ipcs_row, parse_stat};
use kernel::{ftok, objects_of, poll_until, sem_of, sem_state, shm_of, state};
use permissions::permissions;
use scene::{Scene, finish_adders, guarded};
use signals::signals;
use text::{hex, quoted, s};

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "counts_exactly",
        run: |ctx| guarded(ctx, counts_exactly),
    },
    Check {
        name: "survives_killed_adders",
        run: |ctx| guarded(ctx, survives_killed_adders),
    },
    Check {
        name: "stat_matches_ipcs",
        run: |ctx| guarded(ctx, stat_matches_ipcs),
    },
    Check {
        name: "removes_everything",
        run: |ctx| guarded(ctx, removes_everything),
    },
    Check {
        name: "permissions",
        run: |ctx| guarded(ctx, permissions),
    },
    Check {
        name: "create_twice_and_missing",
        run: |ctx| guarded(ctx, create_twice_and_missing),
    },
    Check {
        name: "signals",
        run: |ctx| guarded(ctx, signals),
    },
];

/// How long one short `shmctr` command may take.
const SHORT: Duration = Duration::from_secs(10);

/// The project id of the contract: `ftok(PATH, 'c')`.
const PROJ: u8 = b'c';

/// The uid and gid of "another user" (nobody).
const NOBODY: (u32, u32) = (65534, 65534);

/// The increments of [`lone_add_frees_lock`].
const LONE: u64 = 3;

/// One `shmctr add PATH 3`, alone on a new counter, must count 3 and leave the semaphore at
/// exactly 1: a lock restored only roughly (a SEM_UNDO on one side of it) breaks the lock
/// for everyone after the first adder exits, which many adders at once show only by luck.
fn lone_add_frees_lock(scene: &mut Scene, path: &std::path::Path, key: i32) -> CheckResult {
    scene.run_ok(&["add", s(path), &LONE.to_string()])?;
    let value = scene.get(path)?;
    ensure!(
        value == LONE,
        "`shmctr add PATH {LONE}` alone on a new counter exited 0, and `shmctr get PATH` then \
         printed {value} instead of {LONE}: each increment must add exactly 1"
    );
    let Some((val, _)) = sem_of(key).and_then(|sem| sem_state(sem.id)) else {
        fail!(
            "after `shmctr add PATH {LONE}` the counter's semaphore set (key {}) is gone: only \
             `remove` may remove it",
            hex(key)
        );
    };
    ensure!(
        val == 1,
        "`shmctr add PATH {LONE}`, alone on a new counter, exited 0 and left the counter's \
         semaphore at {val} instead of 1 (free); the lock was taken and released {LONE} times. \
         {}",
        if val > 1 {
            format!(
                "When a process exits the kernel undoes its SEM_UNDO operations: {val} fits \
                 waits (semop -1) made with SEM_UNDO and posts (semop +1) made without it \
                 (1 + {LONE} undone waits = {}), or more posts than waits. A value above 1 \
                 lets that many processes hold the lock at once: give both semops SEM_UNDO",
                1 + LONE
            )
        } else {
            "0 means the lock stays taken after its holder exited, and every later adder \
             waits forever: it fits posts (semop +1) made with SEM_UNDO and waits made \
             without it (the kernel undoes the posts at exit), or a wait with no post. Give \
             both semops SEM_UNDO"
                .to_owned()
        }
    );
    Ok(())
}

// The checks

/// 8 processes x 2000 increments at once: exactly 16000.
fn counts_exactly(scene: &mut Scene) -> CheckResult {
    const PROCS: usize = 8;
    const ADDS: u64 = 2000;
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    let key = scene.key(&path);
    lone_add_frees_lock(scene, &path, key)?;
    let mut adders = Vec::new();
    for _ in 0..PROCS {
        let spec = scene.shmctr(&["add", s(&path), &ADDS.to_string()]);
        let p = scene.spawn(&spec)?;
        adders.push((p, format!("`shmctr add {} {ADDS}`", path.display())));
    }
    finish_adders(
        scene,
        &mut adders,
        key,
        Instant::now() + Duration::from_secs(10),
        "8 adders of 2000 must finish in a few seconds.",
    )?;
    let value = scene.get(&path)?.saturating_sub(LONE);
    let want = PROCS as u64 * ADDS;
    if value < want {
        fail!(
            "{PROCS} processes each ran `shmctr add PATH {ADDS}` at once; the counter counted \
             {value} of their increments instead of {want}: {} updates were lost. Two processes read the same value \
             and both wrote value+1. Every read-modify-write must happen under the semaphore's \
             lock: wait (semop -1) before the read, post (semop +1) after the write",
            want - value
        );
    }
    ensure!(
        value == want,
        "{PROCS} processes each ran `shmctr add PATH {ADDS}` at once; the counter counted \
         {value} of their increments, more than the {want} asked for"
    );
    if let Some(sem) = sem_of(key) {
        if let Some((val, _)) = sem_state(sem.id) {
            ensure!(
                val == 1,
                "after every adder exited, the counter's semaphore has the value {val}, not 1 \
                 (free): each lock (semop -1) must be followed by exactly one unlock (semop +1)"
            );
        }
    }
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// Why an adder that `survives_killed_adders` stopped and continued may exit 1.
const STOPPED: &str = "To catch a lock holder the grader stopped and continued these adders \
     (SIGSTOP, SIGCONT): an adder asleep in semop then gets EINTR (Interrupted system call), \
     and wait must call semop again instead of returning the error";

/// Stops adders one at a time until one is stopped inside semop (`/proc/PID/syscall` names
/// it: it was asleep waiting for the lock), then continues them, within 5 s.
fn interrupt_a_waiter(adders: &mut [(Proc, String)]) {
    let in_semop = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
            .is_some_and(|n| n == libc::SYS_semop || n == libc::SYS_semtimedop)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut turn = 0;
    while Instant::now() < deadline && !adders.is_empty() {
        turn += 1;
        let (p, _) = &mut adders[turn % adders.len()];
        if p.try_ending().is_some() {
            continue;
        }
        let pid = p.pid;
        p.signal(Signal::SIGSTOP);
        let stopped = poll_until(Instant::now() + Duration::from_secs(2), || {
            matches!(state(pid), Some('T' | 't' | 'Z') | None)
        });
        let caught = stopped && in_semop(pid);
        p.signal(Signal::SIGCONT);
        if caught {
            return;
        }
    }
}

/// Adders SIGKILLed while they hold the lock: the others still finish (SEM_UNDO).
fn survives_killed_adders(scene: &mut Scene) -> CheckResult {
    const PROCS: usize = 8;
    const ADDS: u64 = 10_000;
    const KILLS: usize = 2;
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    let key = scene.key(&path);
    let (_, sem) = objects_of(&path, key)?;
    lone_add_frees_lock(scene, &path, key)?;
    let mut adders: Vec<(Proc, String)> = Vec::new();
    for _ in 0..PROCS {
        let spec = scene.shmctr(&["add", s(&path), &ADDS.to_string()]);
        let p = scene.spawn(&spec)?;
        adders.push((p, format!("`shmctr add {} {ADDS}`", path.display())));
    }
    // First, an adder asleep in semop (waiting for the lock) is stopped and continued: its
    // semop then fails with EINTR (System V calls are never restarted after a stop), every
    // time, and wait must call it again.
    interrupt_a_waiter(&mut adders);
    // Catch an adder while it holds the lock: stop it, and look at the semaphore. Its value
    // is 0 (taken) and the last semop on it was this adder's exactly when the adder's last
    // operation was the wait of its lock. Then SIGKILL it, still stopped, lock held.
    let mut killed: Vec<i32> = Vec::new();
    let hunt_deadline = Instant::now() + Duration::from_secs(20);
    let mut turn = 0;
    while killed.len() < KILLS {
        for (p, what) in adders.iter_mut() {
            if let Some(ending) = p.try_ending() {
                if ending != crate::sandbox::Ending::Exited(0) && !killed.contains(&p.pid) {
                    let err = String::from_utf8_lossy(&p.stderr().0).into_owned();
                    fail!(
                        "{what} {} (expected exit status 0); its stderr: {}\n{STOPPED}",
                        ending.describe(),
                        quoted(&err)
                    );
                }
            }
        }
        let live: Vec<usize> = (0..adders.len())
            .filter(|&i| {
                let (p, _) = &mut adders[i];
                !killed.contains(&p.pid) && p.try_ending().is_none()
            })
            .collect();
        if live.is_empty() || Instant::now() >= hunt_deadline {
            fail!(
                "8 processes ran `shmctr add PATH {ADDS}`; the grader stopped them one at a time \
                 to catch one holding the counter's lock (semaphore value 0, last semop by that \
                 process) and never did{}. `add` must take the lock with semop on the counter's \
                 semaphore (key ftok(PATH, 'c')) around every increment",
                if live.is_empty() {
                    " before they all ended"
                } else {
                    ""
                }
            );
        }
        turn += 1;
        let (p, _) = &mut adders[live[turn % live.len()]];
        p.signal(Signal::SIGSTOP);
        let pid = p.pid;
        let stopped = poll_until(Instant::now() + Duration::from_secs(2), || {
            matches!(state(pid), Some('T' | 't' | 'Z') | None)
        });
        let holds = stopped
            && matches!(state(pid), Some('T' | 't'))
            && sem_state(sem.id).is_some_and(|(val, last)| val == 0 && last == pid);
        if holds {
            p.signal(Signal::SIGKILL);
            let _ = p.wait_until(Instant::now() + Duration::from_secs(5));
            killed.push(pid);
            // Without SEM_UNDO the lock stays taken by the dead process for good: the value
            // stays 0 and nobody else ever does a semop on it.
            let released = poll_until(Instant::now() + Duration::from_secs(5), || {
                sem_state(sem.id).is_none_or(|(val, last)| val != 0 || last != pid)
            });
            if !released {
                fail!(
                    "the grader SIGKILLed an adder (pid {pid}) while it held the counter's lock; \
                     5 s later the semaphore is still 0 (taken) and nobody else got the lock: the \
                     other adders wait forever. A process that dies holding the lock never posts: \
                     give every semop the flag SEM_UNDO, so that the kernel undoes a dead \
                     process's operations and releases its lock"
                );
            }
        } else {
            p.signal(Signal::SIGCONT);
        }
    }
    let mut survivors: Vec<(Proc, String)> = adders
        .into_iter()
        .filter(|(p, _)| !killed.contains(&p.pid))
        .collect();
    // Stopped ones that were not killed were continued; make sure.
    for (p, _) in &survivors {
        p.signal(Signal::SIGCONT);
    }
    finish_adders(
        scene,
        &mut survivors,
        key,
        Instant::now() + Duration::from_secs(40),
        "The other adders must finish after two adders were SIGKILLed holding the lock \
         (SEM_UNDO releases it).",
    )
    .map_err(|Fail(m)| {
        if m.contains("expected exit status 0") {
            Fail(format!("{m}\n{STOPPED}"))
        } else {
            Fail(m)
        }
    })?;
    let value = scene.get(&path)?.saturating_sub(LONE);
    let (low, high) = ((PROCS - KILLS) as u64 * ADDS, PROCS as u64 * ADDS);
    ensure!(
        (low..=high).contains(&value),
        "after {KILLS} of {PROCS} adders of {ADDS} were SIGKILLed and the others finished, the \
         counter is {value}; it must be between {low} (the survivors' increments) and {high}. \
         Updates were lost: every read-modify-write must happen under the lock"
    );
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// `shmctr stat` agrees with `ipcs -m`, idle and with one attached adder.
fn stat_matches_ipcs(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    let key = scene.key(&path);
    // The pid of `create` is the segment's creator.
    let creator = scene.last_pid;
    let compare = |scene: &mut Scene, when: &str| -> CheckResult {
        let out = scene.run_ok(&["stat", s(&path)])?;
        let line = out.stdout_str();
        let Some((size, nattch, mode, cpid)) = parse_stat(&line) else {
            fail!(
                "`shmctr stat PATH` printed {}; expected one line \
                 `size=<bytes> nattch=<n> mode=<octal> cpid=<pid>`",
                quoted(&line)
            );
        };
        let (i_size, i_nattch, i_mode, i_cpid) = ipcs_row(scene, key)?;
        let ours = format!("size={size} nattch={nattch} mode={mode:o} cpid={cpid}");
        let theirs = format!("size={i_size} nattch={i_nattch} mode={i_mode:o} cpid={i_cpid}");
        ensure!(
            ours == theirs,
            "{when}, `shmctr stat PATH` printed `{}` but `ipcs -m` shows {theirs} for key {}. \
             stat must print shm_segsz, shm_nattch, the permission bits of shm_perm.mode (in \
             octal) and shm_cpid from shmctl(IPC_STAT), without attaching the segment itself",
            line.trim(),
            hex(key)
        );
        ensure!(
            cpid == creator,
            "{when}, `shmctr stat PATH` printed cpid={cpid}, but the segment was created by \
             `shmctr create` (pid {creator})"
        );
        Ok(())
    };
    compare(scene, "with no process attached")?;
    // One adder attached, stopped so that nattch holds still.
    let spec = scene.shmctr(&["add", s(&path), "1000000000"]);
    let adder = scene.spawn(&spec)?;
    let attached = poll_until(Instant::now() + Duration::from_secs(10), || {
        shm_of(key).is_some_and(|r| r.nattch >= 1)
    });
    ensure!(
        attached,
        "`shmctr add PATH 1000000000` did not attach the counter's segment within 10 s \
         (nattch stayed 0 in /proc/sysvipc/shm)"
    );
    adder.signal(Signal::SIGSTOP);
    let pid = adder.pid;
    poll_until(Instant::now() + Duration::from_secs(2), || {
        matches!(state(pid), Some('T' | 't') | None)
    });
    compare(scene, "with one `shmctr add` attached")?;
    drop(adder);
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// After `remove`, nothing of the counter is left; a second `remove` fails.
fn removes_everything(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("counter")?;
    let key = scene.key(&path);
    scene.create(&path)?;
    objects_of(&path, key)?;
    scene.run_ok(&["add", s(&path), "10"])?;
    scene.run_ok(&["remove", s(&path)])?;
    if let Some(shm) = shm_of(key) {
        fail!(
            "after `shmctr remove PATH` (exit 0) the counter's segment (key {}, shmid {}) is still \
             in /proc/sysvipc/shm: it is left behind until reboot. remove must mark it with \
             shmctl(IPC_RMID)",
            hex(key),
            shm.id
        );
    }
    if let Some(sem) = sem_of(key) {
        fail!(
            "after `shmctr remove PATH` (exit 0) the counter's semaphore set (key {}, semid {}) \
             is still in /proc/sysvipc/sem: it is left behind until reboot. remove must delete \
             it with semctl(IPC_RMID)",
            hex(key),
            sem.id
        );
    }
    let again = scene.run(&["remove", s(&path)])?;
    ensure!(
        again.status() == 1 && again.stderr_str().starts_with("shmctr: "),
        "a second `shmctr remove PATH` {} with stderr {}; expected exit status 1 and a line \
         `shmctr: ...`: there is no counter to remove",
        again.ending.describe(),
        quoted(&again.stderr_str())
    );
    let get = scene.run(&["get", s(&path)])?;
    ensure!(
        get.status() == 1,
        "`shmctr get PATH` after `shmctr remove PATH` {} (printed {}); expected exit status 1: \
         the counter is gone",
        get.ending.describe(),
        quoted(&get.stdout_str())
    );
    remove_with_one_gone(scene)?;
    create_fails_halfway(scene)
}

/// A counter with one of its two objects already removed (by the grader): `shmctr remove`
/// removes the other and exits 1 with one line.
fn remove_with_one_gone(scene: &mut Scene) -> CheckResult {
    for gone in ["segment", "semaphore set"] {
        let path = scene.counter_file(&format!("half-{}", gone.replace(' ', "-")))?;
        let key = scene.key(&path);
        scene.create(&path)?;
        let (shm, sem) = objects_of(&path, key)?;
        // SAFETY: IPC_RMID takes no buffer and no fourth argument.
        unsafe {
            if gone == "segment" {
                libc::shmctl(shm.id, libc::IPC_RMID, std::ptr::null_mut());
            } else {
                libc::semctl(sem.id, 0, libc::IPC_RMID);
            }
        }
        let out = scene.run(&["remove", s(&path)])?;
        let other = if gone == "segment" {
            sem_of(key).map(|r| format!("semaphore set (semid {})", r.id))
        } else {
            shm_of(key).map(|r| format!("segment (shmid {})", r.id))
        };
        if let Some(other) = other {
            fail!(
                "the grader removed the counter's {gone} itself, then ran `shmctr remove PATH` \
                 ({}); the counter's {other} is still there, left until reboot. remove must \
                 remove whichever of the two still exists, and only then report the missing \
                 one (do not return at the first error)",
                out.ending.describe()
            );
        }
        let err = out.stderr_str();
        ensure!(
            out.status() == 1 && err.starts_with("shmctr: ") && err.trim_end().lines().count() == 1,
            "the grader removed the counter's {gone} itself, then ran `shmctr remove PATH`: it \
             removed the rest but {} with stderr {}; expected exit status 1 and one line \
             `shmctr: ...` about the missing {gone}",
            out.ending.describe(),
            quoted(&err)
        );
    }
    Ok(())
}

/// A semaphore set with the counter's key exists already (made by the grader), so `shmctr
/// create` fails after it made the segment: it must exit 1 and leave no segment behind.
fn create_fails_halfway(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("taken-semaphore")?;
    let key = scene.key(&path);
    // SAFETY: semget takes no pointer.
    let semid = unsafe { libc::semget(key, 1, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    ensure!(
        semid != -1,
        "the grader could not make a semaphore set with key {}: {}",
        hex(key),
        std::io::Error::last_os_error()
    );
    // Owned by the student's identity, as a set an earlier run of theirs left would be: a
    // create that is not exclusive then really opens it (another owner's set would refuse it).
    if let Some((uid, gid)) = scene.ctx.student {
        let mut ds = std::mem::MaybeUninit::<libc::semid_ds>::zeroed();
        // SAFETY: IPC_STAT fills the semid_ds the pointer points to (zeroed, so valid anyway).
        let mut ds = unsafe {
            libc::semctl(semid, 0, libc::IPC_STAT, ds.as_mut_ptr());
            ds.assume_init()
        };
        ds.sem_perm.uid = uid;
        ds.sem_perm.gid = gid;
        // SAFETY: IPC_SET reads the semid_ds the pointer points to.
        unsafe { libc::semctl(semid, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds) };
    }
    let out = scene.run(&["create", s(&path)])?;
    let left = shm_of(key);
    // SAFETY: IPC_RMID takes no fourth argument.
    unsafe { libc::semctl(semid, 0, libc::IPC_RMID) };
    ensure!(
        out.status() != 0,
        "a semaphore set with the key ftok(PATH, 'c') existed already (made by the grader), and \
         `shmctr create PATH` still exited 0: it took over a semaphore it did not make. \
         Semaphore::create must be exclusive (semget with IPC_CREAT | IPC_EXCL, EEXIST when \
         the key is taken), and create must then exit 1"
    );
    if let Some(shm) = left {
        fail!(
            "a semaphore set with the key ftok(PATH, 'c') existed already, so `shmctr create \
             PATH` could not make the counter's semaphore ({}); it left the segment it had \
             just made (key {}, shmid {}) behind, a half counter that `create` now refuses and \
             nobody removes. When create fails halfway it must remove what it made",
            out.ending.describe(),
            hex(key),
            shm.id
        );
    }
    let err = out.stderr_str();
    ensure!(
        out.status() == 1 && err.starts_with("shmctr: "),
        "a semaphore set with the key ftok(PATH, 'c') existed already; `shmctr create PATH` {} \
         with stderr {}; expected exit status 1 and one line `shmctr: ...` (semget: EEXIST)",
        out.ending.describe(),
        quoted(&err)
    );
    Ok(())
}

/// Create twice, a missing counter, a missing file, usage errors.
fn create_twice_and_missing(scene: &mut Scene) -> CheckResult {
    const CONTENT: &str = "the counter file's own bytes\n";
    let path = scene.counter_file("counter")?;
    // Same inode, same key: shmctr must never create, truncate or write PATH.
    std::fs::write(&path, CONTENT)?;
    scene.create(&path)?;
    let now = std::fs::read_to_string(&path).unwrap_or_default();
    ensure!(
        now == CONTENT,
        "`shmctr create PATH` changed the file PATH: it held {} and now holds {}. PATH only \
         names the counter (ftok reads its inode); shmctr must never create, truncate or write \
         it",
        quoted(CONTENT),
        quoted(&now)
    );
    scene.run_ok(&["add", s(&path), "3"])?;
    let twice = scene.run(&["create", s(&path)])?;
    ensure!(
        twice.status() == 1 && twice.stderr_str().starts_with("shmctr: "),
        "a second `shmctr create PATH` {} with stderr {}; expected exit status 1 and a line \
         `shmctr: ...`: the counter exists (create with IPC_CREAT | IPC_EXCL, and report EEXIST)",
        twice.ending.describe(),
        quoted(&twice.stderr_str())
    );
    let key = scene.key(&path);
    let (shm, sem) = (shm_of(key), sem_of(key));
    ensure!(
        shm.is_some() && sem.is_some(),
        "a refused second `shmctr create PATH` removed the existing counter's {}, and the 3 \
         increments counted in it with it: a failed create must leave the existing counter \
         alone. Create the segment exclusively (IPC_CREAT | IPC_EXCL): then a second create \
         fails before it has anything to clean up, and its clean-up never touches objects it \
         did not make",
        if shm.is_none() {
            "segment"
        } else {
            "semaphore set"
        }
    );
    let value = scene.get(&path)?;
    ensure!(
        value == 3,
        "after `shmctr add PATH 3` and a refused second `shmctr create PATH`, `shmctr get PATH` \
         printed {value} instead of 3: a failed create must leave the existing counter alone"
    );
    scene.run_ok(&["remove", s(&path)])?;

    // A file with no counter, and no file at all.
    let never = scene.counter_file("never-created")?;
    let nofile = scene.ctx.scratch.join("no-such-file");
    for (path, why) in [
        (&never, "the file exists but no counter was created for it"),
        (&nofile, "the file does not exist (ftok fails)"),
    ] {
        for args in [
            vec!["get", s(path)],
            vec!["add", s(path), "1"],
            vec!["stat", s(path)],
            vec!["remove", s(path)],
        ] {
            let out = scene.run(&args)?;
            let err = out.stderr_str();
            ensure!(
                out.status() == 1
                    && err.starts_with("shmctr: ")
                    && err.trim_end().lines().count() == 1,
                "`shmctr {}` {} with stderr {}, where {why}; expected exit status 1 and one \
                 line `shmctr: ...`",
                args.join(" "),
                out.ending.describe(),
                quoted(&err)
            );
            ensure!(
                err.contains("(os error "),
                "`shmctr {}`, where {why}, printed {} on stderr: the line must include the OS \
                 error that made the call fail, as `io::Error`'s Display shows it (\"No such \
                 file or directory (os error 2)\"), so that the user knows which call failed \
                 and why",
                args.join(" "),
                quoted(&err)
            );
        }
    }
    let create = scene.run(&["create", s(&nofile)])?;
    let created = nofile.exists();
    if let Some(k) = ftok(&nofile) {
        // A counter made for a file it created: remove it now, the key is not the scene's.
        if let Some(shm) = shm_of(k) {
            // SAFETY: IPC_RMID ignores the buffer.
            unsafe { libc::shmctl(shm.id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
        if let Some(sem) = sem_of(k) {
            // SAFETY: IPC_RMID takes no fourth argument.
            unsafe { libc::semctl(sem.id, 0, libc::IPC_RMID) };
        }
        let _ = std::fs::remove_file(&nofile);
    }
    ensure!(
        !created,
        "`shmctr create PATH` where PATH did not exist created the file PATH ({}): shmctr never \
         creates or changes PATH; a missing file is an error (exit 1)",
        create.ending.describe()
    );
    ensure!(
        create.status() == 1 && create.stderr_str().starts_with("shmctr: "),
        "`shmctr create PATH` where PATH does not exist {} with stderr {}; expected exit \
         status 1 and one line `shmctr: ...` (ftok fails with ENOENT): shmctr never creates PATH",
        create.ending.describe(),
        quoted(&create.stderr_str())
    );
    ensure!(
        ftok(&never).is_some_and(|k| shm_of(k).is_none() && sem_of(k).is_none()),
        "`shmctr get/add/stat/remove` on a file with no counter created a segment or a \
         semaphore: only `create` may create"
    );

    // Usage errors: exit 2 with the usage on stderr.
    for args in [
        vec![],
        vec!["create"],
        vec!["frobnicate", s(&path)],
        vec!["add", s(&path)],
        vec!["add", s(&path), "many"],
        vec!["get", s(&path), "extra"],
    ] {
        let out = scene.run(&args)?;
        ensure!(
            out.status() == 2 && !out.stderr_str().trim().is_empty(),
            "`shmctr {}` {} with stderr {}; a usage error must exit with status 2 and print \
             the usage on stderr",
            args.join(" "),
            out.ending.describe(),
            quoted(&out.stderr_str())
        );
    }
    Ok(())
}
