//! Stopping a process right after it opens a given file, with ptrace.
//!
//! The grader attaches to every thread (and follows new threads and forks), runs them from
//! system call to system call, and at each stop looks whether the stopped task now has the
//! file open. That stop is right after the `open` returned and before anything else ran.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

const OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK;

fn ptrace(req: libc::c_uint, tid: i32, data: usize) -> libc::c_long {
    // SAFETY: requests that take no pointer, or (GETEVENTMSG) a pointer to a c_ulong.
    unsafe { libc::ptrace(req, tid, std::ptr::null_mut::<libc::c_void>(), data) }
}

/// A traced process: the tasks attached.
pub struct Tracer {
    tids: Vec<i32>,
}

impl Tracer {
    /// Attaches to every thread of `pid` and lets them run to their next system call.
    pub fn seize(pid: i32) -> Result<Tracer, String> {
        let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|e| e.to_string())?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        let mut tracer = Tracer { tids: Vec::new() };
        for &tid in &tids {
            if ptrace(libc::PTRACE_SEIZE, tid, OPTIONS as usize) != 0 {
                return Err(format!("ptrace: {}", std::io::Error::last_os_error()));
            }
            tracer.tids.push(tid);
        }
        for &tid in &tids {
            ptrace(libc::PTRACE_INTERRUPT, tid, 0);
            let mut status = 0;
            // SAFETY: waiting for a traced task.
            unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
            ptrace(libc::PTRACE_SYSCALL, tid, 0);
        }
        Ok(tracer)
    }

    /// Runs the tracee until one of its tasks stops with `target` open. Returns whether
    /// that happened within `limit`; that task is then left stopped.
    pub fn until_open(&mut self, target: &Path, limit: Duration) -> bool {
        let Ok(want) = std::fs::metadata(target).map(|m| (m.dev(), m.ino())) else {
            return false;
        };
        let has_open = |tid: i32| {
            std::fs::read_dir(format!("/proc/{tid}/fd")).is_ok_and(|rd| {
                rd.flatten()
                    .any(|e| std::fs::metadata(e.path()).is_ok_and(|m| (m.dev(), m.ino()) == want))
            })
        };
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let mut any = false;
            for i in 0..self.tids.len() {
                let tid = self.tids[i];
                let mut st = 0;
                // SAFETY: polling a traced task's state.
                let r = unsafe { libc::waitpid(tid, &mut st, libc::__WALL | libc::WNOHANG) };
                if r != tid {
                    continue;
                }
                any = true;
                if !libc::WIFSTOPPED(st) {
                    continue; // it ended
                }
                let sig = libc::WSTOPSIG(st);
                let event = st >> 16;
                let mut inject = 0;
                if sig == libc::SIGTRAP | 0x80 {
                    if has_open(tid) {
                        return true;
                    }
                } else if matches!(
                    event,
                    libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK
                ) {
                    let mut new: libc::c_ulong = 0;
                    ptrace(
                        libc::PTRACE_GETEVENTMSG,
                        tid,
                        &mut new as *mut libc::c_ulong as usize,
                    );
                    self.tids.push(new as i32);
                } else if event == 0 {
                    inject = sig as usize; // a signal for the tracee: deliver it
                }
                ptrace(libc::PTRACE_SYSCALL, tid, inject);
            }
            if !any {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        false
    }

    /// Lets every task go on, untraced.
    pub fn detach(self) {
        for &tid in &self.tids {
            if ptrace(libc::PTRACE_DETACH, tid, 0) == 0 {
                continue;
            }
            // Running: stop it first, then detach.
            if ptrace(libc::PTRACE_INTERRUPT, tid, 0) == 0 {
                let mut st = 0;
                // SAFETY: waiting for a traced task.
                unsafe { libc::waitpid(tid, &mut st, libc::__WALL) };
                let sig = if libc::WIFSTOPPED(st) && st >> 16 == 0 {
                    libc::WSTOPSIG(st) as usize
                } else {
                    0
                };
                ptrace(libc::PTRACE_DETACH, tid, sig);
            }
        }
    }
}
