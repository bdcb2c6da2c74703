//! The toolchain a build uses (cargo's path, the cargo and rustup homes) and the cargo
//! command it runs: what cargo needs of the grader's environment and nothing else, jailed as
//! the builds' identity where the grader is root.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sandbox::Spec;
use crate::sandbox::isolate::Jail;

/// The cargo to use: the one running us (`$CARGO`) or the one on PATH.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Where the toolchain lives: cargo's absolute path, the cargo home and the rustup home.
#[derive(Debug, Clone)]
pub(super) struct Toolchain {
    cargo: PathBuf,
    cargo_home: PathBuf,
    rustup_home: Option<PathBuf>,
}

impl Toolchain {
    pub(super) fn find() -> Toolchain {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let cargo = PathBuf::from(cargo());
        let cargo = if cargo.components().count() > 1 {
            cargo
        } else {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|d| d.join(&cargo))
                .find(|c| c.is_file())
                .unwrap_or(cargo)
        };
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cargo"));
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .or_else(|| Some(home.join(".rustup")))
            .filter(|p| p.is_dir());
        Toolchain {
            cargo,
            cargo_home,
            rustup_home,
        }
    }

    /// What cargo needs of the environment, and nothing else of the grader's (no secret of
    /// the grading platform reaches `env!` in a submission).
    fn env(&self) -> Vec<(OsString, OsString)> {
        let mut path = OsString::new();
        if let Some(dir) = self.cargo.parent() {
            path.push(dir);
            path.push(":");
        }
        path.push(self.cargo_home.join("bin"));
        path.push(":/usr/local/bin:/usr/bin:/bin");
        let mut env: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), "/tmp".into()),
            ("CARGO_HOME".into(), self.cargo_home.clone().into()),
            ("CARGO_TERM_COLOR".into(), "never".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        if let Some(r) = &self.rustup_home {
            env.push(("RUSTUP_HOME".into(), r.clone().into()));
        }
        for key in [
            "RUSTUP_TOOLCHAIN",
            "RUSTC",
            "CARGO_BUILD_JOBS",
            "CARGO_NET_OFFLINE",
        ] {
            if let Some(v) = std::env::var_os(key) {
                env.push((key.into(), v));
            }
        }
        env
    }
}

/// A cargo command. With `jail`, it runs as the builds' unprivileged identity in a jail that
/// shows it the toolchain (read-only), the staged crate and the target folder, and nothing
/// else: not the lab tree, the solutions, the hidden tests of other labs, the grader, or the
/// host's files. `include_str!("/any/host/file")` in a submission finds nothing.
pub(super) fn cargo_spec(
    tc: &Toolchain,
    args: &[&str],
    cwd: &Path,
    jail: Option<(&Path, (u32, u32))>,
) -> Spec {
    let mut spec = Spec::new(tc.cargo.as_os_str(), cwd).args(args);
    spec.env = tc.env();
    spec.cap = 8 << 20;
    if let Some((target, who)) = jail {
        let mut j = Jail::new().ro(&tc.cargo_home).rw(cwd).rw(target);
        if let Some(r) = &tc.rustup_home {
            j = j.ro(r);
        }
        if let Some(dir) = tc.cargo.parent() {
            j = j.ro(dir);
        }
        spec.isolation = Some(Arc::new(j.build()));
        spec.pid_ns = true;
        spec.user = Some(who);
    }
    spec
}
