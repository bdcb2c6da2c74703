//! Private namespaces for untrusted processes, where the kernel allows them.
//!
//! A test or check process (and everything it starts) gets its own IPC namespace (System V
//! objects and POSIX queues: two graders never see each other's, and whatever a submission
//! leaves is destroyed with the namespace), its own mount namespace (private /tmp, /dev/mqueue
//! and /dev/shm;
//! the lab tree and the built programs read-only; solutions and hidden tests hidden under an
//! empty tmpfs) and its own network namespace (loopback only, up).
//!
//! Without the privilege (no root, no user namespaces) the grader says so once and falls back
//! to unique names per run plus the before/after clean-up of the checks.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

/// What to set up in a new process's namespaces.
#[derive(Debug, Default)]
pub struct Isolation {
    readonly: Vec<CString>,
    hide: Vec<CString>,
    /// Paths under /tmp that stay visible over the private /tmp: the path, and the folders
    /// to create in the new /tmp (the last is the mount point).
    keep: Vec<(CString, Vec<CString>)>,
}

const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static WHY_NOT: Mutex<Option<String>> = Mutex::new(None);

impl Isolation {
    /// Bind `readonly` paths read-only and mount an empty tmpfs over `hide` (paths that do
    /// not exist are left out). /tmp becomes a private tmpfs, so that nothing a submission
    /// writes there outlives it; the `keep` paths (the run's own folder, the lab tree) are
    /// bound back into it when they live under /tmp.
    pub fn new(readonly: &[PathBuf], hide: &[PathBuf], keep: &[PathBuf]) -> Isolation {
        let keep = &keep[..keep.len().min(4)];
        let cstr = |p: &std::path::Path| CString::new(p.as_os_str().as_bytes()).ok();
        let c = |paths: &[PathBuf]| {
            paths
                .iter()
                .filter(|p| p.exists())
                .filter_map(|p| cstr(p))
                .collect()
        };
        let mut kept = Vec::new();
        for path in keep {
            let Ok(path) = path.canonicalize() else {
                continue;
            };
            if !path.starts_with("/tmp/") {
                continue;
            }
            let Some(p) = cstr(&path) else { continue };
            let mut dirs: Vec<CString> = path
                .ancestors()
                .filter(|a| a.starts_with("/tmp/"))
                .filter_map(cstr)
                .collect();
            dirs.reverse();
            kept.push((p, dirs));
        }
        Isolation {
            readonly: c(readonly),
            hide: c(hide),
            keep: kept,
        }
    }

    /// Enters new namespaces and sets up the mounts. Runs in the child between fork and
    /// exec: system calls only, no allocation.
    ///
    /// # Safety
    /// Only to be called in a freshly forked child.
    /// With `pid_ns`, the process's children start in a new PID namespace (see
    /// [`crate::init`], the shim that runs there as PID 1).
    pub unsafe fn enter(&self, pid_ns: bool) -> std::io::Result<()> {
        let err = std::io::Error::last_os_error;
        // SAFETY: system calls on prepared, NUL-terminated strings.
        unsafe {
            let pid = if pid_ns { libc::CLONE_NEWPID } else { 0 };
            if libc::unshare(libc::CLONE_NEWIPC | libc::CLONE_NEWNS | libc::CLONE_NEWNET | pid) != 0
            {
                return Err(err());
            }
            let none = std::ptr::null::<libc::c_char>();
            // Nothing mounted from here on may propagate back to the machine.
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(err());
            }
            // POSIX queues of the new IPC namespace: a fresh mqueue filesystem on /dev/mqueue.
            let mq = c"/dev/mqueue";
            let mut st: libc::stat = std::mem::zeroed();
            if libc::stat(mq.as_ptr(), &mut st) != 0 {
                libc::mkdir(mq.as_ptr(), 0o755);
            }
            if libc::stat(mq.as_ptr(), &mut st) == 0 {
                libc::mount(
                    c"mqueue".as_ptr(),
                    mq.as_ptr(),
                    c"mqueue".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                );
            }
            // POSIX shared memory and named semaphores live in /dev/shm: a private one.
            libc::mount(
                c"tmpfs".as_ptr(),
                c"/dev/shm".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=512m,mode=1777".as_ptr().cast(),
            );
            // A private /tmp, with the run's own folders bound back in. The handles are opened
            // in the new mount namespace (a bind from another namespace is refused).
            let mut handles = [-1i32; 4];
            for (slot, (path, _)) in handles.iter_mut().zip(&self.keep) {
                *slot = libc::open(
                    path.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                );
            }
            if libc::mount(
                c"tmpfs".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=1g,mode=1777".as_ptr().cast(),
            ) != 0
            {
                return Err(err());
            }
            for (fd, (_, dirs)) in handles.iter().zip(&self.keep) {
                let Some(target) = dirs.last() else { continue };
                if *fd < 0 {
                    continue;
                }
                for d in dirs {
                    libc::mkdir(d.as_ptr(), 0o755);
                }
                let source = fd_path(*fd);
                if libc::mount(
                    source.as_ptr().cast(),
                    target.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(err());
                }
                libc::close(*fd);
            }
            for p in &self.readonly {
                if libc::mount(
                    p.as_ptr(),
                    p.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(err());
                }
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                if libc::mount(none, p.as_ptr(), none, flags, std::ptr::null()) != 0 {
                    return Err(err());
                }
            }
            for p in &self.hide {
                let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                if libc::mount(
                    c"tmpfs".as_ptr(),
                    p.as_ptr(),
                    c"tmpfs".as_ptr(),
                    flags,
                    c"size=4k,mode=000".as_ptr().cast(),
                ) != 0
                {
                    return Err(err());
                }
            }
            loopback_up();
        }
        Ok(())
    }
}

/// `/proc/self/fd/N` as a NUL-terminated buffer, built without allocating.
fn fd_path(fd: i32) -> [u8; 32] {
    let mut buf = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.max(0) as u32, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[prefix.len() + i] = digits[len - 1 - i];
    }
    buf
}

/// Brings `lo` up in a new network namespace (it starts down).
unsafe fn loopback_up() {
    // SAFETY: a socket, two ioctls on a zeroed ifreq, close.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        libc::close(fd);
    }
}

/// Whether isolation should be tried (not yet known to be refused).
pub fn worth_trying() -> bool {
    STATE.load(Ordering::Relaxed) != NO
}

/// Whether isolation has been used successfully in this process.
pub fn active() -> bool {
    STATE.load(Ordering::Relaxed) == YES
}

/// Records that isolation worked.
pub fn worked() {
    STATE.store(YES, Ordering::Relaxed);
}

/// Records that the kernel refused isolation, and why; said once in the report.
pub fn refused(e: &std::io::Error) {
    if STATE.swap(NO, Ordering::Relaxed) != NO {
        let msg = format!(
            "namespaces are not available here ({e}): tests and checks ran without private IPC, \
             mount and network namespaces; leftovers were found by name and removed instead"
        );
        eprintln!("grader: {msg}");
        *WHY_NOT.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }
}

/// Whether a spawn error is the kernel refusing namespaces (rather than a missing program).
pub fn is_refusal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EINVAL | libc::ENOSYS | libc::ENOSPC | libc::EACCES)
    ) && STATE.load(Ordering::Relaxed) != YES
}

/// The note for the report when isolation was refused.
pub fn note() -> Option<String> {
    WHY_NOT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A pids cgroup that bounds how many processes and threads one grading may run at once, so
/// that a fork bomb stops at the limit instead of exhausting the machine's pids.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    procs: CString,
}

impl Cgroup {
    /// Creates a cgroup limited to `max` tasks, where the machine lets us (root with a pids
    /// controller, v1 or v2); `None` elsewhere (RLIMIT_NPROC still applies to non-root users).
    pub fn create(max: u32) -> Option<Cgroup> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let v2_has_pids = std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
            .is_ok_and(|s| s.split_whitespace().any(|c| c == "pids"));
        let parents = [PathBuf::from("/sys/fs/cgroup/pids")]
            .into_iter()
            .chain(v2_has_pids.then(|| PathBuf::from("/sys/fs/cgroup")));
        for parent in parents {
            if !parent.join("cgroup.procs").exists() {
                continue;
            }
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let dir = parent.join(format!("ipc-labs-grader-{}-{n}", std::process::id()));
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if std::fs::write(dir.join("pids.max"), max.to_string()).is_err() {
                let _ = std::fs::remove_dir(&dir);
                continue;
            }
            let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()?;
            return Some(Cgroup { dir, procs });
        }
        None
    }

    /// Moves the calling process into the cgroup. Runs between fork and exec.
    ///
    /// # Safety
    /// Only to be called in a freshly forked child.
    pub unsafe fn join(&self) {
        // SAFETY: open, write and close on a prepared path; "0" means the caller.
        unsafe {
            let fd = libc::open(self.procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, c"0".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // A cgroup can be removed once its processes are gone; they are being reaped.
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fd_paths_are_formatted_without_allocation() {
        let b = super::fd_path(1234);
        assert_eq!(&b[..19], b"/proc/self/fd/1234\0");
        assert_eq!(&super::fd_path(0)[..16], b"/proc/self/fd/0\0");
    }
}
