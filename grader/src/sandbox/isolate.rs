//! A fresh root for untrusted processes: private namespaces and a filesystem made only of what
//! the process needs.
//!
//! A build, test or check process (and everything it starts) gets its own IPC namespace
//! (System V objects and POSIX queues), network namespace (loopback only, up), PID namespace
//! (under [`crate::sandbox::init`]) and mount namespace whose root is a new, read-only tmpfs holding:
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

mod identity;
mod probe;
pub use identity::{
    PEER_ID, build_identity, hand_over, hand_over_tree, student_identity, student_identity_of,
};
pub use probe::{active, available, is_refusal, note, refused, worked, worth_trying};

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
    /// [`crate::sandbox::init`], the shim that runs there as PID 1).
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
