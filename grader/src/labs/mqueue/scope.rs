//! Where the queues of a run can be seen: the check's own IPC and mount namespaces with a
//! fresh mqueue mount, the POSIX queues there, /proc/sysvipc/msg, and the sweep that
//! reports and removes what a run left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::check::Ctx;

use super::contract_names;

/// The check's view of message queues: its own namespaces when it could make them.
pub(super) struct Scope {
    /// An mqueue filesystem showing this check's POSIX queues (`None`: not available).
    mq_dir: Option<PathBuf>,
    /// Whether this check has its own IPC namespace (every queue in it is the run's).
    private: bool,
    /// Queues there before the run (empty in a private namespace).
    posix_before: BTreeSet<String>,
    sysv_before: BTreeSet<i32>,
}

impl Scope {
    pub(super) fn enter(ctx: &Ctx) -> Scope {
        use nix::sched::{CloneFlags, unshare};
        let private = unshare(CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS).is_ok();
        let mut mq_dir = None;
        if private {
            use nix::mount::{MsFlags, mount};
            // Mounts made from now on stay in this namespace.
            let _ = mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            );
            let dir = ctx.scratch.join(".grader-mqueue");
            if std::fs::create_dir_all(&dir).is_ok()
                && mount(
                    Some("mqueue"),
                    &dir,
                    Some("mqueue"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .is_ok()
            {
                mq_dir = Some(dir);
            }
        } else {
            mq_dir = mqueue_mount();
        }
        let mut scope = Scope {
            mq_dir,
            private,
            posix_before: BTreeSet::new(),
            sysv_before: BTreeSet::new(),
        };
        scope.posix_before = scope.posix_queues();
        scope.sysv_before = sysv_queues().into_keys().collect();
        scope
    }

    /// POSIX queue names (with their leading `/`) visible now.
    fn posix_queues(&self) -> BTreeSet<String> {
        let Some(dir) = &self.mq_dir else {
            return BTreeSet::new();
        };
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(|n| format!("/{n}")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every queue the run left behind, described, and removed. `dispatchers` are the pids
    /// of the dispatchers of the run, whose contract names are checked in any case.
    pub(super) fn sweep(&self, dispatchers: &[i32]) -> Vec<String> {
        let mut left = BTreeSet::new();
        for name in self.posix_queues() {
            let ours = self.private
                || dispatchers
                    .iter()
                    .any(|pid| name.contains(&format!("-{pid}-")));
            if ours && !self.posix_before.contains(&name) {
                left.insert(name);
            }
        }
        for pid in dispatchers {
            for name in contract_names(*pid) {
                if posix_exists(&name) {
                    left.insert(name);
                }
            }
        }
        let mut found: Vec<String> = Vec::new();
        for name in left {
            let _ = nix::mqueue::mq_unlink(name.as_str());
            found.push(format!("POSIX queue {name}"));
        }
        if self.private {
            for (id, line) in sysv_queues() {
                if !self.sysv_before.contains(&id) {
                    // SAFETY: IPC_RMID takes no buffer.
                    unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
                    found.push(format!("System V queue (msqid {id}: {line})"));
                }
            }
        }
        found
    }
}

/// Where an mqueue filesystem is mounted, if anywhere.
fn mqueue_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
        (kind == "mqueue").then(|| PathBuf::from(at))
    })
}

/// Whether the POSIX queue `name` exists (the grader may open any queue).
pub(super) fn posix_exists(name: &str) -> bool {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_open};
    use nix::sys::stat::Mode;
    match mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None) {
        Ok(q) => {
            let _ = mq_close(q);
            true
        }
        Err(e) => e != nix::errno::Errno::ENOENT,
    }
}

/// System V queues visible now: msqid and a summary of the line of /proc/sysvipc/msg.
fn sysv_queues() -> BTreeMap<i32, String> {
    let text = std::fs::read_to_string("/proc/sysvipc/msg").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let id = f.get(1)?.parse().ok()?;
            Some((
                id,
                format!(
                    "key {}, {} messages",
                    f.first().unwrap_or(&"?"),
                    f.get(4).unwrap_or(&"?")
                ),
            ))
        })
        .collect()
}
