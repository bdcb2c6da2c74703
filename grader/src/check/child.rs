//! The check's child process: `grader __check` runs one check in a jail of its own and hands
//! its verdict back through a file ([`child_main`]); the grader starts it under the item's
//! deadline and memory cap and reads that verdict, or says why there is none
//! ([`run_in_child`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, Ctx, Fail};
use crate::sandbox::{self, Ending, Spec};

/// A check's verdict, as the check process hands it to the grader.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether it passed.
    pub passed: bool,
    /// What the student reads (empty on a pass).
    pub message: String,
    /// Set when this machine cannot judge the item (a missing peer program, not root): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_gradable_here: Option<String>,
}

/// Entry point of `grader __check`: runs one check over `ctx` and writes its verdict to
/// `result`.
pub fn child_main(check: &Check, mut ctx: Ctx, result: &Path) -> std::io::Result<()> {
    sandbox::become_subreaper()?;
    // The verdict's file is opened while the check may still write there; then whatever the
    // check creates (folders, FIFOs, key files) belongs to the student's identity, as if
    // the student's program had made it, while the check keeps the privilege to signal,
    // trace and inspect.
    let tmp = result.with_extension("tmp");
    let mut verdict_file = std::fs::File::create(&tmp)?;
    if let Some((uid, gid)) = ctx.student {
        // SAFETY: plain system calls; this process has no other thread yet, and the threads
        // the check starts inherit the filesystem identity.
        unsafe {
            libc::setfsgid(gid);
            libc::setfsuid(uid);
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.run)(&mut ctx)));
    let leftovers = sandbox::kill_descendants();
    let verdict = match outcome {
        Ok(Ok(())) => Verdict {
            passed: true,
            message: ctx.notes.join("\n"),
            not_gradable_here: None,
        },
        Ok(Err(Fail(message))) => Verdict {
            passed: false,
            message,
            not_gradable_here: ctx.not_gradable_here.take(),
        },
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Verdict {
                passed: false,
                message: format!(
                    "the check itself failed (a grader bug; tell your course staff): {what}"
                ),
                not_gradable_here: None,
            }
        }
    };
    let _ = leftovers;
    use std::io::Write as _;
    verdict_file.write_all(&serde_json::to_vec(&verdict)?)?;
    drop(verdict_file);
    // SAFETY: back to the process's own identity to publish the verdict.
    unsafe {
        libc::setfsuid(0);
        libc::setfsgid(0);
    }
    std::fs::rename(&tmp, result)
}

/// Runs check `name` of `slug` in a child grader process with `timeout` and a memory cap.
///
/// The check process keeps the grader's privilege (it signals, traces and inspects the
/// student's processes, and may start one as another user), confined like a test: a jail
/// that shows it only the student's programs, its scratch folder and its results folder, and
/// a PID namespace of its own, so that a student's `kill(-1, SIGKILL)` ends nothing outside.
#[allow(clippy::too_many_arguments)]
pub fn run_in_child(
    env: &crate::run::RunEnv,
    slug: &str,
    name: &str,
    bins_dir: &Path,
    results_dir: &Path,
    seed: u64,
    timeout: Duration,
    memory: u64,
) -> Verdict {
    let result = results_dir.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&result);
    let scratch = match std::fs::create_dir_all(results_dir).and_then(|()| env.fresh_scratch(name))
    {
        Ok(s) => s,
        Err(e) => {
            return Verdict {
                passed: false,
                message: format!("the grader could not make a scratch folder: {e}"),
                ..Verdict::default()
            };
        }
    };
    let scratch = scratch.as_path();
    let peers = match env.fresh_peer_dir(name) {
        Ok(p) => p,
        Err(e) => {
            return Verdict {
                passed: false,
                message: String::new(),
                not_gradable_here: Some(format!(
                    "the grader could not make the peers' folder: {e}"
                )),
            };
        }
    };
    // This very binary, even if a rebuild has replaced the file since it started.
    let exe = PathBuf::from("/proc/self/exe");
    let mut spec = Spec::new(exe.into_os_string(), scratch).args([
        "__check".as_ref(),
        "--lab".as_ref(),
        slug.as_ref(),
        "--check".as_ref(),
        name.as_ref(),
        "--bins".as_ref(),
        bins_dir.as_os_str(),
        "--scratch".as_ref(),
        scratch.as_os_str(),
        "--seed".as_ref(),
        seed.to_string().as_ref(),
        "--result".as_ref(),
        result.as_os_str(),
    ] as [&std::ffi::OsStr; 13]);
    if let Some((uid, gid)) = env.student {
        spec = spec.args(["--student".to_owned(), format!("{uid}:{gid}")]);
    }
    spec = spec.args(["--peers".as_ref(), peers.as_os_str()]);
    let mut shown: Vec<&Path> = vec![bins_dir];
    if let Some(f) = &env.fixtures {
        spec = spec.args(["--fixtures".as_ref(), f.as_os_str()]);
        shown.push(f);
    }
    spec.cap = 64 << 10;
    let confined = env.confine(
        &mut spec,
        &shown,
        &[scratch, &peers, results_dir],
        memory,
        timeout,
    );
    let (out, left) = match crate::sandbox::leftovers::around(|| sandbox::run(&spec, timeout)) {
        Ok(o) => o,
        Err(e) => {
            return Verdict {
                passed: false,
                message: format!("the grader could not start the check: {e}"),
                ..Verdict::default()
            };
        }
    };
    let _ = std::fs::remove_dir_all(scratch);
    let _ = std::fs::remove_dir_all(&peers);
    if let Some(why) = confined.memory_verdict(&out.stderr) {
        return Verdict {
            passed: false,
            message: why,
            ..Verdict::default()
        };
    }
    if out.ending == Ending::TimedOut {
        return Verdict {
            passed: false,
            message: format!(
                "did not finish within {} s. What its processes were waiting for:\n{}",
                timeout.as_secs(),
                out.diagnosis
                    .as_deref()
                    .unwrap_or("(nothing left running)")
                    .trim_end()
            ),
            ..Verdict::default()
        };
    }
    let verdict = std::fs::read(&result)
        .ok()
        .and_then(|b| serde_json::from_slice::<Verdict>(&b).ok());
    match verdict {
        // What the scenario did not clean up itself is removed now and noted; whether that
        // fails the item is the scenario's call (the lab's checks judge their own leftovers).
        Some(mut v) if !left.is_empty() => {
            v.message = format!(
                "{}\nnote: {}",
                v.message,
                crate::sandbox::leftovers::describe(&left)
            )
            .trim_start()
            .to_owned();
            v
        }
        Some(v) => v,
        None => Verdict {
            passed: false,
            message: format!(
                "the check process {} without a verdict (a grader bug; tell your course staff): {}",
                out.ending.describe(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            ..Verdict::default()
        },
    }
}
