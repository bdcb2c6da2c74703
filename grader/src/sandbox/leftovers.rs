//! IPC objects a test or check left behind: found, removed and named in the report.
//!
//! With namespaces, each test's IPC namespace is kept open by the grader (a handle on
//! `/proc/PID/ns/ipc`); when the test has ended, `grader __leftovers` enters that namespace,
//! with a fresh mqueue filesystem, and lists and removes what is still there. Without
//! namespaces the grader compares the machine's objects before and after the test instead.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::sandbox::{self, Ending, Spec};

/// One System V object or POSIX queue, as `kind name` (e.g. `shm 0x5eed0001`, `mq /jobs`).
pub type Object = String;

/// Every System V object and POSIX queue visible to this process.
pub fn scan() -> BTreeSet<Object> {
    let mut out = BTreeSet::new();
    for (kind, file) in [("shm", "shm"), ("sem", "sem"), ("msg", "msg")] {
        let text = std::fs::read_to_string(format!("/proc/sysvipc/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let mut f = line.split_whitespace();
            let (Some(key), Some(id)) = (f.next(), f.next()) else {
                continue;
            };
            let key: i64 = key.parse().unwrap_or(0);
            out.insert(format!("{kind} key=0x{:08x} id={id}", key as u32));
        }
    }
    if let Ok(rd) = std::fs::read_dir("/dev/mqueue") {
        for e in rd.flatten() {
            out.insert(format!("mq /{}", e.file_name().to_string_lossy()));
        }
    }
    out
}

/// Removes `obj` (as [`scan`] names it).
pub fn remove(obj: &str) {
    let id = |o: &str| o.rsplit("id=").next().and_then(|i| i.parse::<i32>().ok());
    // SAFETY: IPC_RMID on an id, mq_unlink on a NUL-terminated name.
    unsafe {
        if obj.starts_with("shm ") {
            if let Some(id) = id(obj) {
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            }
        } else if obj.starts_with("sem ") {
            if let Some(id) = id(obj) {
                libc::semctl(id, 0, libc::IPC_RMID);
            }
        } else if obj.starts_with("msg ") {
            if let Some(id) = id(obj) {
                libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut());
            }
        } else if let Some(name) = obj.strip_prefix("mq ") {
            if let Ok(c) = std::ffi::CString::new(name) {
                libc::mq_unlink(c.as_ptr());
            }
        }
    }
}

/// `grader __leftovers`: in the namespace it was started in, removes every object and prints
/// what it removed, one per line.
pub fn child_main() {
    for obj in scan() {
        remove(&obj);
        crate::outln!("{obj}");
    }
}

/// A handle that keeps a process's IPC namespace alive after the process has ended.
#[derive(Debug, Clone)]
pub struct Namespace(Arc<OwnedFd>);

impl Namespace {
    /// The IPC namespace of `pid`, if it is not the grader's own.
    pub fn of(pid: i32) -> Option<Namespace> {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/ipc")).ok()?;
        let ours = std::fs::metadata("/proc/self/ns/ipc").ok()?;
        use std::os::unix::fs::MetadataExt;
        if theirs.ino() == ours.ino() {
            return None;
        }
        let f = std::fs::File::open(format!("/proc/{pid}/ns/ipc")).ok()?;
        Some(Namespace(Arc::new(f.into())))
    }

    /// Removes whatever is left in the namespace; returns what was there.
    pub fn sweep(&self, scratch: &Path) -> Vec<Object> {
        let mut spec = Spec::new("/proc/self/exe", scratch).args(["__leftovers"]);
        spec.join_ipc = Some(self.0.clone());
        spec.own_tree_only = true;
        match sandbox::run(&spec, Duration::from_secs(20)) {
            Ok(out) if out.ending == Ending::Exited(0) => String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// In the sweeper child: join the IPC namespace and mount its queues on a private /dev/mqueue.
pub(crate) fn enter(fd: i32) -> std::io::Result<()> {
    // SAFETY: system calls on an fd and constant strings, between fork and exec.
    unsafe {
        if libc::setns(fd, libc::CLONE_NEWIPC) != 0 || libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let none = std::ptr::null::<libc::c_char>();
        libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        libc::mkdir(c"/dev/mqueue".as_ptr(), 0o755);
        libc::mount(
            c"mqueue".as_ptr(),
            c"/dev/mqueue".as_ptr(),
            c"mqueue".as_ptr(),
            0,
            std::ptr::null(),
        );
    }
    Ok(())
}

/// What the report says about `objects` left behind: the advice first, then the objects,
/// counted by kind when there are many ("1000 x POSIX queue (e.g. mq /a, mq /b)"), so that a
/// program that leaks one per request gets a message a student can read to its end.
pub fn describe(objects: &[Object]) -> String {
    const LISTED: usize = 6;
    let what = if objects.len() <= LISTED {
        objects.join(", ")
    } else {
        let mut kinds: std::collections::BTreeMap<&str, Vec<&Object>> = Default::default();
        for o in objects {
            kinds.entry(kind_of(o)).or_default().push(o);
        }
        kinds
            .iter()
            .map(|(kind, v)| match &v[..] {
                [one] => one.to_string(),
                [a, b, ..] => format!("{} x {kind} (e.g. {a}, {b})", v.len()),
                [] => unreachable!(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    format!(
        "Every IPC object a program creates it must also remove (shmctl/semctl/msgctl \
         IPC_RMID, mq_unlink), on success, on error and on SIGINT/SIGTERM; {} left behind \
         (removed by the grader): {what}",
        objects.len()
    )
}

/// The kind of `obj`, in words.
fn kind_of(obj: &str) -> &'static str {
    match obj.split(' ').next() {
        Some("shm") => "System V segment",
        Some("sem") => "System V semaphore set",
        Some("msg") => "System V message queue",
        Some("mq") => "POSIX queue",
        _ => "object",
    }
}

/// Runs `f` (which starts a sandboxed run) and returns its outcome with whatever IPC objects
/// the run left behind, removed: swept from its private namespace, or found by comparing the
/// machine's objects before and after when there is no namespace.
pub fn around(
    f: impl FnOnce() -> std::io::Result<sandbox::Outcome>,
) -> std::io::Result<(sandbox::Outcome, Vec<Object>)> {
    let before = (!crate::sandbox::isolate::active()).then(scan);
    let out = f()?;
    let left = match (&out.ipc_ns, before) {
        (Some(ns), _) => ns.sweep(&std::env::temp_dir()),
        (None, Some(before)) if !crate::sandbox::isolate::active() => {
            let new: Vec<Object> = scan().difference(&before).cloned().collect();
            for o in &new {
                remove(o);
            }
            new
        }
        _ => Vec::new(),
    };
    Ok((out, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_objects_are_counted_by_kind_after_the_advice() {
        let mut objects: Vec<Object> = (0..1000).map(|i| format!("mq /job-{i}")).collect();
        objects.push("shm key=0x00000001 id=7".into());
        let text = describe(&objects);
        assert!(
            text.starts_with("Every IPC object a program creates"),
            "{text}"
        );
        assert!(
            text.contains("1001 left behind (removed by the grader): 1000 x POSIX queue (e.g. mq /job-0, mq /job-1); shm key=0x00000001 id=7"),
            "{text}"
        );
        assert!(text.len() < 400, "{text}");
        assert!(describe(&["mq /a".into()]).ends_with(": mq /a"));
    }
}
