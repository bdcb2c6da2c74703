//! The scene of one check: its counter files, its processes, the `shmctr` runs, and the
//! clean-up that removes what the check left behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::check::{CheckResult, Ctx, Fail, Output};
use crate::ensure;
use crate::sandbox::{self, Proc, Spec};

use super::SHORT;
use super::kernel::{ftok, sem_table, shm_table};
use super::text::{hex, lock_state, quoted, s, shown};

/// A check's state: the counter files it made (and their keys), the pids it started.
pub(super) struct Scene<'a> {
    pub(super) ctx: &'a mut Ctx,
    keys: Vec<(PathBuf, i32)>,
    pids: BTreeSet<i32>,
    /// The pid of the last process [`Scene::run_spec`] ran.
    pub(super) last_pid: i32,
    done: bool,
}

/// Runs `check` on a fresh [`Scene`], then cleans up; a failure names what was left behind.
pub(super) fn guarded(ctx: &mut Ctx, check: fn(&mut Scene) -> CheckResult) -> CheckResult {
    let mut scene = Scene {
        ctx,
        keys: Vec::new(),
        pids: BTreeSet::new(),
        last_pid: 0,
        done: false,
    };
    let result = check(&mut scene);
    let left = scene.clean_up();
    match result {
        Err(Fail(message)) if !left.is_empty() => Err(Fail(format!(
            "{message}\nLeft behind: {}; removed by the grader",
            left.join(", ")
        ))),
        other => other,
    }
}

impl Scene<'_> {
    /// Makes the (empty) file `name` in the scratch folder and returns its absolute path;
    /// its key `ftok(path, 'c')` is remembered for the clean-up.
    pub(super) fn counter_file(&mut self, name: &str) -> Result<PathBuf, Fail> {
        let path = self.ctx.scratch.join(name);
        std::fs::write(&path, b"")?;
        let key = ftok(&path).ok_or_else(|| Fail(format!("ftok({}) failed", path.display())))?;
        self.keys.push((path.clone(), key));
        Ok(path)
    }

    /// The key of a counter file made by [`Scene::counter_file`].
    pub(super) fn key(&self, path: &Path) -> i32 {
        self.keys
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, k)| *k)
            .expect("a counter file of this check")
    }

    /// A spec for `shmctr ARGS...`.
    pub(super) fn shmctr<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Spec {
        self.ctx.bin("shmctr").args(args)
    }

    pub(super) fn spawn(&mut self, spec: &Spec) -> Result<Proc, Fail> {
        let p = self.ctx.spawn(spec)?;
        self.pids.insert(p.pid);
        Ok(p)
    }

    /// Runs `shmctr ARGS...` to completion within [`SHORT`].
    pub(super) fn run(&mut self, args: &[&str]) -> Result<Output, Fail> {
        let spec = self.shmctr(args);
        self.run_spec(&spec)
    }

    pub(super) fn run_spec(&mut self, spec: &Spec) -> Result<Output, Fail> {
        let mut p = self.spawn(spec)?;
        self.last_pid = p.pid;
        let what = format!("`{}`", shown(spec));
        self.ctx.finish(&what, &mut p, SHORT).map_err(|Fail(m)| {
            Fail(format!(
                "{m}\n(A process that waits in semop forever waits for a lock that is never \
                 released.)"
            ))
        })
    }

    /// Runs `shmctr ARGS...` and requires exit status 0.
    pub(super) fn run_ok(&mut self, args: &[&str]) -> Result<Output, Fail> {
        let out = self.run(args)?;
        ensure!(
            out.status() == 0,
            "`shmctr {}` {} (expected exit status 0); its stderr: {}",
            args.join(" "),
            out.ending.describe(),
            quoted(&out.stderr_str())
        );
        Ok(out)
    }

    /// `shmctr create PATH`, required to succeed.
    pub(super) fn create(&mut self, path: &Path) -> Result<Output, Fail> {
        self.run_ok(&["create", s(path)])
    }

    /// `shmctr get PATH` as a number.
    pub(super) fn get(&mut self, path: &Path) -> Result<u64, Fail> {
        let out = self.run_ok(&["get", s(path)])?;
        let text = out.stdout_str();
        text.trim().parse().map_err(|_| {
            Fail(format!(
                "`shmctr get {}` printed {} instead of one number",
                path.display(),
                quoted(&text)
            ))
        })
    }

    /// Kills every process of the check, then removes every System V object it can
    /// attribute to the check; returns a description of each.
    fn clean_up(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        // Nothing may re-create an object after it is removed.
        sandbox::kill_descendants();
        let keys: BTreeSet<i32> = self.keys.iter().map(|(_, k)| *k).collect();
        let mut left = Vec::new();
        for seg in shm_table() {
            if keys.contains(&seg.key) || self.pids.contains(&seg.cpid) {
                // SAFETY: IPC_RMID ignores the buffer.
                unsafe { libc::shmctl(seg.id, libc::IPC_RMID, std::ptr::null_mut()) };
                left.push(format!(
                    "segment key {} (shmid {}, {} bytes, created by pid {})",
                    hex(seg.key),
                    seg.id,
                    seg.size,
                    seg.cpid
                ));
            }
        }
        for sem in sem_table() {
            let by_us = (0..sem.nsems).any(|i| {
                // SAFETY: GETPID takes no fourth argument.
                let pid = unsafe { libc::semctl(sem.id, i, libc::GETPID) };
                self.pids.contains(&pid)
            });
            if keys.contains(&sem.key) || by_us {
                // SAFETY: IPC_RMID takes no fourth argument.
                unsafe { libc::semctl(sem.id, 0, libc::IPC_RMID) };
                left.push(format!(
                    "semaphore set key {} (semid {})",
                    hex(sem.key),
                    sem.id
                ));
            }
        }
        left
    }
}

impl Drop for Scene<'_> {
    fn drop(&mut self) {
        // A panic in a check: still leave nothing behind.
        self.clean_up();
    }
}

/// Waits for every adder to exit 0 within `deadline`.
pub(super) fn finish_adders(
    scene: &mut Scene,
    adders: &mut [(Proc, String)],
    key: i32,
    deadline: Instant,
    hint: &str,
) -> CheckResult {
    for (p, what) in adders.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        let out = scene
            .ctx
            .finish(what, p, left)
            .map_err(|Fail(m)| Fail(format!("{m}\n{hint} {}", lock_state(key))))?;
        ensure!(
            out.status() == 0,
            "{what} {} (expected exit status 0); its stderr: {}",
            out.ending.describe(),
            quoted(&out.stderr_str())
        );
    }
    Ok(())
}
