//! Peers: the real programs a check runs beside the student's (clients, servers, load
//! generators and baselines nobody in the course wrote), out of the submission's reach.
//!
//! Where the grader is root, a peer runs as an identity of its own ([`peer_identity`]):
//! the student's identity can neither signal nor trace it, the check's /proc hides it from
//! the student (`hidepid`), and its files live in the check's peers folder, which the student
//! may read but never write. While a check measures a baseline, [`Ctx::freeze_student`]
//! stops every process of the student's identity, so that none can take the CPU from it.
//!
//! "Not gradable here" belongs to a peer that is missing or fails before the student's first
//! program starts ([`Ctx::peer_works`] tries one first); a peer that fails once the
//! submission runs may have been its doing, and [`Ctx::not_gradable_here`] then makes the
//! item a failure that says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Ctx, Fail};
use crate::sandbox::Spec;

/// The identity peers run as where the grader is root: no user of the machine has it, and
/// no grading's student identity is it.
pub fn peer_identity() -> Option<(u32, u32)> {
    nix::unistd::geteuid().is_root().then_some((
        crate::sandbox::isolate::PEER_ID,
        crate::sandbox::isolate::PEER_ID,
    ))
}

/// Runs `f` on a thread whose filesystem identity is `who` (root's when `None`), so that the
/// files it creates belong to `who`; the check's own filesystem identity (the student's) is
/// untouched, since `setfsuid` is per thread.
pub fn with_fs_identity<T: Send>(
    who: Option<(u32, u32)>,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    if !nix::unistd::geteuid().is_root() {
        return f();
    }
    let (uid, gid) = who.unwrap_or((0, 0));
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: plain system calls on integers, changing only this thread's filesystem
            // identity (the raw calls: glibc's wrappers may change every thread's).
            unsafe {
                libc::syscall(libc::SYS_setfsgid, gid);
                libc::syscall(libc::SYS_setfsuid, uid);
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the grader's file thread panicked")))
    })
}

impl Ctx {
    /// The check's peers folder: the peers' working folder and the place for the files they
    /// read (scripts, configurations, a document root both servers serve). The student's
    /// programs may read it, not write it.
    pub fn peer_dir(&self) -> &Path {
        self.peers.as_deref().unwrap_or(&self.scratch)
    }

    /// A spec for the peer program `program`: the peers' identity, working in
    /// [`Ctx::peer_dir`], output captured up to 4 MiB.
    pub fn peer(&self, program: &Path) -> Spec {
        let mut spec = Spec::new(program.as_os_str(), self.peer_dir());
        spec.user = peer_identity();
        spec.cap = 4 << 20;
        spec
    }

    /// Writes `data` to `name` in the peers folder (or at `name`, a path under it), as the
    /// peers' identity, making missing folders; the file's path.
    pub fn peer_file(&mut self, name: &str, data: impl AsRef<[u8]>) -> Result<PathBuf, Fail> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.peer_dir().join(name);
        let data = data.as_ref();
        let top = self.peer_dir().to_owned();
        with_fs_identity(peer_identity(), || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
                // Whatever the grader's umask: every folder readable, nothing writable.
                for dir in parent
                    .ancestors()
                    .take_while(|d| d.starts_with(&top) && *d != top)
                {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
                }
            }
            std::fs::write(&path, data)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        })
        .map_err(|e| {
            self.grader_problem(format!(
                "the grader could not write {}: {e}",
                path.display()
            ))
        })?;
        Ok(path)
    }

    /// Makes `name` (a folder under the peers folder) as the peers' identity; its path.
    pub fn peer_folder(&mut self, name: &str) -> Result<PathBuf, Fail> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.peer_dir().join(name);
        with_fs_identity(peer_identity(), || {
            std::fs::create_dir_all(&path)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        })
        .map_err(|e| {
            self.grader_problem(format!("the grader could not make {}: {e}", path.display()))
        })?;
        Ok(path)
    }

    /// Runs `spec` (a peer, before the student's first program starts) and checks that it
    /// exits 0 within 20 s; otherwise the item is "not gradable here: `what` does not run on
    /// this machine" with what it said. For a peer that could start and then break (node
    /// that cannot load an npm package, a script a Python too old cannot parse).
    pub fn peer_works(&mut self, what: &str, spec: &Spec) -> Result<(), Fail> {
        let mut p = self.spawn(spec)?;
        let ending = p.wait_until(Instant::now() + Duration::from_secs(20));
        let said = |p: &crate::sandbox::Proc| {
            let (out, err) = (p.stdout().0, p.stderr().0);
            let text = format!(
                "{} {}",
                String::from_utf8_lossy(&out).trim(),
                String::from_utf8_lossy(&err).trim()
            );
            crate::run::clip(text.trim(), 600)
        };
        match ending {
            Some(crate::sandbox::Ending::Exited(0)) => Ok(()),
            Some(e) => Err(self.not_gradable_here(format!(
                "{what} does not run on this machine: it {}; it said: {}",
                e.describe(),
                said(&p)
            ))),
            None => {
                p.kill();
                Err(self.not_gradable_here(format!(
                    "{what} does not run on this machine: it did not finish within 20 s; it \
                     said: {}",
                    said(&p)
                )))
            }
        }
    }

    /// Stops (SIGSTOP) every process of the student's identity until the guard drops, which
    /// continues them: for measuring a baseline (nginx, redis-server, a pipe) on a machine
    /// the submission cannot load meanwhile. Nothing to stop where the grader is not root.
    pub fn freeze_student(&self) -> Frozen {
        let Some((uid, _)) = self.student else {
            return Frozen { uid: None };
        };
        // A process may fork while the others are being stopped: go round until a round
        // finds every one of them stopped.
        for _ in 0..100 {
            let procs = processes_of(uid);
            let mut all_stopped = true;
            for (pid, state) in procs {
                if state != 'T' && state != 't' {
                    all_stopped = false;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGSTOP,
                    );
                }
            }
            if all_stopped {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Frozen { uid: Some(uid) }
    }

    /// A failure of the grader's own making where nothing the student did can be the cause:
    /// "not gradable here", whenever it happens.
    /// Ends a speed item as "not gradable here" because the machine was too busy for its
    /// comparison to mean anything, as the grader's own baseline showed (measured while the
    /// student's processes were frozen, so never their doing). Unlike
    /// [`Ctx::not_gradable_here`], this holds after the student's programs have run.
    pub fn too_busy_to_measure(&mut self, why: String) -> Fail {
        self.grader_problem(why)
    }

    pub(super) fn grader_problem(&mut self, why: String) -> Fail {
        self.not_gradable_here = Some(why.clone());
        Fail(format!("not gradable here: {why}"))
    }
}

/// The guard of [`Ctx::freeze_student`].
#[must_use = "the student's processes run again when this guard drops"]
pub struct Frozen {
    uid: Option<u32>,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(uid) = self.uid {
            for (pid, _) in processes_of(uid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGCONT,
                );
            }
        }
    }
}

/// The live processes of real uid `uid` in this PID namespace, with their states.
fn processes_of(uid: u32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let owner = field("Uid:")
            .split_whitespace()
            .next()
            .and_then(|u| u.parse::<u32>().ok());
        let state = field("State:").chars().next().unwrap_or('?');
        if owner == Some(uid) && state != 'Z' && state != 'X' {
            out.push((pid, state));
        }
    }
    out
}
