//! The `permissions` check: modes 0600, and another user (nobody) refused, run from a
//! folder that user may traverse.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::{CheckResult, Fail};
use crate::ensure;
use crate::sandbox::Spec;

use super::NOBODY;
use super::kernel::objects_of;
use super::scene::Scene;
use super::text::{hex, quoted, s};

/// Segment and semaphore have mode 0600; another user cannot read or add.
pub(super) fn permissions(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("counter")?;
    let key = scene.key(&path);
    scene.create(&path)?;
    let (shm, sem) = objects_of(&path, key)?;
    ensure!(
        shm.perms & 0o777 == 0o600,
        "the counter's segment (key {}) has mode {:o} in /proc/sysvipc/shm; it must be 600: \
         only its owner may read or write it. Pass 0o600 in shmget's flags",
        hex(key),
        shm.perms & 0o777
    );
    ensure!(
        sem.perms & 0o777 == 0o600,
        "the counter's semaphore set (key {}) has mode {:o} in /proc/sysvipc/sem; it must be \
         600. Pass 0o600 in semget's flags",
        hex(key),
        sem.perms & 0o777
    );
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // Without root the grader cannot act as another user; the modes above say enough.
        return Ok(());
    }
    // Another user must reach the counter file and the binary: the scratch folder is
    // private, so both go into a folder that anyone may traverse. A hard link is the same
    // inode, so ftok gives the same key.
    let shared = Shared::new(&scene.ctx.scratch)?;
    let link = shared.dir.join("counter");
    std::fs::hard_link(&path, &link)?;
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o644))?;
    let bin = shared.dir.join("shmctr");
    let original = scene
        .ctx
        .bins
        .get("shmctr")
        .cloned()
        .ok_or_else(|| Fail("the grader has no shmctr binary".into()))?;
    std::fs::copy(&original, &bin)?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    let as_nobody = |program: &Path, args: &[&str]| {
        let mut spec = Spec::new(program.as_os_str(), &shared.dir).args(args);
        spec.rlimits = crate::sandbox::Rlimits::untrusted(Duration::from_secs(30));
        spec.user = Some(NOBODY);
        spec
    };
    let probe = as_nobody(Path::new("/bin/sh"), &["-c", "test -e \"$0\"", s(&link)]);
    let reach = scene.run_spec(&probe)?;
    ensure!(
        reach.status() == 0,
        "the grader could not make the counter file reachable by uid {} ({})",
        NOBODY.0,
        reach.stderr_str().trim()
    );
    let before = scene.get(&path)?;
    for args in [&["get", s(&link)][..], &["add", s(&link), "1"][..]] {
        let spec = as_nobody(&bin, args);
        let out = scene.run_spec(&spec)?;
        let err = out.stderr_str();
        ensure!(
            out.status() != 0,
            "`shmctr {}` run as another user (uid {}) succeeded (printed {}); the counter's \
             segment must have mode 0600 so that only its owner can attach it",
            args.join(" "),
            NOBODY.0,
            quoted(&out.stdout_str())
        );
        ensure!(
            out.status() == 1
                && err.starts_with("shmctr: ")
                && err.to_lowercase().contains("permission denied"),
            "`shmctr {}` run as another user (uid {}) {} with stderr {}; expected exit status \
             1 and one line `shmctr: ...` that says why, with the OS error (\"Permission \
             denied\", EACCES from shmat)",
            args.join(" "),
            NOBODY.0,
            out.ending.describe(),
            quoted(&err)
        );
    }
    let after = scene.get(&path)?;
    ensure!(
        after == before,
        "the counter changed from {before} to {after} although another user's `shmctr add` \
         was refused"
    );
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// A folder inside the scratch folder that everyone may traverse (mode 0711, and the
/// scratch folder, which belongs to the student's identity, opened to 0711 as well), removed
/// on drop. The folders above the scratch folder are the jail's own, open to everyone.
struct Shared {
    dir: PathBuf,
}

impl Shared {
    fn new(scratch: &Path) -> Result<Shared, Fail> {
        std::fs::set_permissions(scratch, std::fs::Permissions::from_mode(0o711))?;
        let dir = scratch.join("sysv-shm-other");
        std::fs::create_dir(&dir)?;
        let shared = Shared { dir };
        std::fs::set_permissions(&shared.dir, std::fs::Permissions::from_mode(0o711))?;
        Ok(shared)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
