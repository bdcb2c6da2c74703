//! A control group per run: how many tasks and how much memory one test or check may use.
//!
//! A fork bomb stops at the task limit instead of exhausting the machine's pids, and a
//! program that allocates without end is killed by the kernel at the memory limit (default
//! 1 GiB resident) instead of taking the machine, or every other grading of `grade-all
//! --jobs N`, down with it. Both cgroup versions are handled: v2 (one folder with `pids.max`
//! and `memory.max`) and v1 (a folder in the `pids` and one in the `memory` hierarchy). Where
//! the machine has no such controller, or the grader is not root, [`Cgroup::create`] gives
//! what it could (possibly nothing): RLIMIT_NPROC and RLIMIT_AS remain (see
//! [`crate::sandbox::Rlimits`]).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The cgroup folders of one run.
#[derive(Debug)]
pub struct Cgroup {
    /// Folders created (one for v2, up to two for v1), removed on drop.
    dirs: Vec<PathBuf>,
    /// Their `cgroup.procs`, ready for the child between fork and exec.
    procs: Vec<CString>,
    /// Where the memory accounting is, when a memory limit is set.
    memory: Option<Memory>,
}

#[derive(Debug)]
struct Memory {
    dir: PathBuf,
    v2: bool,
    limit: u64,
}

impl Cgroup {
    /// A cgroup limited to `tasks` tasks and `memory` bytes, where the machine lets us.
    /// `None` when neither limit could be set.
    pub fn create(tasks: u32, memory: u64) -> Option<Cgroup> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "ipc-labs-grader-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut cg = Cgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
            memory: None,
        };
        let root = Path::new("/sys/fs/cgroup");
        let v2 = std::fs::read_to_string(root.join("cgroup.subtree_control")).ok();
        if let Some(controllers) = v2 {
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            let dir = own_cgroup("").map_or_else(|| root.to_owned(), |own| root.join(own));
            let dir = if dir.join("cgroup.subtree_control").exists() {
                dir
            } else {
                root.to_owned()
            };
            if let Some(d) = cg.make(&dir.join(&name)) {
                if has("pids") {
                    let _ = std::fs::write(d.join("pids.max"), tasks.to_string());
                }
                if has("memory") && std::fs::write(d.join("memory.max"), memory.to_string()).is_ok()
                {
                    let _ = std::fs::write(d.join("memory.swap.max"), "0");
                    cg.memory = Some(Memory {
                        dir: d,
                        v2: true,
                        limit: memory,
                    });
                }
            }
        } else {
            let pids = root.join("pids");
            if pids.join("cgroup.procs").exists() {
                let parent = own_cgroup("pids").map_or_else(|| pids.clone(), |own| pids.join(own));
                if let Some(d) = cg.make(&parent.join(&name)) {
                    if std::fs::write(d.join("pids.max"), tasks.to_string()).is_err() {
                        cg.forget_last();
                    }
                }
            }
            let mem = root.join("memory");
            if mem.join("cgroup.procs").exists() {
                let parent = own_cgroup("memory").map_or_else(|| mem.clone(), |own| mem.join(own));
                if let Some(d) = cg.make(&parent.join(&name)) {
                    if std::fs::write(d.join("memory.limit_in_bytes"), memory.to_string()).is_ok() {
                        // Swap may not be accounted (the file is then missing): fine.
                        let _ = std::fs::write(
                            d.join("memory.memsw.limit_in_bytes"),
                            memory.to_string(),
                        );
                        cg.memory = Some(Memory {
                            dir: d,
                            v2: false,
                            limit: memory,
                        });
                    } else {
                        cg.forget_last();
                    }
                }
            }
        }
        (!cg.dirs.is_empty()).then_some(cg)
    }

    fn make(&mut self, dir: &Path) -> Option<PathBuf> {
        std::fs::create_dir(dir).ok()?;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()?;
        self.dirs.push(dir.to_owned());
        self.procs.push(procs);
        Some(dir.to_owned())
    }

    fn forget_last(&mut self) {
        if let Some(d) = self.dirs.pop() {
            let _ = std::fs::remove_dir(d);
        }
        self.procs.pop();
    }

    /// Whether a memory limit is in force.
    pub fn limits_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Whether the kernel killed a process of this cgroup for going over its memory limit,
    /// or usage reached the limit; with the limit in bytes.
    pub fn hit_memory_limit(&self) -> Option<u64> {
        let m = self.memory.as_ref()?;
        let read = |f: &str| std::fs::read_to_string(m.dir.join(f)).unwrap_or_default();
        let counter = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let hit = if m.v2 {
            let events = read("memory.events");
            counter(&events, "oom_kill ") > 0
        } else {
            // Kernels before 4.13 do not count kills: reaching the limit is the sign then.
            let control = read("memory.oom_control");
            if control.contains("oom_kill ") {
                counter(&control, "oom_kill ") > 0
            } else {
                read("memory.failcnt").trim().parse::<u64>().unwrap_or(0) > 0
            }
        };
        hit.then_some(m.limit)
    }

    /// Moves the calling process into the cgroup. Runs between fork and exec.
    ///
    /// # Safety
    /// Only to be called in a freshly forked child.
    pub unsafe fn join(&self) {
        for procs in &self.procs {
            // SAFETY: open, write and close on a prepared path; "0" means the caller.
            unsafe {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    libc::write(fd, c"0".as_ptr().cast(), 1);
                    libc::close(fd);
                }
            }
        }
    }
}

/// This process's cgroup path in `controller`'s hierarchy (v1), or the v2 one for "".
fn own_cgroup(controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// The folders of this process's cgroup and of each of its ancestors, innermost first, in
/// the v2 hierarchy (`controller` "") or in v1's `controller` hierarchy.
fn own_and_ancestors(controller: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let (base, controller) = if root.join("cgroup.subtree_control").exists() {
        (root.to_owned(), "")
    } else {
        (root.join(controller), controller)
    };
    let Some(own) = own_cgroup(controller) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = own.ancestors().map(|a| base.join(a)).collect();
    dirs.retain(|d| d.is_dir());
    dirs
}

/// The CPU time this process's cgroup and its ancestors may use, in CPUs (a CFS quota), the
/// smallest; `None` without a quota.
pub fn cpu_quota() -> Option<f64> {
    own_and_ancestors("cpu")
        .iter()
        .filter_map(|d| dir_cpu_quota(d))
        .reduce(f64::min)
}

/// The CFS quota of the cgroup folder `d` in CPUs: v2 `cpu.max` ("QUOTA PERIOD", or "max
/// PERIOD" for none), v1 `cpu.cfs_quota_us` (-1 for none) over `cpu.cfs_period_us`.
fn dir_cpu_quota(d: &Path) -> Option<f64> {
    let read = |name: &str| std::fs::read_to_string(d.join(name)).ok();
    let (quota, period) = match read("cpu.max") {
        Some(max) => {
            let mut f = max.split_whitespace();
            (
                f.next()?.parse::<f64>().ok()?,
                f.next()?.parse::<f64>().ok()?,
            )
        }
        None => (
            read("cpu.cfs_quota_us")?.trim().parse::<f64>().ok()?,
            read("cpu.cfs_period_us")?.trim().parse::<f64>().ok()?,
        ),
    };
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// How many more bytes this process's cgroup and its ancestors may use before their memory
/// limit, the smallest; `None` without a limit.
pub fn memory_headroom() -> Option<u64> {
    own_and_ancestors("memory")
        .iter()
        .filter_map(|d| dir_memory_headroom(d))
        .min()
}

/// What the cgroup folder `d` may still use: v2 `memory.max` ("max" for no limit) less
/// `memory.current`, v1 `memory.limit_in_bytes` (a huge number for no limit) less
/// `memory.usage_in_bytes`.
fn dir_memory_headroom(d: &Path) -> Option<u64> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(d.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let (limit, used) = if d.join("memory.max").exists() {
        (read("memory.max")?, read("memory.current")?)
    } else {
        (
            read("memory.limit_in_bytes")?,
            read("memory.usage_in_bytes")?,
        )
    };
    (limit < 1 << 60).then(|| limit.saturating_sub(used))
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A cgroup can be removed once its processes are gone; they are being reaped.
        for dir in &self.dirs {
            for _ in 0..200 {
                if std::fs::remove_dir(dir).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    #[test]
    fn cpu_quotas_of_both_versions() {
        let q = |files: &[(&str, &str)]| dir_cpu_quota(dir(files).path());
        assert_eq!(q(&[("cpu.max", "150000 100000\n")]), Some(1.5));
        assert_eq!(q(&[("cpu.max", "max 100000\n")]), None);
        assert_eq!(
            q(&[
                ("cpu.cfs_quota_us", "200000\n"),
                ("cpu.cfs_period_us", "100000\n")
            ]),
            Some(2.0)
        );
        assert_eq!(
            q(&[
                ("cpu.cfs_quota_us", "-1\n"),
                ("cpu.cfs_period_us", "100000\n")
            ]),
            None
        );
        assert_eq!(q(&[]), None);
    }

    #[test]
    fn memory_headroom_of_both_versions() {
        let h = |files: &[(&str, &str)]| dir_memory_headroom(dir(files).path());
        assert_eq!(
            h(&[("memory.max", "1000\n"), ("memory.current", "300\n")]),
            Some(700)
        );
        assert_eq!(
            h(&[("memory.max", "max\n"), ("memory.current", "300\n")]),
            None
        );
        assert_eq!(
            h(&[
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.usage_in_bytes", "5\n")
            ]),
            None
        );
        assert_eq!(
            h(&[
                ("memory.limit_in_bytes", "4096\n"),
                ("memory.usage_in_bytes", "5000\n")
            ]),
            Some(0)
        );
    }
}
