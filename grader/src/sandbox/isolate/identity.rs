//! The identities code runs as where the grader is root: a student identity of each
//! grading's own, one for builds, one for peers; and handing a folder over to one of them.

use std::path::Path;

use super::available;

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
