//! IPC objects as the kernel lists them, and their modes: System V segments, semaphore sets
//! and queues (`/proc/sysvipc`), POSIX message queues (`/dev/mqueue`, or `fstat` of a queue
//! descriptor where that filesystem is not mounted), POSIX shared memory (`/dev/shm`), and
//! filesystem objects (FIFOs, socket files).
//!
//! A contract says "mode 0600"; [`assert_mode`] checks it and prints modes in octal.

use std::ffi::CString;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The three kinds of System V IPC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SysvKind {
    /// A shared memory segment (`shmget`).
    Segment,
    /// A semaphore set (`semget`).
    Semaphores,
    /// A message queue (`msgget`).
    Queue,
}

impl SysvKind {
    /// The file in `/proc/sysvipc` that lists this kind.
    pub fn proc_file(self) -> &'static str {
        match self {
            SysvKind::Segment => "/proc/sysvipc/shm",
            SysvKind::Semaphores => "/proc/sysvipc/sem",
            SysvKind::Queue => "/proc/sysvipc/msg",
        }
    }

    /// The kind in the plural, for messages.
    pub fn plural(self) -> &'static str {
        match self {
            SysvKind::Segment => "System V shared memory segments",
            SysvKind::Semaphores => "System V semaphore sets",
            SysvKind::Queue => "System V message queues",
        }
    }
}

impl fmt::Display for SysvKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SysvKind::Segment => "System V shared memory segment",
            SysvKind::Semaphores => "System V semaphore set",
            SysvKind::Queue => "System V message queue",
        })
    }
}

/// One System V object, as a line of `/proc/sysvipc/*` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysvObject {
    /// Segment, semaphore set or queue.
    pub kind: SysvKind,
    /// Its key (0 for `IPC_PRIVATE`).
    pub key: i32,
    /// Its id.
    pub id: i32,
    /// Its permission bits (`0o600`).
    pub mode: u32,
    /// The uid of its creator.
    pub cuid: u32,
    /// The pid of its creator (segments only; 0 for the other kinds).
    pub cpid: i32,
}

/// Every System V object of `kind` this process can see.
pub fn sysv(kind: SysvKind) -> Vec<SysvObject> {
    let text = std::fs::read_to_string(kind.proc_file()).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| -> Option<i64> { f.get(i)?.parse().ok() };
            // shm: key shmid perms size cpid lpid nattch uid gid cuid ...
            // sem: key semid perms nsems uid gid cuid ...
            // msg: key msqid perms cbytes qnum lspid lrpid uid gid cuid ...
            let (cuid, cpid) = match kind {
                SysvKind::Segment => (num(9)?, num(4)?),
                SysvKind::Semaphores => (num(6)?, 0),
                SysvKind::Queue => (num(9)?, 0),
            };
            Some(SysvObject {
                kind,
                key: num(0)? as i32,
                id: num(1)? as i32,
                mode: u32::from_str_radix(f.get(2)?, 8).ok()? & 0o777,
                cuid: cuid as u32,
                cpid: cpid as i32,
            })
        })
        .collect()
}

/// Every System V object of every kind created by this process's uid.
pub fn own_sysv() -> Vec<SysvObject> {
    let uid = nix::unistd::getuid().as_raw();
    [SysvKind::Segment, SysvKind::Semaphores, SysvKind::Queue]
        .into_iter()
        .flat_map(sysv)
        .filter(|o| o.cuid == uid)
        .collect()
}

/// The object of `kind` with id `id`, if it exists.
pub fn sysv_by_id(kind: SysvKind, id: i32) -> Option<SysvObject> {
    sysv(kind).into_iter().find(|o| o.id == id)
}

/// The names (`/name`) and modes of the POSIX message queues in `/dev/mqueue`; `None`
/// where that filesystem is not mounted.
pub fn posix_queues() -> Option<Vec<(String, u32)>> {
    list_dir("/dev/mqueue", "/")
}

/// The names and modes of the POSIX shared memory objects and named semaphores in
/// `/dev/shm`; `None` where it does not exist.
pub fn shm_objects() -> Option<Vec<(String, u32)>> {
    list_dir("/dev/shm", "")
}

fn list_dir(dir: &str, prefix: &str) -> Option<Vec<(String, u32)>> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut out: Vec<(String, u32)> = rd
        .flatten()
        .filter_map(|e| {
            let mode = e.metadata().ok()?.mode() & 0o7777;
            Some((format!("{prefix}{}", e.file_name().to_string_lossy()), mode))
        })
        .collect();
    out.sort();
    Some(out)
}

/// The permission bits of the POSIX queue `name` (`/name`), read with `fstat` on a
/// descriptor of it, so that no mqueue filesystem needs to be mounted; `None` if there is
/// no such queue.
pub fn queue_mode(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid C string; O_RDONLY without O_CREAT takes no further arguments.
    let mqd = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    if mqd == -1 {
        return None;
    }
    // SAFETY: on Linux a queue descriptor is a file descriptor; `st` is written by fstat.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        let ok = libc::fstat(mqd, &mut st) == 0;
        libc::mq_close(mqd);
        ok.then_some(st.st_mode & 0o7777)
    }
}

/// What kind of filesystem object is at `path`, and its permission bits.
pub fn file_mode(path: &Path) -> Option<(&'static str, u32)> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    let kind = if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket file"
    } else if t.is_dir() {
        "directory"
    } else {
        "file"
    };
    Some((kind, m.mode() & 0o7777))
}

/// `bits` of a mode in words: "write for its group and every other user, execute for its
/// owner".
fn permissions(bits: u32) -> String {
    let mut out: Vec<String> = Vec::new();
    for (bit, what) in [(0o4, "read"), (0o2, "write"), (0o1, "execute")] {
        let who: Vec<&str> = [(6, "its owner"), (3, "its group"), (0, "every other user")]
            .into_iter()
            .filter(|(shift, _)| bits & (bit << shift) != 0)
            .map(|(_, who)| who)
            .collect();
        if !who.is_empty() {
            out.push(format!("{what} for {}", who.join(" and ")));
        }
    }
    if bits & 0o7000 != 0 {
        out.push(format!("the special bits {:04o}", bits & 0o7000));
    }
    out.join(", ")
}

/// Fails unless `actual` is `expected`, naming `what` and both modes in octal, and the
/// permissions the difference gives away.
#[track_caller]
pub fn assert_mode(what: &str, expected: u32, actual: u32) {
    if expected == actual {
        return;
    }
    let (extra, lacking) = (actual & !expected, expected & !actual);
    let mut said = Vec::new();
    if extra != 0 {
        said.push(format!(
            "it gives {} that the contract does not",
            permissions(extra)
        ));
    }
    if lacking != 0 {
        said.push(format!(
            "it lacks {} that the contract requires",
            permissions(lacking)
        ));
    }
    let gives = format!(": {}", said.join(", and "));
    panic!(
        "{what} has mode {actual:04o}, expected {expected:04o}{gives}; pass the mode the \
         contract states when you create it (the umask may only remove bits)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(expected: u32, actual: u32) -> String {
        let caught = std::panic::catch_unwind(|| assert_mode("the socket", expected, actual));
        *caught.unwrap_err().downcast::<String>().unwrap()
    }

    #[test]
    fn a_mode_is_described_by_what_it_gives_and_lacks() {
        let text = message(0o666, 0o755);
        assert!(
            text.contains(
                "it gives execute for its owner and its group and every other user that the \
                 contract does not, and it lacks write for its group and every other user"
            ),
            "{text}"
        );
        let text = message(0o600, 0o644);
        assert!(
            text.contains(": it gives read for its group and every other user that"),
            "{text}"
        );
        assert_mode("x", 0o600, 0o600);
    }
}
