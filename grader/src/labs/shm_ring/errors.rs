//! Error paths provoked, not only described: a second receiver refused without touching the
//! first one's ring, a read of stdin that fails after the ring was created, and a create
//! that fails halfway (its `ftruncate` refused by a file-size limit). Each is one line and
//! exit 1, and leaves nothing in /dev/shm that was not there before.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::labs::shell_quote;

use super::shm::{exists, first_line, made, ring_name, shm_file, start_recv, wait_asleep};

/// A second `ring-recv NAME` while the first waits for a sender: exit 1 with a line, and the
/// first one's ring is still there, the same object.
pub(super) fn second_receiver(ctx: &mut Ctx) -> CheckResult {
    let name = ring_name(ctx, "tworecv");
    let mut first = start_recv(ctx, &name, "/dev/null")?;
    let result = (|| {
        if !poll_until(Instant::now() + Duration::from_secs(5), || made(&name)) {
            return Err(Fail(format!(
                "`ring-recv {name}` started alone did not create /dev/shm{name} within 5 s"
            )));
        }
        wait_asleep(first.pid, Duration::from_secs(5));
        let inode = std::fs::metadata(shm_file(&name)).map(|m| m.ino()).ok();
        let spec = ctx.bin("ring-recv").args([name.as_str()]);
        let second = ctx.run("a second ring-recv", &spec, Duration::from_secs(5))?;
        let err = second.stderr_str();
        if second.status() != 1 || !err.starts_with("ring-recv: ") || err.lines().count() != 1 {
            return Err(Fail(format!(
                "a second `ring-recv {name}` while the first still waits for a sender {} and \
                 said {:?} (expected exit 1 and one line `ring-recv: ...`: the ring already has \
                 a receiver)",
                second.ending.describe(),
                err.trim_end()
            )));
        }
        let same = std::fs::metadata(shm_file(&name)).map(|m| m.ino()).ok();
        if same.is_none() || same != inode {
            return Err(Fail(format!(
                "a second `ring-recv {name}` was refused (exit 1, {}), but /dev/shm{name} {} \
                 afterwards: the refused program removed the first one's ring. Remove a name \
                 only on the error paths of a ring this program created or is part of; a \
                 refused program is neither",
                first_line(&second.stderr),
                if same.is_none() {
                    "was gone"
                } else {
                    "was a new object"
                }
            )));
        }
        Ok(())
    })();
    first.kill();
    let _ = std::fs::remove_file(shm_file(&name));
    result
}

/// `ring-send NAME` creates the ring, then reading its stdin fails (stdin is a directory:
/// read says EISDIR); and `ring-recv NAME` whose `ftruncate` fails (RLIMIT_FSIZE of 4 KiB,
/// SIGXFSZ ignored). Each: one line, exit 1, and no /dev/shm/NAME afterwards.
pub(super) fn error_paths(ctx: &mut Ctx) -> CheckResult {
    let bin = |ctx: &Ctx, prog: &str| {
        ctx.bins
            .get(prog)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| prog.into())
    };
    // (program, name, script, rlimit on file size, the situation, what must be removed)
    let stdin_dir = ring_name(ctx, "eisdir");
    let halfway = ring_name(ctx, "efbig");
    let cases = [
        (
            "ring-send",
            stdin_dir.clone(),
            format!(
                "exec {} {} < .",
                shell_quote(&bin(ctx, "ring-send")),
                shell_quote(&stdin_dir)
            ),
            None,
            "whose stdin is a directory (it creates the ring, then reading stdin fails with \
             EISDIR)",
            "a program that created the ring removes it on every error path",
        ),
        (
            "ring-recv",
            halfway.clone(),
            format!(
                "trap '' XFSZ; exec {} {}",
                shell_quote(&bin(ctx, "ring-recv")),
                shell_quote(&halfway)
            ),
            Some(4096),
            "whose ftruncate fails (the grader limited its file size, RLIMIT_FSIZE, to 4 KiB: \
             ftruncate says EFBIG after shm_open made the object)",
            "Ring::create must remove the object again when a step after shm_open fails \
             (shm_unlink before returning the error)",
        ),
    ];
    for (prog, name, script, fsize, what, advice) in cases {
        let mut spec = ctx.bash(&script);
        spec.rlimits = ctx.bin(prog).rlimits;
        if fsize.is_some() {
            spec.rlimits.fsize = fsize;
        }
        let out = ctx.run(&format!("`{prog} {name}`"), &spec, Duration::from_secs(5));
        let left = exists(&name);
        let size = std::fs::metadata(shm_file(&name)).map(|m| m.len()).ok();
        let _ = std::fs::remove_file(shm_file(&name));
        let out = out?;
        let err = out.stderr_str();
        if out.status() != 1 || !err.starts_with(&format!("{prog}: ")) || err.lines().count() != 1 {
            return Err(Fail(format!(
                "`{prog} {name}` {what} {} and said {:?} (expected exit 1 and one line `{prog}: \
                 <what went wrong>` on stderr)",
                out.ending.describe(),
                err.trim_end()
            )));
        }
        if left {
            return Err(Fail(format!(
                "`{prog} {name}` {what} exited 1 ({}), but /dev/shm{name} ({} bytes) was still \
                 in /dev/shm afterwards: {advice}",
                first_line(&out.stderr),
                size.unwrap_or(0)
            )));
        }
    }
    Ok(())
}
