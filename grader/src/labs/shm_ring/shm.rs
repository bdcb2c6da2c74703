//! Ring names of a check, what /dev/shm holds, and the student's programs started on them.
//!
//! When the grader is root every check has a /dev/shm of its own (the jail mounts a private
//! tmpfs), so whatever is there was made by this check's processes. Elsewhere only the names
//! the check chose are looked at.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::check::{Ctx, Fail, poll_until};
use crate::labs::shell_quote;
use crate::sandbox::{Input, Proc, Spec};
use testkit::procfs;

/// A ring name for this check: `/shmring-<seed>-<tag>`.
pub(super) fn ring_name(ctx: &Ctx, tag: &str) -> String {
    format!("/shmring-{:x}-{tag}", ctx.seed & 0xffff_ffff)
}

/// The file of ring `name` under /dev/shm.
pub(super) fn shm_file(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm{name}"))
}

/// Whether the object `name` exists.
pub(super) fn exists(name: &str) -> bool {
    shm_file(name).exists()
}

/// Removes the object of a ring name when dropped: a check that fails half-way (a `?`, an
/// `ensure!`) leaves nothing in /dev/shm either. Removing a name that is gone is harmless.
pub(super) struct RemoveOnDrop(pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(shm_file(&self.0));
    }
}

/// Whether the ring `name` is finished: its object exists and its header starts with the
/// magic. The checks start a second program only then: one that opens a ring its creator is
/// still making is the start-up race the library's own test (`ring`) judges, and here it
/// would make a check's verdict depend on when the first program was scheduled.
pub(super) fn made(name: &str) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(shm_file(name))
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"SHMRING1"
}

/// Fails if any of `names` is still in /dev/shm (removing it), naming it and `when`.
pub(super) fn ensure_gone(names: &[&str], when: &str) -> Result<(), Fail> {
    let left: Vec<&str> = names.iter().copied().filter(|n| exists(n)).collect();
    if left.is_empty() {
        return Ok(());
    }
    for n in &left {
        let _ = std::fs::remove_file(shm_file(n));
    }
    Err(Fail(format!(
        "{when}, {} still in /dev/shm: once both programs have mapped the ring, remove its \
         name (shm_unlink); on an error (a peer that died, a write that failed) remove it too",
        left.iter()
            .map(|n| format!("/dev/shm{n}"))
            .collect::<Vec<_>>()
            .join(" and ")
            + if left.len() == 1 { " is" } else { " are" }
    )))
}

/// `ring-send NAME` (with `extra` arguments first), stdin a pipe the check writes.
pub(super) fn start_send(ctx: &mut Ctx, name: &str, extra: &[&str]) -> Result<Proc, Fail> {
    let spec = Spec {
        input: Input::Pipe,
        ..ctx
            .bin("ring-send")
            .args(extra.iter().copied())
            .arg_one(name)
    };
    ctx.spawn(&spec)
}

/// `ring-recv NAME` with its stdout sent to `out` (a FIFO or /dev/null) through bash's
/// `exec`, so the pid is ring-recv's own.
pub(super) fn start_recv(ctx: &mut Ctx, name: &str, out: &str) -> Result<Proc, Fail> {
    let bin = ctx
        .bins
        .get("ring-recv")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ring-recv".into());
    let script = format!(
        "exec {} {} > {}",
        shell_quote(&bin),
        shell_quote(name),
        shell_quote(out)
    );
    let mut spec = ctx.bash(&script);
    spec.rlimits = ctx.bin("ring-recv").rlimits;
    ctx.spawn(&spec)
}

/// Waits until process `pid` sleeps in the kernel (it got as far as waiting for input or
/// for its peer); whether it did within `limit`.
pub(super) fn wait_asleep(pid: i32, limit: Duration) -> bool {
    poll_until(Instant::now() + limit, || {
        procfs::Process::read(pid).is_some_and(|s| s.stat.state == 'S' && !s.wchan.is_empty())
    })
}

/// The kernel function `pid` sleeps in, or "" when it runs or is gone.
pub(super) fn wchan(pid: i32) -> String {
    procfs::Process::read(pid)
        .map(|s| s.wchan)
        .unwrap_or_default()
}

/// "sleeps in a futex wait (futex_wait_queue)" and the like, for messages.
pub(super) fn waiting_in(pid: i32) -> String {
    let w = wchan(pid);
    if w.starts_with("futex") {
        format!("sleeps in a futex wait ({w})")
    } else {
        format!(
            "{} ({})",
            testkit::hang::describe_wait(&w),
            if w.is_empty() { "running" } else { &w }
        )
    }
}

/// Adds one argument to a spec (the builder takes a list).
trait ArgOne {
    fn arg_one(self, a: &str) -> Spec;
}

impl ArgOne for Spec {
    fn arg_one(self, a: &str) -> Spec {
        self.args([a])
    }
}

/// The first line of `stderr`, quoted, or "nothing".
pub(super) fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.lines().next() {
        Some(l) => format!("{l:?}"),
        None => "nothing".into(),
    }
}
