//! Helpers shared by the grader's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The project's root (with labs/ and solutions/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A job for [`run_pairwise`]: its name and what it checks.
pub type Job = (String, Box<dyn FnOnce() -> Result<(), String> + Send>);

/// Runs `jobs` two at a time (the machine has two cores), each worker taking the next job as
/// soon as its last one ends, and fails with every failure.
pub fn run_pairwise(jobs: Vec<Job>) {
    let queue = std::sync::Mutex::new(jobs.into_iter());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((name, job)) = next else { break };
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                        .unwrap_or_else(|_| Err("panicked".into()));
                    if let Err(e) = result {
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("{name}: {e}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// How a grader is given one CPU, as autograder containers often are.
#[derive(Debug, Clone, Copy)]
pub enum OneCpu {
    /// Its affinity: CPU `n` only (`taskset -c n`).
    Affinity(usize),
    /// A CFS quota of one CPU in a cgroup of its own, every CPU still visible
    /// (`docker --cpus 1`).
    Quota,
}

/// A cgroup with a CPU quota of one CPU (v2 `cpu.max`, or v1's cpu controller), removed on
/// drop; `None` where this machine cannot make one (not root, no cpu controller).
pub struct QuotaGroup {
    dir: PathBuf,
}

impl QuotaGroup {
    pub fn new() -> Option<QuotaGroup> {
        let root = Path::new("/sys/fs/cgroup");
        let name = format!("grader-test-onecpu-{}", std::process::id());
        let dir = if root.join("cgroup.subtree_control").exists() {
            // v2: the controller must be enabled for the root's children.
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::write(dir.join("cpu.max"), "100000 100000").ok()?;
            dir
        } else {
            let dir = root.join("cpu").join(name);
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::write(dir.join("cpu.cfs_period_us"), "100000").ok()?;
            std::fs::write(dir.join("cpu.cfs_quota_us"), "100000").ok()?;
            dir
        };
        Some(QuotaGroup { dir })
    }

    /// Where a process joins the group (write its pid).
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for QuotaGroup {
    fn drop(&mut self) {
        // Empty once every grader in it has exited and been reaped.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A command running the grader `exe` with one CPU, as `how` says (`group`: the quota
/// group, for [`OneCpu::Quota`]).
pub fn one_cpu_grader(
    exe: &Path,
    how: OneCpu,
    group: Option<&QuotaGroup>,
) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(exe);
    match how {
        OneCpu::Affinity(n) => {
            // SAFETY: sched_setaffinity on a zeroed set, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(n, &mut set);
                    if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        OneCpu::Quota => {
            let procs = std::ffi::CString::new(
                group
                    .expect("a quota group")
                    .procs()
                    .as_os_str()
                    .as_encoded_bytes(),
            )
            .unwrap();
            // SAFETY: open, write and close of a prepared path, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 || libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                    Ok(())
                });
            }
        }
    }
    cmd
}
