//! Part C: the dispatcher behind `mq-dispatch`: jobs out on one POSIX queue, results back
//! on another, a pool of forked workers in between.
//!
//! ```text
//! stdin ─▶ dispatcher ──/mq-dispatch-PID-jobs──▶ worker 1..N ──/mq-dispatch-PID-results──▶ dispatcher ─▶ stdout
//! ```
//!
//! The dispatcher is one thread that never blocks on a single thing: a full job queue must
//! not stop it from draining results (the workers would block sending results, and nobody
//! would ever make room again), and a worker that dies must be noticed. So it waits in
//! `poll(2)` on stdin, on the result queue (readable: a result waits) and on the job queue
//! (writable: there is room), and sends and receives without waiting.
//!
//! A worker takes a job and dies before it answers: the job is gone from the queue and its
//! result never comes. The dispatcher remembers every job it sent that has no result yet;
//! when a worker dies it sends all of them again, and prints only the first result of each
//! line, so that every job gets exactly one.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, kill, sigaction,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use crate::mailbox::Mailbox;

/// Messages each queue holds: the default limit for an unprivileged user.
pub const QUEUE_CAPACITY: usize = 10;
/// Largest message on either queue, in bytes.
pub const MSG_SIZE: usize = 1024;
/// Largest payload of a job, in bytes.
pub const MAX_PAYLOAD: usize = 1000;
/// Most workers `--workers` accepts.
pub const MAX_WORKERS: usize = 64;

/// One job: a line of input that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its line number in the input, counting from 1 (bad lines count too).
    pub line: u64,
    /// Its priority, 0 to 9: the queue hands out higher priorities first.
    pub priority: u32,
    /// The text after the first space.
    pub payload: String,
}

/// Parses one line of input (without its `\n`): `<priority 0-9> <payload>`.
///
/// The priority is one digit; one space follows; the payload is the rest of the line,
/// possibly empty, at most [`MAX_PAYLOAD`] bytes of UTF-8.
///
/// # Errors
///
/// A reason, for a line that does not parse, that fits after `line N: `.
///
/// # Example
///
/// ```
/// use mqueue::{Job, parse_job};
///
/// let job = parse_job(3, b"7 hello world").unwrap();
/// assert_eq!(job, Job { line: 3, priority: 7, payload: "hello world".into() });
/// assert!(parse_job(4, b"10 too big").is_err());
/// assert!(parse_job(5, b"no-priority").is_err());
/// ```
pub fn parse_job(line: u64, text: &[u8]) -> Result<Job, String> {
    let text = std::str::from_utf8(text).map_err(|_| "the line is not valid UTF-8".to_owned())?;
    let Some((priority, payload)) = text.split_once(' ') else {
        return Err(format!(
            "expected `<priority 0-9> <payload>`, got {:?}",
            clip(text)
        ));
    };
    let priority = match priority.as_bytes() {
        [d @ b'0'..=b'9'] => u32::from(d - b'0'),
        _ => {
            return Err(format!(
                "the priority must be one digit 0-9, got {:?}",
                clip(priority)
            ));
        }
    };
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "the payload has {} bytes, more than {MAX_PAYLOAD}",
            payload.len()
        ));
    }
    Ok(Job {
        line,
        priority,
        payload: payload.to_owned(),
    })
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The payload reversed, character by character: what a worker computes.
///
/// ```
/// assert_eq!(mqueue::reverse("abc déf"), "féd cba");
/// ```
pub fn reverse(payload: &str) -> String {
    payload.chars().rev().collect()
}

/// The names of the two queues of the dispatcher with process id `pid`:
/// `(/mq-dispatch-PID-jobs, /mq-dispatch-PID-results)`.
pub fn queue_names(pid: u32) -> (String, String) {
    (
        format!("/mq-dispatch-{pid}-jobs"),
        format!("/mq-dispatch-{pid}-results"),
    )
}

/// The wire format of both queues: `<line> <text>`.
fn encode(line: u64, text: &str) -> String {
    format!("{line} {text}")
}

fn decode(msg: &[u8]) -> Option<(u64, &str)> {
    let text = std::str::from_utf8(msg).ok()?;
    let (line, rest) = text.split_once(' ')?;
    Some((line.parse().ok()?, rest))
}

/// A worker's whole life: take a job from `jobs`, put `<line> <payload reversed>` on
/// `results`, forever. Returns only on an error of the queues.
pub fn worker(jobs: &Mailbox, results: &Mailbox) -> io::Error {
    loop {
        let msg = match jobs.receive() {
            Ok(msg) => msg,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return e,
        };
        let Some((line, payload)) = decode(&msg.data) else {
            continue;
        };
        let reply = encode(line, &reverse(payload));
        loop {
            match results.send(reply.as_bytes(), 0) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return e,
            }
        }
    }
}

/// How a [`dispatch`] run ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// How many input lines did not parse (each reported on stderr).
    pub bad_lines: u64,
    /// The signal (SIGINT or SIGTERM) that stopped the run early, if one did.
    pub signal: Option<i32>,
}

/// The signal that asked us to stop, 0 until one does.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

extern "C" fn on_child(_: libc::c_int) {
    // Nothing: its only job is to interrupt poll so that a dead worker is noticed at once.
}

fn install_handlers() -> io::Result<()> {
    // No SA_RESTART: a signal interrupts poll (EINTR) and the loop looks at STOP.
    let stop = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let child = SigAction::new(
        SigHandler::Handler(on_child),
        SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handlers only store to an atomic.
    unsafe {
        sigaction(Signal::SIGINT, &stop)?;
        sigaction(Signal::SIGTERM, &stop)?;
        sigaction(Signal::SIGCHLD, &child)?;
    }
    Ok(())
}

/// The two queues; the process that created them unlinks them when they drop (a forked
/// worker that unwinds must not).
struct Queues {
    jobs: Mailbox,
    results: Mailbox,
    owner: u32,
}

impl Queues {
    fn create() -> io::Result<Queues> {
        let owner = std::process::id();
        let (jobs, results) = queue_names(owner);
        let jobs = create_fresh(&jobs)?;
        // If this fails, `jobs` drops: closed, but not unlinked. Do it here.
        let results = create_fresh(&results).inspect_err(|_| {
            let _ = Mailbox::unlink(jobs.name());
        })?;
        Ok(Queues {
            jobs,
            results,
            owner,
        })
    }
}

/// Creates `name`; a queue of that name left by a dead process with our pid is replaced.
fn create_fresh(name: &str) -> io::Result<Mailbox> {
    match Mailbox::create(name, QUEUE_CAPACITY, MSG_SIZE) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Mailbox::unlink(name)?;
            Mailbox::create(name, QUEUE_CAPACITY, MSG_SIZE)
        }
        other => other,
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            // A queue outlives every process: unlinked here, on every way out.
            let _ = Mailbox::unlink(self.jobs.name());
            let _ = Mailbox::unlink(self.results.name());
        }
    }
}

/// The live workers; on drop (an error, a panic) they are killed and reaped.
struct Workers {
    pids: Vec<Pid>,
    owner: u32,
}

impl Workers {
    fn spawn(&mut self, queues: &Queues) -> io::Result<()> {
        let parent = getpid();
        // SIGINT and SIGTERM stay blocked until the child has its default dispositions back:
        // delivered earlier, they would run our handler in the child, which would not die.
        let mut stops = SigSet::empty();
        stops.add(Signal::SIGINT);
        stops.add(Signal::SIGTERM);
        let old_mask = stops.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        // SAFETY: this process has one thread, so the child may do anything after fork.
        let forked = unsafe { fork() };
        if !matches!(forked, Ok(ForkResult::Child)) {
            old_mask.thread_set_mask()?;
        }
        match forked? {
            ForkResult::Parent { child } => {
                self.pids.push(child);
                Ok(())
            }
            ForkResult::Child => {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker_setup(parent);
                    let _ = old_mask.thread_set_mask();
                    worker(&queues.jobs, &queues.results)
                }));
                let code = if outcome.is_ok() { 1 } else { 101 };
                // _exit: no destructor, no flush of the stdout buffer we share with the parent.
                // SAFETY: ends this process.
                unsafe { libc::_exit(code) }
            }
        }
    }

    /// Asks every worker to stop (SIGTERM) and waits for each.
    fn stop(&mut self) {
        for pid in &self.pids {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        for pid in self.pids.drain(..) {
            while let Err(Errno::EINTR) = waitpid(pid, None) {}
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            for pid in &self.pids {
                let _ = kill(*pid, Signal::SIGKILL);
            }
            for pid in self.pids.drain(..) {
                while let Err(Errno::EINTR) = waitpid(pid, None) {}
            }
        }
    }
}

/// In a new worker: default signal dispositions, and death with the dispatcher.
fn worker_setup(parent: Pid) {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring default dispositions.
    unsafe {
        let _ = sigaction(Signal::SIGINT, &default);
        let _ = sigaction(Signal::SIGTERM, &default);
        let _ = sigaction(Signal::SIGCHLD, &default);
    }
    // A worker must not outlive a dispatcher killed with SIGKILL, blocked in mq_receive.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if getppid() != parent {
        // SAFETY: ends this process.
        unsafe { libc::_exit(0) };
    }
}

/// Where the jobs are.
struct Ledger {
    /// Parsed, not sent yet (or to be sent again), in order.
    pending: VecDeque<Job>,
    /// Sent, no result yet, by line.
    in_flight: BTreeMap<u64, Job>,
    /// `answered[line - 1]`: its result was printed.
    answered: Vec<bool>,
    /// Lines read so far.
    lines: u64,
    bad_lines: u64,
    /// A line not finished yet.
    partial: Vec<u8>,
    eof: bool,
}

impl Ledger {
    fn take_line(&mut self, text: &[u8], err: &mut impl Write) -> io::Result<()> {
        self.lines += 1;
        self.answered.push(false);
        match parse_job(self.lines, text) {
            Ok(job) => self.pending.push_back(job),
            Err(why) => {
                self.bad_lines += 1;
                writeln!(err, "mq-dispatch: line {}: {why}", self.lines)?;
            }
        }
        Ok(())
    }

    fn take_input(&mut self, chunk: &[u8], err: &mut impl Write) -> io::Result<()> {
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.take_line(&rest[..at], err)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..at]);
                self.take_line(&line, err)?;
            }
            rest = &rest[at + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    fn end_input(&mut self, err: &mut impl Write) -> io::Result<()> {
        self.eof = true;
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.take_line(&line, err)?;
        }
        Ok(())
    }

    /// A worker died: whatever it held is lost, and we cannot tell which jobs those were,
    /// so every unanswered job goes out again (duplicates are dropped on the way back).
    fn resend_unanswered(&mut self) {
        let again = std::mem::take(&mut self.in_flight);
        for (_, job) in again.into_iter().rev() {
            self.pending.push_front(job);
        }
    }

    fn done(&self) -> bool {
        self.eof && self.pending.is_empty() && self.in_flight.is_empty()
    }
}

/// Runs the dispatcher: reads jobs from stdin, runs `workers` workers, prints one result
/// line `<line> <payload reversed>` per job on stdout, and reports each bad line on stderr
/// as `mq-dispatch: line N: <reason>`.
///
/// The contract, which the tests and the grader hold you to:
///
/// - Two POSIX queues, created exclusively at start with [`Mailbox::create`], named by
///   [`queue_names`] after the dispatcher's pid (`/mq-dispatch-PID-jobs`,
///   `/mq-dispatch-PID-results`), each of [`QUEUE_CAPACITY`] messages of at most
///   [`MSG_SIZE`] bytes: the default limits of an unprivileged user. A job is sent with its
///   priority, so workers take higher priorities first.
/// - `workers` processes forked at start, each running [`worker`].
/// - Results are printed as they arrive, in any order, while input is still being read:
///   the dispatcher does not wait for the end of its input to start.
/// - It returns once stdin is at EOF and every job has its result, or once SIGINT or
///   SIGTERM arrives; either way the workers are stopped and reaped and both queues are
///   unlinked.
/// - A worker that dies (even by SIGKILL) is replaced, and every job still gets exactly
///   one result: the job it held must be sent again, and a result that comes twice is
///   printed once.
/// - It never deadlocks on full queues: while the job queue is full it keeps taking
///   results.
///
/// # Errors
///
/// Errors of the queues (creation, sending, receiving), of fork, or of stdin or stdout;
/// the workers are stopped and the queues unlinked first.
pub fn dispatch(workers: usize) -> io::Result<Outcome> {
    install_handlers()?;
    let queues = Queues::create()?;
    let mut pool = Workers {
        pids: Vec::with_capacity(workers),
        owner: std::process::id(),
    };
    for _ in 0..workers {
        pool.spawn(&queues)?;
    }
    let stdin = io::stdin();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut err = io::stderr().lock();
    let mut ledger = Ledger {
        pending: VecDeque::new(),
        in_flight: BTreeMap::new(),
        answered: Vec::new(),
        lines: 0,
        bad_lines: 0,
        partial: Vec::new(),
        eof: false,
    };
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let sig = STOP.load(Ordering::SeqCst);
        if sig != 0 {
            out.flush()?;
            pool.stop();
            return Ok(Outcome {
                bad_lines: ledger.bad_lines,
                signal: Some(sig),
            });
        }

        // Dead workers: replace them, and send again what they may have taken.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(status) => {
                    let Some(pid) = status.pid() else { break };
                    if let Some(i) = pool.pids.iter().position(|p| *p == pid) {
                        pool.pids.swap_remove(i);
                        ledger.resend_unanswered();
                        pool.spawn(&queues)?;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if ledger.done() {
            break;
        }

        // As many jobs as there is room for, without waiting.
        while let Some(job) = ledger.pending.front() {
            if ledger.answered[(job.line - 1) as usize] {
                ledger.pending.pop_front();
                continue;
            }
            let msg = encode(job.line, &job.payload);
            match queues
                .jobs
                .send_timeout(msg.as_bytes(), job.priority, Duration::ZERO)
            {
                Ok(()) => {
                    let job = ledger.pending.pop_front().expect("front exists");
                    ledger.in_flight.insert(job.line, job);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }

        // Every result there is, without waiting; the first one of each line is printed.
        loop {
            match queues.results.try_receive() {
                Ok(msg) => {
                    let Some((line, text)) = decode(&msg.data) else {
                        continue;
                    };
                    let Some(slot) = line
                        .checked_sub(1)
                        .and_then(|i| ledger.answered.get_mut(i as usize))
                    else {
                        continue;
                    };
                    if !*slot {
                        *slot = true;
                        ledger.in_flight.remove(&line);
                        writeln!(out, "{line} {text}")?;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if ledger.done() {
            break;
        }
        out.flush()?;

        // Wait for input (while little is pending), a result, or room for a job.
        let want_input = !ledger.eof && ledger.pending.len() < 4 * QUEUE_CAPACITY;
        let mut fds = Vec::with_capacity(3);
        fds.push(PollFd::new(queues.results.as_fd(), PollFlags::POLLIN));
        if !ledger.pending.is_empty() {
            fds.push(PollFd::new(queues.jobs.as_fd(), PollFlags::POLLOUT));
        }
        if want_input {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let input_ready = want_input
            && fds
                .last()
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        if input_ready {
            match stdin.lock().read(&mut buf) {
                Ok(0) => ledger.end_input(&mut err)?,
                Ok(n) => ledger.take_input(&buf[..n], &mut err)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    out.flush()?;
    pool.stop();
    Ok(Outcome {
        bad_lines: ledger.bad_lines,
        signal: None,
    })
}

/// Parses the arguments after the program name: `--workers N`, N from 1 to
/// [`MAX_WORKERS`].
///
/// # Errors
///
/// What is wrong, for a usage message.
pub fn parse_args<I, S>(args: I) -> Result<usize, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<S> = args.into_iter().collect();
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let n = match args.as_slice() {
        ["--workers", n] => n,
        [] => return Err("--workers N is required".into()),
        _ => return Err(format!("unexpected arguments {args:?}")),
    };
    match n.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "--workers takes a number from 1 to {MAX_WORKERS}, not {n:?}"
        )),
    }
}
