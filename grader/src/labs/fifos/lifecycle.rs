//! The checks of the server's and the clients' lives and what they leave behind:
//! `sigterm_removes_fifo`, `kill_and_restart`, `second_server` and `no_leftovers`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::mkfifo;

use super::ends::FakeServer;
use super::harness::{
    client, client_start, exists, listing, service_dir, shown, start_server, wait_for,
};
use super::state::{doing, own_pids, server_state, stderr_of};
use super::{PROMPT, SERVER_FIFO};
use crate::check::{CheckResult, Ctx, Fail};
use crate::sandbox::Ending;
use crate::{ensure, fail};
use testkit::procfs;

// ---------------------------------------------------------------------------------------
// sigterm_removes_fifo, kill_and_restart, second_server

pub(super) fn sigterm_removes_fifo(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let fifo = dir.join(SERVER_FIFO);
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = start_server(ctx, &dir)?;
        let meta = std::fs::symlink_metadata(&fifo);
        ensure!(
            meta.as_ref().is_ok_and(|m| m.file_type().is_fifo()),
            "after `ready`, svc/{SERVER_FIFO} should be a FIFO, but it is {}",
            match &meta {
                Ok(m) => format!("a file of type {:?}", m.file_type()),
                Err(_) => "missing".into(),
            }
        );
        let mode = meta.map(|m| m.mode() & 0o777).unwrap_or(0);
        ensure!(
            mode == 0o600,
            "svc/{SERVER_FIFO} has mode {mode:o} instead of 600: only its owner may read or \
             write it"
        );
        client_start(ctx, &dir, 2, "before the signal")?;
        server.signal(sig);
        let Some(ending) = server.wait_until(Instant::now() + PROMPT) else {
            fail!(
                "fifo-server did not exit within {} s of {sig}, and {}. Block SIGINT and SIGTERM \
                 and poll a signalfd together with the FIFO (or use a handler without SA_RESTART \
                 so that the blocking call fails with EINTR)",
                PROMPT.as_secs(),
                doing(server.pid)
            );
        };
        ensure!(
            ending == Ending::Exited(0),
            "after {sig}, fifo-server {}; it should remove its FIFO and exit with status 0 \
             (catch the signal rather than die of it); {}",
            ending.describe(),
            stderr_of(&server)
        );
        ensure!(
            !exists(&fifo),
            "fifo-server exited after {sig} but left svc/{SERVER_FIFO} behind. A FIFO is a \
             file: it outlives the process that made it until someone unlinks it. Remove it \
             before exiting"
        );
    }
    Ok(())
}

pub(super) fn kill_and_restart(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut first = start_server(ctx, &dir)?;
    client_start(ctx, &dir, 10, "a first client")?;
    first.kill();
    ensure!(
        exists(&dir.join(SERVER_FIFO)),
        "svc/{SERVER_FIFO} vanished when its server was killed with SIGKILL: the grader cannot \
         test a stale FIFO"
    );
    let out = client(ctx, &dir, "1")?;
    ensure!(
        out.status() == 1 && out.elapsed < Duration::from_secs(2),
        "with a stale svc/{SERVER_FIFO} (its server was killed), `fifo-client svc 1` should fail \
         at once with status 1; it exited with status {} after {:.1} s. Open the server's FIFO \
         with O_WRONLY|O_NONBLOCK: ENXIO means nobody reads it",
        out.status(),
        out.elapsed.as_secs_f64()
    );
    let spec = ctx.bin("fifo-server").args([&dir]);
    let mut second = ctx.spawn(&spec)?;
    let ready = second.wait_stdout(Instant::now() + PROMPT, |o| o.starts_with(b"ready"));
    if !ready {
        let why = match second.try_ending() {
            Some(e) => format!("{}; {}", e.describe(), stderr_of(&second)),
            None => format!("did not print `ready` within 5 s; {}", doing(second.pid)),
        };
        fail!(
            "after a server was killed with SIGKILL, its FIFO svc/{SERVER_FIFO} stays behind, \
             stale: nobody reads it. A new `fifo-server svc` must reuse it, but it {why}. Tell \
             a stale FIFO from a live one: open it O_WRONLY|O_NONBLOCK; ENXIO means no reader"
        );
    }
    let start = client_start(ctx, &dir, 3, "after the restart")?;
    ensure!(
        start == 0,
        "a restarted server should start again from 0; the first client got {start}"
    );
    Ok(())
}

pub(super) fn second_server(ctx: &mut Ctx) -> CheckResult {
    let dir = service_dir(ctx, "svc")?;
    let mut first = start_server(ctx, &dir)?;
    client_start(ctx, &dir, 3, "a first client")?;
    let spec = ctx.bin("fifo-server").args([&dir]);
    let mut second = ctx.spawn(&spec)?;
    let Some(ending) = second.wait_until(Instant::now() + PROMPT) else {
        let printed = String::from_utf8_lossy(&second.stdout().0).into_owned();
        fail!(
            "a second `fifo-server svc`, started while the first one serves svc, should exit \
             with status 1 at once; it was still running after {} s (it printed {printed:?}), \
             and {}{}",
            PROMPT.as_secs(),
            doing(second.pid),
            if printed.contains("ready") {
                ". Having printed `ready`, it serves a FIFO that was not its to take: an \
                 existing FIFO is probed (open O_WRONLY|O_NONBLOCK: ENXIO means stale), never \
                 unlinked and made again"
            } else {
                ""
            }
        );
    };
    // The exit can be seen before the last bytes of stderr: read it to its end.
    second.wait_stderr(Instant::now() + PROMPT, |_| false);
    let err = String::from_utf8_lossy(&second.stderr().0)
        .trim()
        .to_owned();
    ensure!(
        ending == Ending::Exited(1) && err.starts_with("fifo-server: "),
        "a second `fifo-server svc`, started while the first one serves svc, should exit with \
         status 1 and say why on stderr (`fifo-server: ...`); it {} and printed {err:?}",
        ending.describe()
    );
    ensure!(
        exists(&dir.join(SERVER_FIFO)),
        "a second fifo-server that was refused removed svc/{SERVER_FIFO}, the FIFO of the live \
         server: a refused server must leave it alone"
    );
    let start = client_start(ctx, &dir, 1, "after a second server was refused")?;
    ensure!(
        start == 3,
        "after a second server was refused, the next client got {start} instead of 3 (the first \
         server's next number); {}",
        server_state(&mut first)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// no_leftovers

pub(super) fn no_leftovers(ctx: &mut Ctx) -> CheckResult {
    // No server at all, and a stale FIFO: the client fails at once and cleans up.
    let empty = service_dir(ctx, "empty")?;
    let stale = service_dir(ctx, "stale")?;
    mkfifo(&stale.join(SERVER_FIFO), Mode::from_bits_truncate(0o600))?;
    for (dir, want) in [(&empty, vec![]), (&stale, vec![SERVER_FIFO.to_string()])] {
        let out = client(ctx, dir, "3")?;
        ensure!(
            out.status() == 1 && out.elapsed < Duration::from_secs(2) && !out.stderr.is_empty(),
            "`fifo-client {} 3` with no server should exit with status 1 at once, with a message \
             on stderr; it exited with status {} after {:.1} s and said {:?}",
            shown(dir),
            out.status(),
            out.elapsed.as_secs_f64(),
            out.stderr_str().trim()
        );
        ensure!(
            listing(dir) == want,
            "after `fifo-client {} 3` failed for want of a server, {}/ holds {:?}: the client \
             must remove its reply FIFO on every path, errors included",
            shown(dir),
            shown(dir),
            listing(dir)
        );
    }
    // A server that never answers: the client gives up after 5 s, or on SIGINT.
    let mute = service_dir(ctx, "mute")?;
    let _fake = FakeServer::new(&mute)?;
    let out = client(ctx, &mute, "3").map_err(|Fail(why)| {
        Fail(format!(
            "with a server that never answers, `fifo-client mute 3` must give up after 5 s \
             with status 1: wait for the reply in poll with the time left, never without a \
             timeout. {why}"
        ))
    })?;
    let secs = out.elapsed.as_secs_f64();
    ensure!(
        out.status() == 1 && (4.0..8.0).contains(&secs),
        "with a server that never answers, `fifo-client mute 3` should give up after 5 s with \
         status 1; it exited with status {} after {secs:.1} s",
        out.status()
    );
    ensure!(
        listing(&mute) == [SERVER_FIFO],
        "after `fifo-client mute 3` timed out, mute/ holds {:?}: the client must remove its reply \
         FIFO",
        listing(&mute)
    );
    // Each signal the contract names, sent while the client waits for its reply: it ends at
    // once (not at its 5 s timeout) with status 1, and removes its FIFO.
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let spec = ctx
            .bin("fifo-client")
            .args([mute.as_os_str(), "3".as_ref()]);
        let mut waiting = ctx.spawn(&spec)?;
        let started = Instant::now();
        let pid = *own_pids(waiting.pid).last().unwrap_or(&0);
        let reply = mute.join(format!("client.{pid}.fifo"));
        let outer = waiting.pid;
        ensure!(
            wait_for(PROMPT, || exists(&reply)
                && procfs::Process::read(outer)
                    .is_some_and(|s| s.stat.state == 'S')),
            "`fifo-client mute 3` never created mute/client.{pid}.fifo and waited"
        );
        let sent = Instant::now();
        waiting.signal(sig);
        let out = ctx.finish(
            &format!("`fifo-client mute 3` after {sig}"),
            &mut waiting,
            Duration::from_secs(7),
        )?;
        let after_signal = sent.elapsed();
        let lived = started.elapsed();
        ensure!(
            !exists(&reply),
            "`fifo-client mute 3`, sent {sig} while it waited for its reply, {} and left \
             mute/client.{pid}.fifo behind: on SIGINT and SIGTERM (each of them) the client must \
             remove its FIFO too: install a handler for both, without SA_RESTART, so that poll \
             fails with EINTR",
            out.ending.describe()
        );
        ensure!(
            out.ending == Ending::Exited(1),
            "`fifo-client mute 3`, sent {sig} while it waited for its reply, {} (its FIFO was \
             removed); it must exit with status 1",
            out.ending.describe()
        );
        // It waited out its own timeout if it lived about 5 s, however long the signal took
        // to arrive: that is what a poll retried after EINTR does.
        ensure!(
            lived < Duration::from_secs(4) && after_signal < Duration::from_secs(2),
            "`fifo-client mute 3`, sent {sig} while it waited for its reply, exited {} ms after \
             the signal and {:.1} s after it started: it ignored the signal and ended at its \
             5 s timeout instead of at once. poll fails with EINTR when the signal's handler \
             has run: stop waiting then (do not retry the poll), remove the FIFO and exit 1",
            after_signal.as_millis(),
            lived.as_secs_f64()
        );
    }

    // A real server and its clients; at the end only what was there before is left.
    let dir = service_dir(ctx, "svc")?;
    std::fs::write(dir.join("notes.txt"), "kept\n")?;
    let mut server = start_server(ctx, &dir)?;
    for count in [4, 1, 9] {
        client_start(ctx, &dir, count, "a client of a fresh server")?;
    }
    let out = client(ctx, &dir, "0")?;
    ensure!(
        out.status() != 0,
        "`fifo-client svc 0` should fail (a count must be 1..=1000000); it exited with status 0"
    );
    let clients_left: Vec<String> = listing(&dir)
        .into_iter()
        .filter(|n| n.starts_with("client."))
        .collect();
    ensure!(
        clients_left.is_empty(),
        "after its clients exited, svc/ still holds {clients_left:?}: each fifo-client must \
         remove its reply FIFO before it exits"
    );
    server.signal(Signal::SIGTERM);
    let ending = server.wait_until(Instant::now() + PROMPT);
    ensure!(
        ending == Some(Ending::Exited(0)),
        "fifo-server should exit with status 0 on SIGTERM; it {}",
        ending.map_or("did not exit within 5 s".into(), |e| e.describe())
    );
    ensure!(
        listing(&dir) == ["notes.txt"] && std::fs::read(dir.join("notes.txt"))? == b"kept\n",
        "after the server stopped and every client exited, svc/ holds {:?}; only notes.txt, \
         which was there before, should be left (untouched)",
        listing(&dir)
    );
    Ok(())
}
