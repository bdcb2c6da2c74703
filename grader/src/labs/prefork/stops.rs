//! Workers that stop: SIGHUP while every worker holds a request (until no scoreboard slot is
//! free), a request already on its way to a worker that gets SIGTERM, an idle kept-alive
//! connection of such a worker, and SIGTERM to the master while a client never finishes
//! its request. Each moment is forced (a stopped master or worker keeps its signals pending
//! while the grader sends what it judges), never hoped for under load.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::harness::{FILE, PROMPT, Server, children, finish_wrk, serves, spawn_wrk, start, www};
use super::procs::{
    NoResponse, all_read, closed_within, dead, hold, holder, pending, read_response, resume, stop,
};
use crate::check::{CheckResult, Ctx, poll_until};
use crate::fail;

/// The most SIGHUPs sent while every worker holds a request, looking for the moment no
/// scoreboard slot is left.
const MOST_ROUNDS: usize = 8;

/// How soon a SIGHUP must fork its new set (the old workers still serving).
const NEW_SET_WITHIN: Duration = Duration::from_millis(500);

/// SIGHUP while every worker holds half a request, again and again with the new set held
/// too, until a SIGHUP forks no new set (no scoreboard slot is free: the master owes its
/// workers); the first SIGHUP must fork its new set at once. Then, with the master stopped,
/// every held request is finished: each is answered 200 with `Connection: close` and its
/// worker exits, so that the master, once it goes on, finds them all dead at once (one
/// SIGCHLD). It must then reap them all and have its 2 workers, none of the old ones. Then
/// [`request_on_its_way`].
pub(super) fn sighup_while_held(ctx: &mut Ctx, root: &Path) -> CheckResult {
    let mut s = start(ctx, root, 2)?;
    serves(&s, "SIGHUP while every worker holds a request")?;
    let pid = s.pid();
    let n = s.workers;
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..n {
        held.push(hold(s.port, held.len())?);
    }
    let mut retired: Vec<i32> = Vec::new();
    let mut owed = false;
    for round in 1..=MOST_ROUNDS {
        let before = children(pid);
        retired = before.clone();
        kill(Pid::from_raw(pid), Signal::SIGHUP)?;
        let fresh = poll_until(Instant::now() + NEW_SET_WITHIN, || {
            children(pid).iter().filter(|p| !before.contains(p)).count() >= n
        });
        if !fresh {
            if round == 1 {
                fail!(
                    "SIGHUP while each of the {n} workers held a request: 0.5 s later the \
                     master had the workers {:?} (before: {before:?}), not a new set of {n}. \
                     On SIGHUP fork the new set at once and send the old workers SIGTERM: \
                     they finish their requests while the new ones serve (the scoreboard \
                     needs room for both sets)",
                    children(pid)
                );
            }
            // Every slot taken: the master owes its workers until old ones leave.
            owed = true;
            break;
        }
        if round < MOST_ROUNDS {
            for _ in 0..n {
                held.push(hold(s.port, held.len())?);
            }
        }
    }
    let sighups = retired.len() / n.max(1);
    // Every held request finished while the master is stopped: the workers that answer
    // them exit together, and their SIGCHLDs make one signal.
    stop(pid)?;
    let total = held.len();
    for (k, c) in held.iter_mut().enumerate() {
        let answered = c
            .write_all(b"\r\n")
            .map_err(|e| NoResponse {
                closed: true,
                what: format!("the rest of it could not be sent ({e})"),
            })
            .and_then(|()| read_response(c));
        let what = format!(
            "request {} of {total} that workers held when SIGHUP came",
            k + 1
        );
        match answered {
            Ok(r) if r.status == 200 && r.closes() => {}
            Ok(r) if r.status == 200 => {
                resume(pid);
                let blocked = holder(&retired, c).filter(|&w| pending(w, Signal::SIGTERM));
                fail!(
                    "{what} was answered, but with {:?}: {}",
                    header(&r.head, "connection"),
                    match blocked {
                        Some(w) => format!(
                            "its worker {w} still has the master's SIGTERM pending: the \
                             signal never got in. A worker keeps SIGTERM blocked except while \
                             it waits (ppoll with a mask that lets it in), and answers the \
                             request in hand with `Connection: close` once it got it"
                        ),
                        None => "a worker that got SIGTERM while it read a request answers it \
                                 with `Connection: close` and then exits"
                            .to_string(),
                    }
                );
            }
            Ok(r) => {
                resume(pid);
                fail!("{what} was answered {}, not 200: {:?}", r.status, r.head);
            }
            Err(why) if !why.closed && all_read(c) => {
                resume(pid);
                fail!(
                    "{what} was sent in two parts and never answered ({why}), though the \
                     server read both parts: the worker lost the first part (keep what a read \
                     brings until the head is whole), or stopped without answering (a worker \
                     asked to stop finishes the request it reads)"
                );
            }
            Err(why) => {
                resume(pid);
                fail!(
                    "{what} was never answered: {why}. SIGHUP must drop nothing: the old \
                     workers get SIGTERM (not SIGKILL), and a worker reading a request \
                     finishes it before it exits"
                );
            }
        }
    }
    drop(held);
    let gone = poll_until(Instant::now() + PROMPT, || retired.iter().all(|&w| dead(w)));
    resume(pid);
    if !gone {
        let left: Vec<i32> = retired.iter().copied().filter(|&w| !dead(w)).collect();
        fail!(
            "after SIGHUP the old workers {left:?} answered the requests they held and their \
             clients closed, but they did not exit within {} s: a worker asked to stop \
             (SIGTERM) exits once its request is answered",
            PROMPT.as_secs()
        );
    }
    let ready = poll_until(Instant::now() + Duration::from_secs(2), || {
        let now = children(pid);
        now.len() == n && !now.iter().any(|p| retired.contains(p))
    });
    if !ready {
        let zombies = super::harness::zombies(pid);
        let now = children(pid);
        fail!(
            "{sighups} SIGHUPs came while every worker held a request{}; once those requests \
             were answered and the {} old workers had exited (all at the same moment, one \
             SIGCHLD for all of them), the master had {} worker(s) {now:?}{}, not {n} new \
             ones. {}",
            if owed {
                format!(
                    " (the last one found no free scoreboard slot: the master then had {} \
                     workers)",
                    retired.len()
                )
            } else {
                String::new()
            },
            retired.len(),
            now.len(),
            if zombies.is_empty() {
                String::new()
            } else {
                format!(" and had not reaped {zombies:?}, which are zombies")
            },
            if zombies.is_empty() {
                "The workers a SIGHUP owes must be forked as soon as slots are free: release \
                 a worker's scoreboard slot when you reap it, remember how many are owed when \
                 no slot is left, and fork them when you reap"
            } else {
                "One SIGCHLD can stand for several dead children: reap with waitpid(-1, \
                 WNOHANG) until it says none is left (the workers a SIGHUP owes need their \
                 slots)"
            }
        );
    }
    serves(&s, "the load after SIGHUP")?;
    request_on_its_way(&mut s)
}

/// The value of header `name` in a lower-case head, for messages.
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map_or_else(
            || format!("no {name} header"),
            |v| format!("{name}: {}", v.trim()),
        )
}

/// Two kept-alive connections, each answered once and idle on its own worker; both workers
/// stopped; SIGHUP; once each has SIGTERM pending, a request is sent on the first
/// connection, and the workers go on. The request already on its way must be answered
/// 200 with `Connection: close`; the idle connection must be closed within 1 s of the
/// SIGTERM (3 s allowed), and both workers must exit.
fn request_on_its_way(s: &mut Server) -> CheckResult {
    let pid = s.pid();
    let get = b"GET /notes.txt HTTP/1.1\r\nHost: grader\r\n\r\n";
    let mut conns = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(("127.0.0.1", s.port))?;
        c.set_read_timeout(Some(PROMPT))?;
        c.write_all(get)?;
        match read_response(&mut c) {
            Ok(r) if r.status == 200 && !r.closes() => conns.push(c),
            Ok(r) => fail!(
                "a kept-alive GET /notes.txt was answered {} with {}: it must be 200 and keep \
                 the connection open",
                r.status,
                header(&r.head, "connection")
            ),
            Err(why) => fail!("a kept-alive GET /notes.txt was not answered: {why}"),
        }
    }
    let workers = children(pid);
    let holders: Vec<i32> = conns.iter().filter_map(|c| holder(&workers, c)).collect();
    if holders.len() != 2 || holders[0] == holders[1] {
        fail!(
            "two kept-alive connections to 2 idle workers should be served one by each \
             worker, but the workers {workers:?} hold them as {holders:?}: a worker serves \
             one connection at a time and every worker accepts"
        );
    }
    for &w in &holders {
        stop(w)?;
    }
    kill(Pid::from_raw(pid), Signal::SIGHUP)?;
    let signalled = poll_until(Instant::now() + PROMPT, || {
        holders
            .iter()
            .all(|&w| pending(w, Signal::SIGTERM) || dead(w))
    });
    let killed: Vec<i32> = holders.iter().copied().filter(|&w| dead(w)).collect();
    if !signalled || !killed.is_empty() {
        for &w in &holders {
            resume(w);
        }
        fail!(
            "on SIGHUP the master must send SIGTERM to each old worker; {}",
            if killed.is_empty() {
                format!(
                    "{} s later the workers {holders:?} had none pending",
                    PROMPT.as_secs()
                )
            } else {
                format!("the workers {killed:?} died instead (SIGKILL cuts their requests off)")
            }
        );
    }
    let (mut busy, mut idle) = (conns.remove(0), conns.remove(0));
    let sent = busy.write_all(get);
    let went_on = Instant::now();
    for &w in &holders {
        resume(w);
    }
    let answered = sent
        .map_err(|e| NoResponse {
            closed: true,
            what: format!("it could not be sent ({e})"),
        })
        .and_then(|()| read_response(&mut busy));
    match answered {
        Ok(r) if r.status == 200 && r.closes() => {}
        Ok(r) => fail!(
            "a request sent on a kept-alive connection just as its worker got SIGTERM \
             (SIGHUP) was answered {} with {}: it must be answered 200 with `Connection: \
             close`",
            r.status,
            header(&r.head, "connection")
        ),
        Err(why) => fail!(
            "a request sent on a kept-alive connection just as its worker got SIGTERM \
             (SIGHUP) was never answered: {why}. A worker asked to stop still waits up to 1 s \
             on a kept-alive connection for a request already on its way, answers it with \
             `Connection: close`, and only then exits"
        ),
    }
    let limit = Duration::from_secs(3);
    if !closed_within(&mut idle, limit.saturating_sub(went_on.elapsed())) {
        fail!(
            "a kept-alive connection that stayed idle was still open {} s after its worker \
             got SIGTERM (SIGHUP): a worker asked to stop waits at most 1 s for a request, \
             then closes the connection and exits",
            limit.as_secs()
        );
    }
    let exited = poll_until(Instant::now() + PROMPT, || holders.iter().all(|&w| dead(w)));
    if !exited {
        fail!(
            "the old workers {holders:?} answered or closed their connections after SIGHUP \
             but still run {} s later: a worker asked to stop exits once it is done",
            PROMPT.as_secs()
        );
    }
    Ok(())
}

/// The inode of the socket listening on 127.0.0.1:`port`.
fn listener_inode(port: u16) -> Option<u64> {
    testkit::net::listener(std::net::SocketAddr::from(([127, 0, 0, 1], port))).map(|s| s.inode)
}

/// Whether `pid` holds socket `inode`.
fn holds_socket(pid: i32, inode: u64) -> bool {
    testkit::procfs::fds(pid)
        .iter()
        .any(|f| f.kind == testkit::procfs::FdKind::Socket(inode))
}

/// How long the master may take after SIGTERM when a worker never finishes its request:
/// its 5 s grace, then SIGKILL, and a margin.
const STOP_LIMIT: Duration = Duration::from_secs(7);

/// A client holds a worker with half a request it never finishes; wrk for 2 s; SIGTERM to
/// the master at 0.5 s: it closes its listening socket at once, waits at most 5 s for the
/// held worker, then SIGKILLs it, and exits 0 within 7 s with no process of the server
/// left.
pub(super) fn sigterm_under_load(ctx: &mut Ctx) -> CheckResult {
    let wrk = ctx.tool("wrk", "wrk")?;
    let root = www(ctx)?;
    let mut s = start(ctx, &root, 2)?;
    serves(&s, "the load with a SIGTERM")?;
    let listening = listener_inode(s.port);
    let held = hold(s.port, 0)?;
    let mut workers = children(s.pid());
    let stuck = holder(&workers, &held);
    let mut load = spawn_wrk(ctx, &wrk, 16, 2, &s.url(FILE))?;
    std::thread::sleep(Duration::from_millis(500));
    workers.extend(children(s.pid()));
    let sent = Instant::now();
    kill(Pid::from_raw(s.pid()), Signal::SIGTERM)?;
    let master = s.pid();
    let closed = match listening {
        Some(ino) => poll_until(Instant::now() + Duration::from_secs(1), || {
            !holds_socket(master, ino) || dead(master)
        }),
        None => true,
    };
    let ending = s.proc.wait_until(sent + STOP_LIMIT);
    let _ = load.kill();
    let Some(ending) = ending else {
        let left = children(master);
        fail!(
            "after SIGTERM under load the master did not exit within {} s (workers still \
             there: {left:?}{}): stop accepting, send SIGTERM to the workers, wait at most 5 \
             s for them, then SIGKILL the ones left, reap them all, and exit 0",
            STOP_LIMIT.as_secs(),
            match stuck {
                Some(w) if left.contains(&w) => format!(
                    "; worker {w} still reads a request its client never finished, which is \
                     why it needs the SIGKILL"
                ),
                _ => String::new(),
            }
        );
    };
    if ending.bash_status() != 0 {
        fail!(
            "after SIGTERM the master must exit 0, but it {}; stderr: {}",
            ending.describe(),
            super::harness::stderr(&s.proc)
        );
    }
    if !closed {
        fail!(
            "after SIGTERM the master kept its listening socket open while its workers \
             finished: the master closes the listening socket first (new clients are then \
             refused, not left waiting)"
        );
    }
    let left: Vec<i32> = workers
        .into_iter()
        .filter(|&w| {
            testkit::procfs::stat(w)
                .is_some_and(|p| p.state != 'Z' && p.comm.starts_with("prefork"))
        })
        .collect();
    if !left.is_empty() {
        fail!(
            "the master exited 0 after SIGTERM, but its workers {left:?} still run: it must \
             wait for every worker (waitpid) before it exits"
        );
    }
    drop(held);
    let _ = finish_wrk(ctx, &mut load, 2);
    ctx.note(format!(
        "SIGTERM with a request never finished: the master exited 0 after {:.1} s",
        sent.elapsed().as_secs_f64()
    ));
    Ok(())
}
