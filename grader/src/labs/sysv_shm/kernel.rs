//! What the kernel says: ftok, /proc/sysvipc, semctl, and the state of a process.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use crate::check::Fail;
use crate::{ensure, fail};

use super::PROJ;
use super::text::hex;

/// `ftok(path, 'c')`.
pub(super) fn ftok(path: &Path) -> Option<i32> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid C string that outlives the call.
    let key = unsafe { libc::ftok(c.as_ptr(), libc::c_int::from(PROJ)) };
    (key != -1).then_some(key)
}

/// One row of /proc/sysvipc/shm.
#[derive(Debug, Clone, Copy)]
pub(super) struct ShmRow {
    pub(super) key: i32,
    pub(super) id: i32,
    pub(super) perms: u32,
    pub(super) size: u64,
    pub(super) cpid: i32,
    pub(super) nattch: u64,
}

/// One row of /proc/sysvipc/sem.
#[derive(Debug, Clone, Copy)]
pub(super) struct SemRow {
    pub(super) key: i32,
    pub(super) id: i32,
    pub(super) perms: u32,
    pub(super) nsems: i32,
}

fn table(file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Every segment in /proc/sysvipc/shm: key shmid perms size cpid lpid nattch ...
pub(super) fn shm_table() -> Vec<ShmRow> {
    table("/proc/sysvipc/shm")
        .iter()
        .filter_map(|f| {
            Some(ShmRow {
                key: f.first()?.parse().ok()?,
                id: f.get(1)?.parse().ok()?,
                perms: u32::from_str_radix(f.get(2)?, 8).ok()?,
                size: f.get(3)?.parse().ok()?,
                cpid: f.get(4)?.parse().ok()?,
                nattch: f.get(6)?.parse().ok()?,
            })
        })
        .collect()
}

/// Every semaphore set in /proc/sysvipc/sem: key semid perms nsems ...
pub(super) fn sem_table() -> Vec<SemRow> {
    table("/proc/sysvipc/sem")
        .iter()
        .filter_map(|f| {
            Some(SemRow {
                key: f.first()?.parse().ok()?,
                id: f.get(1)?.parse().ok()?,
                perms: u32::from_str_radix(f.get(2)?, 8).ok()?,
                nsems: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

pub(super) fn shm_of(key: i32) -> Option<ShmRow> {
    shm_table().into_iter().find(|r| r.key == key)
}

pub(super) fn sem_of(key: i32) -> Option<SemRow> {
    sem_table().into_iter().find(|r| r.key == key)
}

/// Value and last pid of semaphore 0 of the set `semid`, or `None` if it is gone.
pub(super) fn sem_state(semid: i32) -> Option<(i32, i32)> {
    // SAFETY: GETVAL and GETPID take no fourth argument.
    let (val, pid) = unsafe {
        (
            libc::semctl(semid, 0, libc::GETVAL),
            libc::semctl(semid, 0, libc::GETPID),
        )
    };
    (val != -1 && pid != -1).then_some((val, pid))
}

/// The segment and semaphore set of a counter just created, or a failure that says which
/// is missing.
pub(super) fn objects_of(path: &Path, key: i32) -> Result<(ShmRow, SemRow), Fail> {
    let shm = shm_of(key);
    let sem = sem_of(key);
    match (shm, sem) {
        (Some(shm), Some(sem)) => {
            ensure!(
                sem.nsems >= 1,
                "the semaphore set of key {} has no semaphore",
                hex(key)
            );
            Ok((shm, sem))
        }
        (None, _) => fail!(
            "after `shmctr create {}` (exit 0) there is no segment with key {} = ftok(PATH, 'c') \
             in /proc/sysvipc/shm: create must make the segment with the key ftok(PATH, 'c')",
            path.display(),
            hex(key)
        ),
        (_, None) => fail!(
            "after `shmctr create {}` (exit 0) there is no semaphore set with key {} = \
             ftok(PATH, 'c') in /proc/sysvipc/sem: create must make the semaphore with the \
             same key as the segment",
            path.display(),
            hex(key)
        ),
    }
}

/// The state letter of `pid` (R, S, T, Z...), or `None` once it is gone.
pub(super) fn state(pid: i32) -> Option<char> {
    testkit::procfs::stat(pid).map(|s| s.state)
}

/// Waits until `cond` holds, polling every millisecond, until `deadline`.
pub(super) fn poll_until(deadline: Instant, cond: impl FnMut() -> bool) -> bool {
    crate::check::poll_until(deadline, cond)
}
