//! SIGINT and SIGTERM, each sent to each program while it waits alone on the ring it
//! created: the name is removed, and the program ends of that signal (the default action
//! restored and the signal raised again): never with 0 as if the copy had been done, nor
//! with an exit status that only imitates a signal (128 + N).

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::sandbox::{Ending, Input, Proc};

use super::shm::{
    exists, first_line, made, ring_name, shm_file, start_recv, wait_asleep, waiting_in,
};

/// How long a program has to end after the signal: it only has to remove a name and exit.
const GRACE: Duration = Duration::from_secs(2);

/// Each of SIGINT and SIGTERM to `ring-recv NAME` waiting for a sender, and to `ring-send
/// NAME` waiting for room in a full ring nobody reads: each ends within 2 s, not with
/// status 0, and /dev/shm/NAME is gone.
pub(super) fn signals(ctx: &mut Ctx) -> CheckResult {
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        for prog in ["ring-recv", "ring-send"] {
            let tag = format!("sig{}{}", &prog[5..], sig as i32);
            let name = ring_name(ctx, &tag);
            let (mut p, state) = if prog == "ring-recv" {
                (
                    start_recv(ctx, &name, "/dev/null")?,
                    "waiting alone for a sender",
                )
            } else {
                // 1 MiB of input into a 256 KiB ring nobody reads: it fills the ring and
                // waits for room.
                let spec = crate::sandbox::Spec {
                    input: Input::Bytes(vec![b's'; 1 << 20]),
                    ..ctx.bin("ring-send").args([name.as_str()])
                };
                (
                    ctx.spawn(&spec)?,
                    "waiting for room in the full ring it created (no receiver)",
                )
            };
            let result = one(&mut p, prog, sig, &name, state);
            p.kill();
            let _ = std::fs::remove_file(shm_file(&name));
            result?;
        }
    }
    Ok(())
}

fn one(p: &mut Proc, prog: &str, sig: Signal, name: &str, state: &str) -> Result<(), Fail> {
    let cmd = format!("`{prog} {name}`");
    if !poll_until(Instant::now() + Duration::from_secs(5), || made(name)) {
        let said = first_line(&p.stderr().0);
        return Err(Fail(format!(
            "{cmd} started alone did not create /dev/shm{name} within 5 s (it said {said})"
        )));
    }
    // It got as far as its wait: its handlers, if any, are in place by then. A program that
    // never sleeps (it spins) is signalled after 1 s: by then it has long been spinning.
    wait_asleep(p.pid, Duration::from_secs(1));
    let sig_name = sig.as_str();
    p.signal(sig);
    let sent = Instant::now();
    let Some(ending) = p.wait_until(sent + GRACE) else {
        let doing = waiting_in(p.pid);
        return Err(Fail(format!(
            "{cmd}, {state}, got {sig_name} and did not end within {} s: it {doing}. On \
             SIGINT and SIGTERM remove the ring's name and end: a handler that only sets a \
             flag must also wake the wait it interrupts",
            GRACE.as_secs()
        )));
    };
    let left = exists(name);
    let said = first_line(&p.stderr().0);
    if left {
        return Err(Fail(format!(
            "{cmd}, {state}, got {sig_name}: it {} and /dev/shm{name} was still in /dev/shm \
             afterwards. The name must be removed on SIGINT and on SIGTERM alike: install a \
             handler for each that unlinks it (unlink(\"/dev/shm{name}\") is \
             async-signal-safe), then restores the default action and raises the signal again",
            ending.describe()
        )));
    }
    match ending {
        Ending::Signaled(s) if s == sig as i32 => Ok(()),
        Ending::Exited(c) if c != 0 => Err(Fail(format!(
            "{cmd}, {state}, got {sig_name}: it removed the name but exited with status {c} \
             instead of ending of {sig_name} (it said {said}). A status of 128 + N is what a \
             shell prints for a signal, not the signal itself: a parent's waitpid sees \
             WIFEXITED, not WIFSIGNALED. After the clean-up, restore the default action \
             (signal(sig, SIG_DFL)) and raise the signal again"
        ))),
        Ending::Exited(_) => Err(Fail(format!(
            "{cmd}, {state}, got {sig_name}: it removed the name but exited with status 0, \
             as if the copy had been done (it said {said}). A program stopped by a signal must \
             not report success: after the clean-up, restore the default action and raise the \
             signal again (the shell then sees it killed by {sig_name})"
        ))),
        other => Err(Fail(format!(
            "{cmd}, {state}, got {sig_name}: it removed the name but {} (expected: killed by \
             {sig_name} after its clean-up); it said {said}",
            other.describe()
        ))),
    }
}
