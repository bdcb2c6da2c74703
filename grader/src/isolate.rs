//! A fresh root for untrusted processes: private namespaces and a filesystem made only of what
//! the process needs.
//!
//! A build, test or check process (and everything it starts) gets its own IPC namespace
//! (System V objects and POSIX queues), network namespace (loopback only, up), PID namespace
//! (under [`crate::init`]) and mount namespace whose root is a new, read-only tmpfs holding:
//! the system's programs and libraries read-only (`/usr`, `/etc` and the `/bin`, `/lib`...
//! links), a minimal `/dev` (null, zero, full, random, urandom, tty, and private `/dev/shm`
//! and `/dev/mqueue`), a private `/tmp`, a `/proc`, and the paths the caller names
//! ([`Jail::ro`], [`Jail::rw`]) at their own absolute paths. Nothing else of the host exists
//! there: not the lab tree, the solutions, the hidden tests, the grader, the cargo home
//! (except for a build), other gradings' folders or the output folder.
//!
//! The plan is made before the fork (every path a C string), and [`Isolation::enter`] carries
//! it out between fork and exec with system calls only, following bubblewrap: a tmpfs on
//! `/tmp` as a base, `pivot_root` into it with the old root at `/oldroot`, the new root built
//! in `/newroot` from binds of `/oldroot/...`, then a second `pivot_root` into `/newroot`.
//!
//! Without the privilege (no root), the grader says so once and falls back to running in the
//! host's namespaces as its own user: see [`note`].

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

/// One step of building the new root, every path already a C string.
#[derive(Debug)]
enum Step {
    /// `mkdir` (in the new root).
    Dir { at: CString, mode: u32 },
    /// An empty file to bind a device node onto.
    File { at: CString },
    /// Bind `from` (under /oldroot) onto `at` (under /newroot), read-only unless `rw`.
    Bind {
        from: CString,
        at: CString,
        rw: bool,
    },
    /// A tmpfs with these mount options.
    Tmpfs { at: CString, opts: CString },
    /// A fresh mqueue filesystem (the queues of the new IPC namespace).
    Mqueue { at: CString },
    /// A proc filesystem (the exec of `/proc/self/exe` needs one; a PID namespace's init
    /// mounts its own over it).
    Proc { at: CString },
    /// A symbolic link, as the host has it (`/bin -> usr/bin`).
    Symlink { target: CString, at: CString },
}

/// A fresh root, planned: what [`Isolation::enter`] builds.
#[derive(Debug, Default)]
pub struct Isolation {
    steps: Vec<Step>,
    /// The caller's paths, for the report ("what a submission can see").
    visible: Vec<(PathBuf, bool)>,
}

/// Builds an [`Isolation`]: the system part is always there; the caller adds its paths.
#[derive(Debug, Default)]
pub struct Jail {
    paths: Vec<(PathBuf, bool)>,
}

/// What of the host every jail shows, read-only: programs, libraries and configuration, and
/// the cgroup tree, as containers show it, so that a program sees the CPU quota it runs
/// under (`std::thread::available_parallelism` reads it there).
const SYSTEM: &[&str] = &[
    "/usr",
    "/etc",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/sys/fs/cgroup",
];

/// Device nodes every jail has.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

impl Jail {
    /// An empty jail: only the system part.
    pub fn new() -> Jail {
        Jail::default()
    }

    /// Shows `path` (a folder or file of the host) read-only at the same path.
    pub fn ro(mut self, path: impl AsRef<Path>) -> Jail {
        self.paths.push((path.as_ref().to_owned(), false));
        self
    }

    /// Shows `path` read-write at the same path.
    pub fn rw(mut self, path: impl AsRef<Path>) -> Jail {
        self.paths.push((path.as_ref().to_owned(), true));
        self
    }

    /// The plan. Paths that do not exist are left out; the others are resolved (symlinks
    /// followed), and bound parents first.
    pub fn build(self) -> Isolation {
        let mut plan = Plan::default();
        plan.dir("/dev", 0o755);
        plan.tmpfs("/dev", "size=64k,mode=755");
        for dev in DEVICES {
            let host = format!("/dev/{dev}");
            if Path::new(&host).exists() {
                plan.push(Step::File {
                    at: plan.new(&host),
                });
                plan.push(Step::Bind {
                    from: plan.old(&host),
                    at: plan.new(&host),
                    rw: true,
                });
            }
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            plan.symlink(target, &format!("/dev/{name}"));
        }
        plan.dir("/dev/shm", 0o1777);
        plan.tmpfs("/dev/shm", "size=512m,mode=1777");
        plan.dir("/dev/mqueue", 0o1777);
        plan.push(Step::Mqueue {
            at: plan.new("/dev/mqueue"),
        });
        plan.dir("/proc", 0o555);
        plan.push(Step::Proc {
            at: plan.new("/proc"),
        });
        plan.dir("/tmp", 0o1777);
        plan.tmpfs("/tmp", "size=1g,mode=1777");
        for sys in SYSTEM {
            let path = Path::new(sys);
            match std::fs::read_link(path) {
                Ok(target) => plan.symlink(&target.to_string_lossy(), sys),
                Err(_) if path.is_dir() => plan.bind(path, false),
                Err(_) => {}
            }
        }
        let mut paths: Vec<(PathBuf, bool)> = self
            .paths
            .into_iter()
            .filter_map(|(p, rw)| p.canonicalize().ok().map(|p| (p, rw)))
            .collect();
        // Parents before children, so that a read-only folder inside a writable one stays
        // read-only.
        paths.sort_by_key(|(p, _)| p.components().count());
        paths.dedup();
        for (path, rw) in &paths {
            plan.bind(path, *rw);
        }
        Isolation {
            steps: plan.steps,
            visible: paths,
        }
    }
}

/// The steps being planned, and the folders already made.
#[derive(Default)]
struct Plan {
    steps: Vec<Step>,
    made: std::collections::BTreeSet<PathBuf>,
}

impl Plan {
    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// `path` inside the new root being built.
    #[allow(clippy::new_ret_no_self, clippy::wrong_self_convention)]
    fn new(&self, path: impl AsRef<Path>) -> CString {
        cstring(Path::new("/newroot").join(rel(path.as_ref())))
    }

    /// `path` of the host, as seen from the base after the first pivot.
    fn old(&self, path: impl AsRef<Path>) -> CString {
        cstring(Path::new("/oldroot").join(rel(path.as_ref())))
    }

    fn dir(&mut self, path: &str, mode: u32) {
        self.made.insert(PathBuf::from(path));
        self.push(Step::Dir {
            at: self.new(path),
            mode,
        });
    }

    fn tmpfs(&mut self, path: &str, opts: &str) {
        self.push(Step::Tmpfs {
            at: self.new(path),
            opts: CString::new(opts).unwrap_or_default(),
        });
    }

    fn symlink(&mut self, target: &str, at: &str) {
        self.push(Step::Symlink {
            target: CString::new(target).unwrap_or_default(),
            at: self.new(at),
        });
    }

    /// Binds `path` at the same path, making its missing parents first (folders of the new
    /// root's tmpfs, or of the private /tmp, never of the host: a parent that is itself
    /// bound already exists).
    fn bind(&mut self, path: &Path, rw: bool) {
        let mut parents: Vec<&Path> = path.ancestors().skip(1).collect();
        parents.reverse();
        for p in parents {
            if p != Path::new("/") && self.made.insert(p.to_owned()) {
                self.push(Step::Dir {
                    at: self.new(p),
                    mode: 0o755,
                });
            }
        }
        if path.is_dir() {
            if self.made.insert(path.to_owned()) {
                self.push(Step::Dir {
                    at: self.new(path),
                    mode: 0o755,
                });
            }
        } else {
            self.push(Step::File { at: self.new(path) });
        }
        self.push(Step::Bind {
            from: self.old(path),
            at: self.new(path),
            rw,
        });
    }
}

fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

fn cstring(path: impl AsRef<Path>) -> CString {
    CString::new(path.as_ref().as_os_str().as_bytes()).unwrap_or_default()
}

const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static WHY_NOT: Mutex<Option<String>> = Mutex::new(None);

impl Isolation {
    /// The caller's paths shown in the jail, and whether each is writable.
    pub fn visible(&self) -> &[(PathBuf, bool)] {
        &self.visible
    }

    /// Enters new namespaces and builds the new root; `cwd` is where to be afterwards.
    /// Runs in the child between fork and exec: system calls only, no allocation.
    ///
    /// # Safety
    /// Only to be called in a freshly forked child.
    /// With `pid_ns`, the process's children start in a new PID namespace (see
    /// [`crate::init`], the shim that runs there as PID 1).
    pub unsafe fn enter(&self, pid_ns: bool, cwd: &CString) -> std::io::Result<()> {
        let err = std::io::Error::last_os_error;
        let check = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(err()) };
        let none = std::ptr::null::<libc::c_char>();
        let nodata = std::ptr::null::<libc::c_void>();
        // SAFETY: system calls on prepared, NUL-terminated strings.
        unsafe {
            let pid = if pid_ns { libc::CLONE_NEWPID } else { 0 };
            check(libc::unshare(
                libc::CLONE_NEWIPC | libc::CLONE_NEWNS | libc::CLONE_NEWNET | pid,
            ))?;
            // Nothing mounted from here on may propagate back to the machine.
            check(libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                nodata,
            ))?;
            // The base: a tmpfs on /tmp, which becomes / with the host's root at /oldroot.
            check(libc::mount(
                c"tmpfs".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=64k,mode=700".as_ptr().cast(),
            ))?;
            check(libc::chdir(c"/tmp".as_ptr()))?;
            check(libc::mkdir(c"newroot".as_ptr(), 0o755))?;
            check(libc::mkdir(c"oldroot".as_ptr(), 0o755))?;
            check(libc::mount(
                c"tmpfs".as_ptr(),
                c"newroot".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=1m,mode=755".as_ptr().cast(),
            ))?;
            check(pivot_root(c".", c"oldroot"))?;
            check(libc::chdir(c"/".as_ptr()))?;
            for step in &self.steps {
                self.run(step)?;
            }
            check(libc::umount2(c"/oldroot".as_ptr(), libc::MNT_DETACH))?;
            check(libc::chdir(c"/newroot".as_ptr()))?;
            check(pivot_root(c".", c"."))?;
            check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
            // The root itself: nothing may be created in it.
            check(libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REMOUNT
                    | libc::MS_BIND
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV,
                nodata,
            ))?;
            // ENOTDIR, which nothing above returns: the caller then knows the folder to start
            // in is what is missing from the jail, and says so.
            if libc::chdir(cwd.as_ptr()) != 0 {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
            }
            loopback_up();
        }
        Ok(())
    }

    /// One step of the plan.
    unsafe fn run(&self, step: &Step) -> std::io::Result<()> {
        let err = std::io::Error::last_os_error;
        let check = |r: libc::c_int| if r == 0 { Ok(()) } else { Err(err()) };
        let none = std::ptr::null::<libc::c_char>();
        let nodata = std::ptr::null::<libc::c_void>();
        // SAFETY: system calls on prepared, NUL-terminated strings.
        unsafe {
            match step {
                Step::Dir { at, mode } => {
                    if libc::mkdir(at.as_ptr(), *mode) == 0 {
                        // mkdir applies the umask; the mode is what the plan says.
                        libc::chmod(at.as_ptr(), *mode);
                        return Ok(());
                    }
                    exists_already()
                }
                Step::File { at } => {
                    let fd = libc::open(
                        at.as_ptr(),
                        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd >= 0 {
                        libc::close(fd);
                        return Ok(());
                    }
                    exists_already()
                }
                Step::Bind { from, at, rw } => {
                    check(libc::mount(
                        from.as_ptr(),
                        at.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REC,
                        nodata,
                    ))?;
                    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID;
                    if !rw {
                        flags |= libc::MS_RDONLY;
                    }
                    check(libc::mount(none, at.as_ptr(), none, flags, nodata))
                }
                Step::Tmpfs { at, opts } => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    at.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    opts.as_ptr().cast(),
                )),
                Step::Mqueue { at } => check(libc::mount(
                    c"mqueue".as_ptr(),
                    at.as_ptr(),
                    c"mqueue".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    nodata,
                )),
                Step::Proc { at } => check(libc::mount(
                    c"proc".as_ptr(),
                    at.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    // Outside a PID namespace of its own, an unprivileged process sees only
                    // its own user's processes.
                    c"hidepid=2".as_ptr().cast(),
                )),
                Step::Symlink { target, at } => check(libc::symlink(target.as_ptr(), at.as_ptr())),
            }
        }
    }
}

/// After a failed mkdir or exclusive create: `Ok` if the thing exists already (a folder or
/// file of a bound host folder, left as it is), else the error.
fn exists_already() -> std::io::Result<()> {
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(e)
    }
}

unsafe fn pivot_root(new: &std::ffi::CStr, old: &std::ffi::CStr) -> libc::c_int {
    // SAFETY: two NUL-terminated paths.
    unsafe { libc::syscall(libc::SYS_pivot_root, new.as_ptr(), old.as_ptr()) as libc::c_int }
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
        let who = if nix::unistd::geteuid().is_root() {
            "the submission's code still ran as an unprivileged user of its own, but could \
             read whatever any user may read on this machine, and the build ran as root"
        } else {
            "the submission's code ran as the grader's own user, with that user's access"
        };
        let msg = format!(
            "namespaces are not available here ({e}): the build, tests and checks ran without \
             a private root and private IPC, mount, PID and network namespaces; {who}. \
             Leftover IPC objects were found by name and removed instead. Allow unshare and \
             mount (e.g. a container with CAP_SYS_ADMIN, or outside a container) to confine \
             submissions fully"
        );
        crate::errln!("grader: {msg}");
        *WHY_NOT.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }
}

/// Whether a spawn error is the kernel (or a container's seccomp profile, as Docker's
/// default one on Gradescope) refusing namespaces or mounts, rather than a missing program.
/// The fallback still runs the submission as the unprivileged identity where the grader is
/// root: a refused jail never means running student code as root.
pub fn is_refusal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EINVAL | libc::ENOSYS | libc::ENOSPC | libc::EACCES)
    ) && STATE.load(Ordering::Relaxed) != YES
}

/// Whether jails work on this machine: tried once with `true` and remembered.
pub fn available() -> bool {
    if STATE.load(Ordering::Relaxed) == UNKNOWN {
        let mut spec = crate::sandbox::Spec::new("true", Path::new("/"));
        spec.isolation = Some(std::sync::Arc::new(Jail::new().build()));
        if let Ok(mut p) = crate::sandbox::spawn(&spec) {
            p.wait_until(std::time::Instant::now() + std::time::Duration::from_secs(10));
        }
    }
    active()
}

/// The note for the report when isolation was refused.
pub fn note() -> Option<String> {
    WHY_NOT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The unprivileged identity a grading runs the student's code as, when the grader is root:
/// a uid and gid of its own, derived from the grader's pid and its PID namespace, so that
/// two gradings at once (`grade-all --jobs N`, or two graders, each maybe in a container or
/// PID namespace of its own where pids repeat) do not share one: they cannot signal, trace
/// or read each other's processes and files, and a fork bomb in one does not use up the
/// other's RLIMIT_NPROC, which the kernel counts per uid. No user of the machine has these
/// ids.
pub fn student_identity() -> Option<(u32, u32)> {
    nix::unistd::geteuid()
        .is_root()
        .then(|| student_identity_of(std::process::id()))
}

/// The identity [`student_identity`] gives a root grader that is process `pid` of this
/// process's PID namespace: for tests that look for what a grading left running.
pub fn student_identity_of(pid: u32) -> (u32, u32) {
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| pid_namespace_inode(&l.to_string_lossy()))
        .unwrap_or(0);
    let id = STUDENT_IDS + identity_offset(pid, ns);
    (id, id)
}

/// The inode of a `pid:[INODE]` link.
fn pid_namespace_inode(link: &str) -> Option<u64> {
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// How far above [`STUDENT_IDS`] the identity of process `pid` of PID namespace `ns` is:
/// distinct pids of one namespace give distinct offsets; the namespace shifts them all by
/// an amount spread over the range (Fibonacci hashing), so that two namespaces' graders
/// of the same pid differ.
fn identity_offset(pid: u32, ns: u64) -> u32 {
    let shift = (ns.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as u32;
    pid.wrapping_add(shift) % STUDENT_ID_RANGE
}

/// The identity builds run as (compiling runs no student code, but reads it): one for every
/// grading, distinct from every student identity, so that compiled programs in the shared
/// target folder are writable by builds only. Only in a jail: outside one, that identity
/// could not reach a toolchain installed in root's home.
pub fn build_identity() -> Option<(u32, u32)> {
    (nix::unistd::geteuid().is_root() && available()).then_some((BUILD_ID, BUILD_ID))
}

/// Student identities are this plus less than [`STUDENT_ID_RANGE`].
const STUDENT_IDS: u32 = 1_900_000_000;
/// 2^31: the highest identity stays below 2^32 - 1, which means "no uid".
const STUDENT_ID_RANGE: u32 = 1 << 31;
/// The builds' identity.
const BUILD_ID: u32 = STUDENT_IDS - 1;
/// The identity peer programs run as (see [`crate::check::peer_identity`]).
pub const PEER_ID: u32 = STUDENT_IDS - 2;

/// Makes `path` (a folder created by the grader) belong to `who`, mode 0700, so that a
/// program running as `who` can work in it and nobody else can look in.
pub fn hand_over(path: &Path, who: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some((uid, gid)) = who {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Like [`hand_over`], for a whole tree (the staged crate, the build's target folder).
/// Skips the walk when the top already belongs to `who`.
pub fn hand_over_tree(path: &Path, who: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some((uid, gid)) = who else {
        return Ok(());
    };
    if std::fs::metadata(path)?.uid() == uid {
        return Ok(());
    }
    fn walk(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
        if std::fs::symlink_metadata(p)?.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    walk(path, uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_differ_by_pid_and_by_pid_namespace() {
        assert_eq!(pid_namespace_inode("pid:[4026531836]"), Some(4_026_531_836));
        assert_eq!(pid_namespace_inode("mnt:[4026531836]"), None);
        let (a, b) = (4_026_531_836, 4_026_532_401);
        // Two graders that are both pid 2 (each the first process of its own namespace).
        assert_ne!(identity_offset(2, a), identity_offset(2, b));
        let ids: std::collections::BTreeSet<u32> =
            (1..5000).map(|pid| identity_offset(pid, a)).collect();
        assert_eq!(ids.len(), 4999, "pids of one namespace share an identity");
        for ns in [0, a, b, u64::MAX] {
            for pid in [1, 2, 4_194_303] {
                let id = u64::from(STUDENT_IDS) + u64::from(identity_offset(pid, ns));
                assert!(id < u64::from(u32::MAX), "{id} is not a uid");
                assert!(id > u64::from(BUILD_ID));
            }
        }
    }
}
