//! Leaks across repeated calls: what this process holds ([`Snapshot`]: descriptors by
//! kind, child processes and zombies, threads, System V objects, POSIX queues and shm
//! objects) before and after many calls of one library function.
//!
//! ```text
//! after 1000 calls of filter, 1000 more descriptors are open: pipe read ends; close the
//! child's stdout pipe once you have read EOF
//! ```
//!
//! A leak is growth that scales with the calls (at least one object per ten calls): one
//! object made once and kept (a cache, a lazily started thread) is not a leak, and a few
//! objects of another test running in the same process at the same time are not either.
//! [`assert_no_leak`] calls the function a few times first, so that such one-time objects
//! exist before the first snapshot, and serializes every leak check of the process.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ipc::{self, SysvKind, SysvObject};
use crate::procfs::{self, Fd, FdKind, Stat};

/// What this process holds at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its open descriptors.
    pub fds: Vec<Fd>,
    /// Its child processes, zombies included.
    pub children: Vec<Stat>,
    /// How many threads it has.
    pub threads: usize,
    /// The System V objects its uid created.
    pub sysv: Vec<SysvObject>,
    /// The POSIX queues in `/dev/mqueue` (empty where it is not mounted).
    pub queues: Vec<String>,
    /// The entries of `/dev/shm`.
    pub shm: Vec<String>,
    /// How many System V segments are attached (`/SYSV` lines of `/proc/self/maps`).
    pub attached: usize,
}

impl Snapshot {
    /// Reads it all from `/proc`, `/dev/mqueue` and `/dev/shm`.
    pub fn take() -> Snapshot {
        let me = std::process::id() as i32;
        let names = |v: Option<Vec<(String, u32)>>| {
            v.unwrap_or_default().into_iter().map(|(n, _)| n).collect()
        };
        Snapshot {
            fds: procfs::fds("self"),
            children: procfs::children(me),
            threads: procfs::threads(me).len(),
            sysv: ipc::own_sysv(),
            queues: names(ipc::posix_queues()),
            shm: names(ipc::shm_objects()),
            attached: std::fs::read_to_string("/proc/self/maps")
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("/SYSV"))
                .count(),
        }
    }

    /// What grew since `before`, one entry per kind of object: `(count, "more descriptors
    /// are open: pipe read ends")`.
    pub fn growth_since(&self, before: &Snapshot) -> Vec<(usize, String)> {
        let mut out = Vec::new();

        let classes = |fds: &[Fd]| {
            let mut m: BTreeMap<FdKind, usize> = BTreeMap::new();
            for f in fds {
                *m.entry(f.kind.class()).or_default() += 1;
            }
            m
        };
        let (old, new) = (classes(&before.fds), classes(&self.fds));
        let grown: Vec<(usize, FdKind)> = new
            .iter()
            .filter_map(|(k, n)| {
                let was = old.get(k).copied().unwrap_or(0);
                (*n > was).then(|| (n - was, k.clone()))
            })
            .collect();
        let total: usize = grown.iter().map(|(n, _)| n).sum();
        if total > 0 {
            let kinds = match &grown[..] {
                [(_, k)] => k.plural(),
                _ => grown
                    .iter()
                    .map(|(n, k)| format!("{} ({n})", k.plural()))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            out.push((total, format!("more descriptors are open: {kinds}")));
        }

        let zombies = |s: &Snapshot| s.children.iter().filter(|c| c.state == 'Z').count();
        let running = |s: &Snapshot| s.children.len() - zombies(s);
        let (z, r) = (
            zombies(self).saturating_sub(zombies(before)),
            running(self).saturating_sub(running(before)),
        );
        if z > 0 {
            out.push((
                z,
                "more child processes are zombies: they exited and nobody waited for them \
                 (waitpid)"
                    .to_owned(),
            ));
        }
        if r > 0 {
            let names: Vec<String> = self
                .children
                .iter()
                .filter(|c| c.state != 'Z' && !before.children.iter().any(|b| b.pid == c.pid))
                .take(3)
                .map(|c| format!("`{}` (pid {})", c.comm, c.pid))
                .collect();
            out.push((
                r,
                format!("more child processes still run (e.g. {})", names.join(", ")),
            ));
        }

        if self.threads > before.threads {
            out.push((
                self.threads - before.threads,
                "more threads run: join every thread you start".to_owned(),
            ));
        }

        for kind in [SysvKind::Segment, SysvKind::Semaphores, SysvKind::Queue] {
            let n = self
                .sysv
                .iter()
                .filter(|o| o.kind == kind && !before.sysv.iter().any(|b| b.id == o.id))
                .count();
            if n > 0 {
                out.push((n, format!("more {} exist", kind.plural())));
            }
        }
        if self.attached > before.attached {
            out.push((
                self.attached - before.attached,
                "more System V segments are attached: every shmat needs its shmdt".to_owned(),
            ));
        }
        let new_names = |a: &[String], b: &[String]| a.iter().filter(|n| !b.contains(n)).count();
        let q = new_names(&self.queues, &before.queues);
        if q > 0 {
            out.push((
                q,
                "more POSIX message queues exist in /dev/mqueue".to_owned(),
            ));
        }
        let s = new_names(&self.shm, &before.shm);
        if s > 0 {
            out.push((s, "more entries exist in /dev/shm".to_owned()));
        }
        out
    }
}

/// Every leak check of this process runs alone: another one's objects would look like
/// this one's.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lock that [`assert_no_leak`] takes, for a test that counts objects itself.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many times [`assert_no_leak`] calls the function before its first snapshot.
pub const WARM_UP: usize = 3;

/// Calls `call(i)` for `i` in `0..calls` (after [`WARM_UP`] calls with `i = usize::MAX`),
/// and fails if what this process holds grew by at least one object per ten calls:
/// "after 1000 calls of filter, 1000 more descriptors are open: pipe read ends; `advice`".
///
/// `name` names the call as the student wrote it. A thread or child that is still ending
/// when the calls return gets a second to go before the growth counts.
#[track_caller]
pub fn assert_no_leak(calls: usize, name: &str, advice: &str, mut call: impl FnMut(usize)) {
    let _serial = serial();
    for _ in 0..WARM_UP {
        call(usize::MAX);
    }
    let before = Snapshot::take();
    for i in 0..calls {
        call(i);
    }
    // A table full of leaked descriptors cannot even be listed (EMFILE): that is a leak too.
    if let Err(e) = std::fs::read_dir("/proc/self/fd") {
        panic!(
            "after {calls} calls of {name}, this process cannot open /proc/self/fd to count its \
             descriptors ({e}): its descriptor table is full, so the calls leave descriptors \
             open; {advice}"
        );
    }
    let threshold = calls.div_ceil(10).max(1);
    let leaks = |after: &Snapshot| -> Vec<(usize, String)> {
        after
            .growth_since(&before)
            .into_iter()
            .filter(|(n, _)| *n >= threshold)
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(1);
    let mut found = leaks(&Snapshot::take());
    while !found.is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
        found = leaks(&Snapshot::take());
    }
    if found.is_empty() {
        return;
    }
    let what: Vec<String> = found.iter().map(|(n, w)| format!("{n} {w}")).collect();
    panic!(
        "after {calls} calls of {name}, {}; {advice}",
        what.join("; and ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_per_call_is_named_with_its_kind() {
        let mut kept = Vec::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_no_leak(50, "leaky", "close it", |_| {
                let (r, w) = nix::unistd::pipe().unwrap();
                drop(w);
                kept.push(r);
            });
        }));
        let text = *caught.unwrap_err().downcast::<String>().unwrap();
        assert!(
            text.starts_with(
                "after 50 calls of leaky, 50 more descriptors are open: pipe read ends; close it"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_clean_call_passes() {
        assert_no_leak(200, "clean", "", |_| {
            let (r, w) = nix::unistd::pipe().unwrap();
            drop((r, w));
        });
    }

    #[test]
    fn zombies_are_named() {
        let mut pids = Vec::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_no_leak(10, "spawner", "wait for it", |_| {
                let child = std::process::Command::new("true").spawn().unwrap();
                pids.push(child);
            });
        }));
        for mut c in pids {
            let _ = c.wait();
        }
        let text = *caught.unwrap_err().downcast::<String>().unwrap();
        assert!(text.contains("more child processes"), "{text}");
    }
}
