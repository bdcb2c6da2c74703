//! Ctrl-C, SIGTERM and SIGHUP: a grading that is told to stop leaves nothing behind.
//!
//! [`install`] blocks the three signals in the calling thread before any other starts (every
//! thread inherits the mask; the sandbox clears it for the programs it starts), and one
//! thread waits for them with `sigwait`. When one arrives it is recorded ([`signal`]) and
//! the thread ends every process under the grader at once, over and over until the grader
//! says it is done ([`done`]): the jails, everything in them, a build in progress. The
//! pipeline sees its runs end, asks [`check`] before starting anything new, and unwinds as
//! it does after any failure, so that the scratch folder goes and compiled hidden tests leave
//! the shared target folder. The report then says "interrupted", and the exit status is
//! 128 + the signal's number, as a shell reports it.
//!
//! `grade-all` ([`Mode::Batch`]) first asks its child graders to stop (SIGTERM), so that each
//! cleans up as above, and kills what is left only after [`BATCH_GRACE`].

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::error::{Error, Result};

/// The signal that arrived, 0 while none has.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Set when the grader has unwound: the clean-up thread may stop killing.
static DONE: AtomicBool = AtomicBool::new(false);

/// How long `grade-all` gives its child graders to clean up after SIGTERM.
pub const BATCH_GRACE: Duration = Duration::from_secs(15);

/// Who the grader is: one grading, or a batch of child graders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `grader grade`: everything under the grader is killed at once.
    Grade,
    /// `grader grade-all`: the child graders are told to stop first.
    Batch,
}

fn set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        s.add(sig);
    }
    s
}

/// Takes over SIGINT, SIGTERM and SIGHUP for the rest of the process. Call from the main
/// thread before any other thread starts.
pub fn install(mode: Mode) {
    let signals = set();
    if signals.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let Ok(sig) = signals.wait() else { return };
        SIGNAL.store(sig as i32, Ordering::SeqCst);
        crate::errln!(
            "grader: {} received: stopping every process of the grading",
            sig.as_str()
        );
        if mode == Mode::Batch {
            // Every child grader, including one a worker was starting as the signal came.
            let me = std::process::id() as i32;
            let mut told = std::collections::BTreeSet::new();
            let until = Instant::now() + BATCH_GRACE;
            while !DONE.load(Ordering::SeqCst) && Instant::now() < until {
                let children: Vec<_> = testkit::procfs::descendants(me)
                    .into_iter()
                    .filter(|s| s.ppid == me && s.state != 'Z')
                    .collect();
                if children.is_empty() {
                    break;
                }
                for s in children {
                    if told.insert(s.pid) {
                        let pid = nix::unistd::Pid::from_raw(s.pid);
                        let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A thread of the pipeline may be starting a process right now: keep sweeping until
        // the pipeline has unwound.
        while !DONE.load(Ordering::SeqCst) {
            crate::sandbox::kill_descendants();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// The signal that interrupted the grader, if one has.
pub fn signal() -> Option<Signal> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// `Err(Error::Interrupted)` once a signal has arrived: nothing new may start.
pub fn check() -> Result<()> {
    match signal() {
        Some(sig) => Err(Error::Interrupted(sig.as_str().to_owned())),
        None => Ok(()),
    }
}

/// The grader has unwound: stops the clean-up thread, after one last sweep of whatever a
/// thread started as the signal arrived. Returns the exit status the signal calls for.
pub fn done() -> Option<u8> {
    let sig = signal()?;
    crate::sandbox::kill_descendants();
    DONE.store(true, Ordering::SeqCst);
    Some(128 + sig as u8)
}
