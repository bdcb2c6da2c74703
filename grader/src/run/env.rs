//! Where and how a grading's programs run: the student's programs, a scratch folder per run,
//! the identity and the jail ([`RunEnv`]), what one confined run holds on to ([`Confined`]),
//! and `grader __jail` ([`jail_main`]), which runs a command confined exactly so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::sandbox::cgroup::Cgroup;
use crate::sandbox::isolate::Jail;
use crate::sandbox::{self, Rlimits, Spec};

/// Where and how tests run.
#[derive(Debug, Clone)]
pub struct RunEnv {
    /// The lab's binaries, exported as `CARGO_BIN_EXE_<name>` so assert_cmd finds them.
    pub bins: BTreeMap<String, PathBuf>,
    /// A folder under which each test gets a fresh scratch folder.
    pub scratch_root: PathBuf,
    /// Run every test and check in a jail of its own ([`crate::sandbox::isolate`]), where the kernel
    /// allows it.
    pub jail: bool,
    /// The unprivileged identity student code runs as (when the grader is root).
    pub student: Option<(u32, u32)>,
    /// The grader's fixtures folder (`grader/fixtures`: npm packages of peer programs), shown
    /// read-only to checks.
    pub fixtures: Option<PathBuf>,
}

/// What one confined run holds on to: its cgroup, to ask afterwards whether the kernel
/// stopped it at the memory cap.
#[derive(Debug, Default)]
pub struct Confined {
    cgroup: Option<Arc<Cgroup>>,
    memory: u64,
}

impl Confined {
    /// "used more than N MiB" when the run was stopped at its memory cap: the cgroup's
    /// count of kills, or, with RLIMIT_AS in its place, Rust's own "memory allocation of N
    /// bytes failed" on `stderr`.
    pub fn memory_verdict(&self, stderr: &[u8]) -> Option<String> {
        let cap = match self.cgroup.as_ref().filter(|c| c.limits_memory()) {
            Some(cg) => cg.hit_memory_limit()?,
            None => {
                let text = String::from_utf8_lossy(stderr);
                (text.contains("memory allocation of") && text.contains("failed"))
                    .then_some(self.memory)?
            }
        };
        Some(format!(
            "it used more than {} MiB of memory, the most a test or check may use, and the \
             kernel stopped it: look for a buffer or collection that grows without bound (a \
             loop that reads into a Vec it never clears, or allocates per message)",
            cap.max(self.memory) >> 20
        ))
    }
}

impl RunEnv {
    /// Confines `spec`: a jail showing only the system, `ro` and `rw` (see
    /// [`crate::sandbox::isolate`]), a cgroup of its own with a task limit and a cap of `memory`
    /// bytes (RLIMIT_AS without a memory cgroup), and the limits of untrusted code.
    pub fn confine(
        &self,
        spec: &mut Spec,
        ro: &[&Path],
        rw: &[&Path],
        memory: u64,
        timeout: Duration,
    ) -> Confined {
        let mut rlimits = Rlimits::untrusted(timeout);
        let cgroup = Cgroup::create(1024, memory).map(Arc::new);
        if !cgroup.as_ref().is_some_and(|c| c.limits_memory()) {
            rlimits.address_space = Some(memory);
        }
        spec.rlimits = rlimits;
        spec.cgroup = cgroup.clone();
        if self.jail {
            let mut jail = Jail::new();
            for p in ro {
                jail = jail.ro(p);
            }
            for p in rw {
                jail = jail.rw(p);
            }
            spec.isolation = Some(Arc::new(jail.build()));
            spec.pid_ns = true;
        }
        Confined { cgroup, memory }
    }

    pub(super) fn spec(
        &self,
        exe: &Path,
        scratch: &Path,
        timeout: Duration,
        memory: u64,
    ) -> (Spec, Confined) {
        let mut spec = Spec::new(exe.as_os_str(), scratch);
        for (name, path) in &self.bins {
            spec = spec.env(format!("CARGO_BIN_EXE_{name}"), path);
        }
        // Colours would reach the JSON and Gradescope reports as escape codes.
        spec = spec
            .env("NO_COLOR", "1")
            .env("CLICOLOR", "0")
            .env("TERM", "dumb");
        spec.cap = 64 << 10;
        spec.user = self.student;
        let mut ro: Vec<&Path> = exe.parent().into_iter().collect();
        ro.extend(self.bins.values().filter_map(|p| p.parent()));
        let confined = self.confine(&mut spec, &ro, &[scratch], memory, timeout);
        (spec, confined)
    }

    /// A fresh folder for the peers of check `label` (see [`crate::check::Ctx::peer_dir`]),
    /// owned by the peers' identity, mode 0755: the student's programs may read it, not
    /// write it.
    pub fn fresh_peer_dir(&self, label: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.fresh_scratch(&format!("{label}.peers"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        if let Some((uid, gid)) = crate::check::peer_identity() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        }
        Ok(dir)
    }

    /// A fresh scratch folder for `label`, owned by the student's identity.
    pub fn fresh_scratch(&self, label: &str) -> std::io::Result<PathBuf> {
        let safe: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let dir = self.scratch_root.join(safe);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        crate::sandbox::isolate::hand_over(&dir, self.student)?;
        Ok(dir)
    }
}

/// `grader __jail`: runs `command` confined as a test would be, passing its output and
/// status through; the scratch folder's path is the first line on stderr.
pub fn jail_main(
    ro: &[PathBuf],
    timeout_s: f64,
    command: &[std::ffi::OsString],
) -> std::io::Result<u8> {
    let work = tempfile::Builder::new().prefix("grader-jail-").tempdir()?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o711))?;
    }
    let env = RunEnv {
        bins: BTreeMap::new(),
        scratch_root: work.path().to_owned(),
        jail: true,
        student: crate::sandbox::isolate::student_identity(),
        fixtures: None,
    };
    let scratch = env.fresh_scratch("jail")?;
    crate::errln!("scratch {}", scratch.display());
    let Some((program, args)) = command.split_first() else {
        return Ok(2);
    };
    let timeout = Duration::from_secs_f64(timeout_s);
    let mut spec = Spec::new(program, &scratch).args(args);
    spec.user = env.student;
    let ro: Vec<&Path> = ro.iter().map(PathBuf::as_path).collect();
    let _confined = env.confine(&mut spec, &ro, &[&scratch], 1 << 30, timeout);
    let out = sandbox::run(&spec, timeout)?;
    use std::io::Write as _;
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stderr().write_all(&out.stderr)?;
    Ok(out.ending.bash_status().clamp(0, 255) as u8)
}
