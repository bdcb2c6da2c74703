//! A hang explained in a student's terms: what each process waits in, on which descriptor,
//! what that descriptor is, and which processes hold the other end.
//!
//! "`cat` (pid 412) waits to read fd 0 (pipe:[9137] (read end)); the write end is still
//! open as fd 4 in `pipeline` (pid 410): close it in the parent after fork."

use std::fmt::Write as _;

use crate::procfs::{Fd, FdKind, Process};

/// `openat` on x86_64: a process blocked in it on a FIFO waits for the other end.
#[cfg(target_arch = "x86_64")]
const OPENAT: i64 = 257;
#[cfg(not(target_arch = "x86_64"))]
const OPENAT: i64 = -1;

/// One paragraph per process of `procs`: what it waits for and why it still waits. This
/// test's own process is counted among the holders of pipe and FIFO ends (as "this test").
pub fn explain(procs: &[Process]) -> String {
    if procs.is_empty() {
        return "- (no process left)\n".to_owned();
    }
    let me = Process::read(std::process::id() as i32);
    let mut everyone: Vec<&Process> = procs.iter().collect();
    if let Some(me) = me
        .as_ref()
        .filter(|m| procs.iter().all(|p| p.stat.pid != m.stat.pid))
    {
        everyone.push(me);
    }
    paragraphs(procs, &everyone)
}

/// [`explain`] for an observer outside the programs (a grader): only `procs` are counted as
/// holders of pipe and FIFO ends, and nothing is called "this test".
pub fn explain_from_outside(procs: &[Process]) -> String {
    if procs.is_empty() {
        return "- (no process left)\n".to_owned();
    }
    let everyone: Vec<&Process> = procs.iter().collect();
    paragraphs(procs, &everyone)
}

fn paragraphs(procs: &[Process], everyone: &[&Process]) -> String {
    let mut out = String::new();
    for p in procs {
        out.push_str(&explain_one(p, everyone));
        out.push('\n');
    }
    out
}

/// [`explain`] of the processes `pids` (those still alive).
pub fn explain_pids(pids: impl IntoIterator<Item = i32>) -> String {
    explain(&crate::procfs::processes(pids))
}

/// [`explain`] of every process of group `pgid`.
pub fn explain_group(pgid: i32) -> String {
    explain_pids(crate::procfs::group(pgid).into_iter().map(|s| s.pid))
}

fn explain_one(p: &Process, everyone: &[&Process]) -> String {
    if p.stat.state == 'Z' {
        return format!(
            "- {} has exited but nobody has waited for it (zombie)",
            p.name()
        );
    }
    let me = std::process::id() as i32;
    let mut line = if p.stat.pid == me {
        format!("- this test (pid {})", p.stat.pid)
    } else {
        format!("- {} `{}`", p.name(), truncate(&p.cmdline.join(" "), 80))
    };
    let w = p.wchan.as_str();
    let reading = w.contains("pipe_read");
    let writing = w.contains("pipe_write");
    if w == "wait_for_partner" || w.contains("fifo_open") {
        let how = match p.syscall.as_ref() {
            Some((nr, args)) if *nr == OPENAT => match args.get(2).map(|f| f & 0o3) {
                Some(0) => Some(("reading", "writing")),
                Some(1) => Some(("writing", "reading")),
                _ => None,
            },
            _ => None,
        };
        match how {
            Some((mine, other)) => {
                let _ = write!(
                    line,
                    " is blocked in open() of a FIFO for {mine}: open waits until some process \
                     opens the same FIFO for {other}"
                );
            }
            None => line.push_str(
                " is blocked in open() of a FIFO: open waits until some process opens the \
                 other end",
            ),
        }
        let fifos: Vec<String> = everyone
            .iter()
            .flat_map(|h| h.fds.iter().map(move |f| (h, f)))
            .filter(|(_, f)| matches!(f.kind, FdKind::Fifo { .. }))
            .map(|(h, f)| format!("fd {} in {} is {}", f.num, who(h), f.kind))
            .collect();
        if fifos.is_empty() {
            line.push_str("; no process has any FIFO open");
        } else {
            let _ = write!(line, "; FIFOs open now: {}", fifos.join(", "));
        }
        return line;
    }
    if !(reading || writing) {
        let _ = write!(line, " {}", describe_wait(w));
        if let Some(fd) = p.blocked_fd() {
            let _ = write!(line, ", on fd {} ({})", fd.num, fd.kind);
        }
        return line;
    }
    let fd = p.blocked_fd().or_else(|| {
        p.fds.iter().find(|f| match &f.kind {
            FdKind::PipeRead(_) => reading,
            FdKind::PipeWrite(_) => writing,
            FdKind::Fifo { read, write, .. } => (reading && *read) || (writing && *write),
            _ => false,
        })
    });
    let what = if reading { "read" } else { "write" };
    let Some(fd) = fd else {
        let _ = write!(line, " waits to {what} a pipe");
        return line;
    };
    let _ = write!(line, " waits to {what} fd {} ({})", fd.num, fd.kind);
    let others = other_ends(everyone, fd, reading);
    if others.is_empty() {
        line.push_str(if reading {
            "; no process holds a write end any more, so it should see EOF"
        } else {
            "; the pipe is full and no process holds its read end"
        });
    }
    for (h, hfd) in others {
        let advice = if h.stat.pid == p.stat.pid && reading {
            "a process never sees EOF on a pipe it can still write to itself: close the unused \
             write end in the child before exec (or create the pipe with O_CLOEXEC)"
                .to_owned()
        } else if h.stat.pid == p.stat.pid {
            "it holds that pipe's read end itself, so it is never told that its reader is \
             gone: close the unused ends in the child before exec (or create the pipes with \
             O_CLOEXEC)"
                .to_owned()
        } else if reading && is_ancestor(everyone, h.stat.pid, p.stat.pid) {
            "close it in the parent after fork".to_owned()
        } else if !reading && h.wchan == "do_wait" && is_ancestor(everyone, h.stat.pid, p.stat.pid)
        {
            "it waits for its children instead of starting the stage that reads this pipe: \
             fork every stage first, then wait for them"
                .to_owned()
        } else if !reading && h.wchan == "do_wait" {
            format!(
                "{} waits for its children instead of reading: start every reader first, then \
                 wait",
                h.name()
            )
        } else if h.wchan.contains("pipe_") {
            format!("{} is itself blocked", h.name())
        } else if reading {
            "every process must close the pipe ends it does not use".to_owned()
        } else {
            format!("which is not reading it ({})", describe_wait(&h.wchan))
        };
        let end = if reading {
            "a write end"
        } else {
            "the read end"
        };
        let _ = write!(
            line,
            "; {end} is open as fd {} in {}: {advice}",
            hfd.num,
            who(h)
        );
    }
    line
}

/// The holders of the other end of `fd`: writers when `reading`, readers otherwise.
fn other_ends<'a>(everyone: &[&'a Process], fd: &Fd, reading: bool) -> Vec<(&'a Process, &'a Fd)> {
    let mut out = Vec::new();
    for h in everyone {
        for f in &h.fds {
            let matches = match (&fd.kind, &f.kind) {
                (FdKind::PipeRead(a), FdKind::PipeWrite(b)) => reading && a == b,
                (FdKind::PipeWrite(a), FdKind::PipeRead(b)) => !reading && a == b,
                (
                    FdKind::Fifo { path: a, .. },
                    FdKind::Fifo {
                        path: b,
                        read,
                        write,
                    },
                ) => a == b && if reading { *write } else { *read },
                _ => false,
            };
            if matches {
                out.push((*h, f));
            }
        }
    }
    out
}

fn who(p: &Process) -> String {
    if p.stat.pid == std::process::id() as i32 {
        "this test".to_owned()
    } else {
        p.name()
    }
}

fn is_ancestor(everyone: &[&Process], anc: i32, mut pid: i32) -> bool {
    for _ in 0..64 {
        match everyone.iter().find(|p| p.stat.pid == pid) {
            Some(p) if p.stat.ppid == anc => return true,
            Some(p) => pid = p.stat.ppid,
            None => return false,
        }
    }
    false
}

/// A kernel wait channel in words.
pub fn describe_wait(wchan: &str) -> String {
    match wchan {
        "" => "is running (busy on the CPU, or between system calls)".into(),
        "do_wait" | "kernel_wait4" => "waits for a child process to exit (waitpid)".into(),
        "wait_for_partner" => {
            "is blocked opening a FIFO: no process has opened the other end".into()
        }
        "hrtimer_nanosleep" | "do_nanosleep" => "is sleeping".into(),
        "do_sys_poll" | "do_select" | "ep_poll" | "do_epoll_wait" => "waits in poll/select".into(),
        w if w.starts_with("futex") => {
            "waits on a futex: a lock, a condition variable, or a parked or joined thread".into()
        }
        "do_mq_timedreceive" | "wq_sleep" => "waits on a message queue".into(),
        "do_mq_timedsend" => "waits for room in a full message queue".into(),
        "do_msgrcv" => "waits in msgrcv on a System V queue".into(),
        "do_msgsnd" => "waits in msgsnd for room in a System V queue".into(),
        "do_semtimedop" => "waits in semop on a System V semaphore".into(),
        "unix_stream_read_generic" | "unix_stream_data_wait" => {
            "waits to read a UNIX socket".into()
        }
        "inet_csk_accept" | "unix_accept" => "waits in accept".into(),
        "sk_wait_data" | "wait_woken" => "waits to read a socket".into(),
        "do_signal_stop" => "is stopped by a signal".into(),
        "pipe_read" | "anon_pipe_read" => "waits to read a pipe".into(),
        other => format!("waits in the kernel function `{other}`"),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::Stat;

    fn proc(pid: i32, ppid: i32, comm: &str, wchan: &str, fds: Vec<Fd>) -> Process {
        Process {
            stat: Stat {
                pid,
                comm: comm.into(),
                state: 'S',
                ppid,
                pgid: 1,
                utime: 0,
                stime: 0,
                starttime: 0,
            },
            wchan: wchan.into(),
            syscall: None,
            cmdline: vec![comm.into()],
            fds,
        }
    }

    fn fd(num: i32, kind: FdKind) -> Fd {
        Fd {
            num,
            kind,
            cloexec: false,
        }
    }

    #[test]
    fn a_parent_holding_the_write_end_is_named() {
        let procs = [
            proc(
                10,
                1,
                "pipeline",
                "do_wait",
                vec![fd(4, FdKind::PipeWrite(77))],
            ),
            proc(
                11,
                10,
                "cat",
                "anon_pipe_read",
                vec![fd(0, FdKind::PipeRead(77))],
            ),
        ];
        let text = explain(&procs);
        assert!(
            text.contains("`cat` (pid 11) `cat` waits to read fd 0 (pipe:[77]"),
            "{text}"
        );
        assert!(
            text.contains("fd 4 in `pipeline` (pid 10): close it in the parent after fork"),
            "{text}"
        );
    }

    #[test]
    fn a_parent_waiting_for_its_children_before_forking_the_reader_is_named() {
        let procs = [
            proc(
                10,
                1,
                "pipeline",
                "do_wait",
                vec![fd(3, FdKind::PipeRead(8))],
            ),
            proc(
                11,
                10,
                "seq",
                "pipe_write",
                vec![fd(1, FdKind::PipeWrite(8))],
            ),
        ];
        let text = explain_from_outside(&procs);
        assert!(text.contains("fork every stage first"), "{text}");
        assert!(!text.contains("this test"), "{text}");
    }

    #[test]
    fn a_fifo_reader_names_the_writers() {
        let fifo = |read, write| FdKind::Fifo {
            path: "/tmp/x.fifo".into(),
            read,
            write,
        };
        let procs = [
            proc(
                20,
                1,
                "server",
                "anon_pipe_read",
                vec![fd(3, fifo(true, false))],
            ),
            proc(
                21,
                1,
                "client",
                "do_nanosleep",
                vec![fd(5, fifo(false, true))],
            ),
        ];
        let text = explain(&procs);
        assert!(text.contains("FIFO /tmp/x.fifo (open for read)"), "{text}");
        assert!(text.contains("fd 5 in `client` (pid 21)"), "{text}");
    }

    #[test]
    fn a_blocked_fifo_open_is_explained() {
        let mut p = proc(30, 1, "fifo-client", "wait_for_partner", vec![]);
        p.syscall = Some((OPENAT, vec![0xffff_ff9c, 0x1000, 0o1]));
        let text = explain(&[p]);
        assert!(text.contains("blocked in open() of a FIFO"), "{text}");
    }
}
