//! `server_limits`: what the server's resources do under real clients. A 24 MiB line costs it
//! no memory (its peak resident size, VmHWM, is measured: "never keep more than the cap" is
//! not taken on trust); 300 clients that connect, make a call and leave, one after the other,
//! leave its descriptors, threads and address space (VmSize) as they were; and out of
//! descriptors (RLIMIT_NOFILE 64, 80 clients connected at once) it waits for one to be freed
//! and serves on.

use std::time::{Duration, Instant};

use serde_json::json;

use super::PROMPT;
use super::harness::{
    LineConn, Reply, Server, ended, fds, request, sleeping_thread, start_server, start_spec,
    status_kb, stderr_of, threads,
};
use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::{ensure, fail};

/// The long line: far more than the 64 KiB cap and the server's buffers.
const LONG_LINE: usize = 24 << 20;
/// How much the server's peak resident size may grow while it skips that line.
const LINE_MEMORY_KB: u64 = 8 << 10;
/// Clients that come and go, after as many to warm up.
const WARM: usize = 30;
const PASSING: usize = 300;
/// How much the address space may grow over those clients (a thread's stack is 2 MiB).
const PASSING_VM_KB: u64 = 128 << 10;
/// The descriptor limit of the server of the last scenario, and how many clients connect.
const NOFILE: u64 = 64;
const CROWD: usize = 80;

pub(super) fn server_limits(ctx: &mut Ctx) -> CheckResult {
    let server = start_server(ctx)?;
    let line = long_line_memory(&server)?;
    let passing = clients_come_and_go(&server)?;
    out_of_descriptors(ctx)?;
    ctx.note(format!(
        "a {} MiB line raised the server's peak memory by {}; {PASSING} clients that came and \
         went changed its address space by {}",
        LONG_LINE >> 20,
        mib(line),
        mib(passing)
    ));
    Ok(())
}

/// A call whose reply only has to come: `sleep(0)` with `id`, answered by a reply line that
/// carries that id (its result is judged by other items).
fn call(conn: &mut LineConn, id: usize) -> Result<Reply, Fail> {
    conn.ask(request("sleep", json!([0]), json!(id)).as_bytes())
}

fn answered(reply: &Reply, id: usize) -> bool {
    matches!(reply, Reply::Json(v) if v["id"] == json!(id))
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// A line of 24 MiB: a parse error, and the server's peak resident size grows by under 8 MiB.
fn long_line_memory(server: &Server) -> Result<u64, Fail> {
    let pid = server.pid();
    let mut conn = LineConn::open(server.port)?;
    let reply = call(&mut conn, 0)?;
    ensure!(
        answered(&reply, 0),
        "sleep [0] (id 0) got {}: no reply to judge the server's memory by",
        reply.describe()
    );
    let Some(before) = status_kb(pid, "VmHWM") else {
        fail!("rpc-server ended before the check could measure its memory");
    };
    conn.send_long(&vec![b'x'; LONG_LINE], server.addr())?;
    // Whatever the long line got (its reply is the `framing` and `error-codes` items'
    // business), the request after it shows when the server is done with it.
    conn.send(request("sleep", json!([0]), json!("after")).as_bytes())?;
    let deadline = Instant::now() + PROMPT;
    let mut reply = Reply::Silence;
    while Instant::now() < deadline {
        reply = conn.recv(deadline.saturating_duration_since(Instant::now()));
        match &reply {
            Reply::Json(v) if v["id"] == "after" => break,
            Reply::Json(_) | Reply::NotJson(_) => {}
            Reply::Silence | Reply::Closed => break,
        }
    }
    let after = status_kb(pid, "VmHWM").unwrap_or(before);
    ensure!(
        matches!(&reply, Reply::Json(v) if v["id"] == "after"),
        "sent a line of {} MiB, then sleep [0] (id \"after\"); the last reply line was {}, \
         within {} s no reply to sleep [0]",
        LONG_LINE >> 20,
        reply.describe(),
        PROMPT.as_secs()
    );
    let grew = after.saturating_sub(before);
    ensure!(
        grew < LINE_MEMORY_KB,
        "while rpc-server read a line of {} MiB and answered it with a parse error, its peak \
         resident memory (VmHWM) grew by {} (from {} to {}): it held the line (or much of it) \
         in memory. Never keep more than the cap (64 KiB) of a line: read with fill_buf and \
         consume, stop keeping bytes past the cap, and skip the rest up to the newline \
         (BufRead::read_line and read_until keep the whole line)",
        LONG_LINE >> 20,
        mib(grew),
        mib(before),
        mib(after)
    );
    Ok(grew)
}

/// 300 clients, one after the other, connect, call and leave; each connection's thread is
/// waited for before the next comes, so that the reference's memory allocator reuses what
/// the last one freed and only what a connection keeps shows.
fn clients_come_and_go(server: &Server) -> Result<u64, Fail> {
    let pid = server.pid();
    let base_threads = threads(pid).unwrap_or(0);
    let one = |i: usize| -> CheckResult {
        let mut conn = LineConn::open(server.port)?;
        let reply = call(&mut conn, i)?;
        ensure!(
            answered(&reply, i),
            "client {i} of {PASSING} that connect, call sleep [0] and leave got {}",
            reply.describe()
        );
        drop(conn);
        // Its thread ends once it has read the end of the connection.
        poll_until(Instant::now() + Duration::from_secs(2), || {
            threads(pid).is_none_or(|t| t <= base_threads)
        });
        Ok(())
    };
    for i in 0..WARM {
        one(i)?;
    }
    let (Some(fd0), Some(th0), Some(vm0)) = (fds(pid), threads(pid), status_kb(pid, "VmSize"))
    else {
        fail!("rpc-server ended while clients came and went");
    };
    for i in WARM..WARM + PASSING {
        one(i)?;
    }
    let back = poll_until(Instant::now() + PROMPT, || {
        fds(pid).is_some_and(|n| n <= fd0 + 1) && threads(pid).is_some_and(|n| n <= th0 + 1)
    });
    let (fd1, th1) = (fds(pid).unwrap_or(0), threads(pid).unwrap_or(0));
    let vm1 = status_kb(pid, "VmSize").unwrap_or(vm0);
    let came = format!(
        "{PASSING} clients connected, made a call and closed their connection, one after the other"
    );
    ensure!(
        back || fd1 <= fd0 + 1,
        "{came}; rpc-server then held {fd1} descriptors (before them: {fd0}): the sockets of \
         closed connections stay open. When a client closes its connection (read returns 0), \
         drop the connection's TcpStream and every clone of it (do not keep them in a list)"
    );
    ensure!(
        back,
        "{came}; rpc-server then had {th1} threads (before them: {th0}): the thread of a closed \
         connection must end when read returns 0"
    );
    let grew = vm1.saturating_sub(vm0);
    ensure!(
        grew < PASSING_VM_KB,
        "{came}; its threads ({th1}) and descriptors ({fd1}) came back, but its address space \
         (VmSize) grew by {} ({:.0} KiB per connection): the stack of every finished \
         connection thread is still mapped. A thread whose JoinHandle is kept (in a Vec, say) \
         and never joined keeps its stack until it is joined: drop the handle (the thread is \
         then detached), or join the threads that have finished",
        mib(grew),
        grew as f64 / PASSING as f64
    );
    Ok(grew)
}

/// A server started with RLIMIT_NOFILE 64 and 80 clients connected at once: once it has run
/// out of descriptors (and tried to accept: its main thread is seen pausing, or it has
/// ended), the clients leave, and a new client is served.
fn out_of_descriptors(ctx: &mut Ctx) -> CheckResult {
    let mut spec = ctx.bin("rpc-server").args(["--port", "0"]);
    spec.rlimits.nofile = Some(NOFILE);
    let mut server = start_spec(ctx, &spec)?;
    let pid = server.pid();
    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        match LineConn::open(server.port) {
            Ok(c) => crowd.push(c),
            // Refused: the server has closed its listening socket, and is ending or has ended
            // (its ending is told below).
            Err(e) => match server.proc.wait_until(Instant::now() + PROMPT) {
                Some(_) => break,
                None => return Err(e),
            },
        }
    }
    // At the limit, with clients still waiting to be accepted: the next accept fails with
    // EMFILE. A server that pauses and tries again is seen in nanosleep; one that gives up
    // has ended.
    poll_until(Instant::now() + PROMPT, || {
        ended(pid) || fds(pid).is_some_and(|n| n as u64 >= NOFILE - 1) && sleeping_thread(pid)
    });
    let crowded = format!(
        "rpc-server ran with at most {NOFILE} descriptors (RLIMIT_NOFILE) and {CROWD} clients \
         connected at once, more than it had descriptors for"
    );
    if let Some(ending) = server.proc.try_ending() {
        fail!(
            "{crowded}: it {} ({}). A server serves until it is killed: when accept fails for \
             want of descriptors (EMFILE, \"Too many open files\"), pause a few milliseconds and \
             accept again once a connection has closed; only an error that will not pass ends \
             the server",
            ending.describe(),
            stderr_of(&server.proc)
        );
    }
    drop(crowd);
    let reply = match LineConn::open(server.port) {
        Ok(mut conn) => call(&mut conn, 1)?,
        Err(e) => {
            // Refused: the server is ending, or has ended (told below).
            if server.proc.wait_until(Instant::now() + PROMPT).is_none() {
                return Err(e);
            }
            Reply::Closed
        }
    };
    if let Some(ending) = server.proc.try_ending() {
        fail!(
            "{crowded}; when they had left, it {} ({}). Out of descriptors, a server waits for \
             one to be freed and serves on",
            ending.describe(),
            stderr_of(&server.proc)
        );
    }
    ensure!(
        answered(&reply, 1),
        "{crowded}; when they had left, a new client's sleep [0] got {} within {} s: a server \
         that ran out of descriptors must accept again once connections have closed",
        reply.describe(),
        PROMPT.as_secs()
    );
    Ok(())
}
