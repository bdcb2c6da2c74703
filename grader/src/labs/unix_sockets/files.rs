//! The servers' lives and their peers: `socket_files` (stale replaced, live refused, mode,
//! removal on SIGTERM and SIGINT), `foreign_clients` (socat and Python as clients) and
//! `idle_cpu`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::PROMPT;
use super::harness::{
    Peer, me, server_state, shown, start_bus, start_ready, stderr_of, stop, wait_logged,
};
use crate::check::{CheckResult, Ctx, Fail};
use crate::sandbox::{Ending, Input, Proc, Spec};
use crate::{ensure, fail};

/// Two clients of `bus` on `path` exchange a line; `when` says what happened before.
fn exchange(ctx: &Ctx, bus: &mut Proc, path: &Path, joined: usize, when: &str) -> CheckResult {
    let mut a = Peer::connect(ctx, path)?;
    wait_logged(bus, me(), "joined", joined + 1, when)?;
    let mut b = Peer::connect(ctx, path)?;
    wait_logged(bus, me(), "joined", joined + 2, when)?;
    a.send(b"ping\n")?;
    match b.line(Instant::now() + PROMPT) {
        Ok(l) if l == b"ping\n" => Ok(()),
        other => fail!(
            "{when}, a line between two clients did not arrive ({other:?}); {}",
            server_state(bus)
        ),
    }
}

/// The mode of the socket file at `path`, or why it is not one.
fn socket_mode(path: &Path) -> Result<u32, String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => Ok(m.mode() & 0o7777),
        Ok(_) => Err(format!("{} is not a socket file", shown(path))),
        Err(_) => Err(format!("there is no {}", shown(path))),
    }
}

/// A stale socket file is replaced; a second bus on a live one exits 1 with the contract's
/// line and leaves it alone; the file is mode 0666; SIGTERM and SIGINT close every client,
/// remove the file, exit 0. fd-server's socket file too, on SIGTERM and on SIGINT.
pub(super) fn socket_files(ctx: &mut Ctx) -> CheckResult {
    let path = ctx.scratch.join("bus.sock");
    // A stale socket: bound, then its listener closed, as a server killed with SIGKILL
    // leaves it.
    drop(UnixListener::bind(&path)?);
    let spec = ctx.bin("uds-bus").args([path.as_os_str()]);
    let mut p = ctx.spawn(&spec)?;
    let ready = p.wait_stdout(Instant::now() + PROMPT, |o| {
        o.split(|&b| b == b'\n').any(|l| l == b"ready")
    });
    if !ready {
        let what = match p.try_ending() {
            Some(e) => format!("{}; {}", e.describe(), stderr_of(&p)),
            None => format!("printed no `ready` within {} s", PROMPT.as_secs()),
        };
        fail!(
            "a stale bus.sock was left by a server that died (connecting to it fails with \
             ECONNREFUSED), and `uds-bus bus.sock` {what}. A stale socket file must be \
             removed and bound again; only a live one (connect succeeds) means another server"
        );
    }
    let mut bus = p;
    exchange(
        ctx,
        &mut bus,
        &path,
        0,
        "after uds-bus replaced a stale socket file",
    )?;
    match socket_mode(&path) {
        Ok(0o666) => {}
        Ok(mode) => fail!(
            "bus.sock has mode {mode:o}; it must be 666: every user may connect (connecting \
             needs write permission), and the bus decides with SO_PEERCRED. bind() applies \
             the umask: chmod the file after bind"
        ),
        Err(why) => fail!("while uds-bus runs, {why}"),
    }

    // A live one.
    let spec = ctx.bin("uds-bus").args([path.as_os_str()]);
    let second = ctx.run(
        "a second `uds-bus bus.sock`",
        &spec,
        Duration::from_secs(10),
    )?;
    let expected = format!("uds-bus: {}: a server is already listening", path.display());
    ensure!(
        second.status() == 1 && second.stderr_str().trim_end() == expected,
        "a second `uds-bus bus.sock` while the first one serves {} with stderr {:?}; expected \
         exit status 1 and the one line {expected:?}",
        second.ending.describe(),
        crate::run::clip(second.stderr_str().trim(), 300)
    );
    ensure!(
        socket_mode(&path).is_ok(),
        "a second uds-bus that found a live server removed its socket file: leave a live \
         server's file alone"
    );
    let joined = super::harness::logged(&bus, me(), "joined");
    exchange(
        ctx,
        &mut bus,
        &path,
        joined,
        "after a second uds-bus was refused",
    )?;

    // SIGTERM, then SIGINT on a new bus.
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let n = super::harness::logged(&bus, me(), "joined");
        let mut client = Peer::connect(ctx, &path)?;
        wait_logged(&mut bus, me(), "joined", n + 1, &format!("before {sig}"))?;
        let ending = stop(&mut bus, sig);
        ensure!(
            ending == Some(Ending::Exited(0)),
            "after {sig}, uds-bus {}; it must close every client, remove its socket file and \
             exit 0 (block the signal and read it from a signalfd in the poll loop)",
            ending.map_or(
                format!("was still running {} s later", PROMPT.as_secs()),
                |e| format!("{}; {}", e.describe(), stderr_of(&bus))
            )
        );
        let (_, closed) = client.until_closed(Instant::now() + PROMPT);
        ensure!(
            closed,
            "after {sig} and uds-bus's exit, a client's connection is still open"
        );
        ensure!(
            socket_mode(&path).is_err(),
            "after {sig}, uds-bus exited but left bus.sock behind: remove (unlink) the socket \
             file when the server stops; the kernel never does"
        );
        if sig == Signal::SIGTERM {
            bus = start_bus(ctx, &path, &[])?;
        }
    }

    // fd-server: mode 0666 too, and removed on SIGTERM.
    let file = ctx.scratch.join("served.txt");
    std::fs::write(&file, "served\n")?;
    let fd_path = ctx.scratch.join("fd.sock");
    let spec = ctx
        .bin("fd-server")
        .args([fd_path.as_os_str(), file.as_os_str()]);
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = start_ready(ctx, &spec, "fd-server fd.sock served.txt")?;
        match socket_mode(&fd_path) {
            Ok(0o666) => {}
            Ok(mode) => fail!("fd-server's fd.sock has mode {mode:o}; it must be 666"),
            Err(why) => fail!("while fd-server runs, {why}"),
        }
        let ending = stop(&mut server, sig);
        ensure!(
            ending == Some(Ending::Exited(0)) && socket_mode(&fd_path).is_err(),
            "after {sig}, fd-server {} and {}: on SIGTERM and on SIGINT it must remove its \
             socket file and exit 0 (poll its signalfd with the listening socket)",
            ending.map_or(
                format!("was still running {} s later", PROMPT.as_secs()),
                |e| format!("{}; {}", e.describe(), stderr_of(&server))
            ),
            if socket_mode(&fd_path).is_err() {
                "fd.sock is gone"
            } else {
                "fd.sock is still there"
            }
        );
    }
    Ok(())
}

/// socat and Python's socket module talk through the bus with each other.
pub(super) fn foreign_clients(ctx: &mut Ctx) -> CheckResult {
    let socat = ctx.tool("socat", "socat")?;
    let python = ctx.tool("python3", "python3")?;
    let path = ctx.scratch.join("bus.sock");
    let mut bus = start_bus(ctx, &path, &[])?;
    let mut spec = Spec::new(socat.as_os_str(), &ctx.scratch).args([
        "-t".as_ref(),
        "5".as_ref(),
        "-".as_ref(),
        format!("UNIX-CONNECT:{}", path.display()).as_ref() as &std::ffi::OsStr,
    ]);
    spec.user = ctx.student;
    spec.input = Input::Pipe;
    let mut socat = ctx.spawn(&spec)?;
    wait_logged(
        &mut bus,
        socat.pid,
        "joined",
        1,
        "after `socat - UNIX-CONNECT:bus.sock` connected",
    )?;
    // Python sends a line in two pieces, then waits for socat's line and prints it.
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"from py")
s.sendall(b"thon\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("the bus closed the connection")
    buf += chunk
sys.stdout.write(buf.decode())
"#;
    let mut spec = Spec::new(python.as_os_str(), &ctx.scratch).args([
        "-c".as_ref(),
        script.as_ref(),
        path.as_os_str(),
    ]);
    spec.user = ctx.student;
    let mut py = ctx.spawn(&spec)?;
    let heard = socat.wait_stdout(Instant::now() + PROMPT, |o| o.ends_with(b"\n"));
    let socat_got = String::from_utf8_lossy(&socat.stdout().0).into_owned();
    ensure!(
        heard && socat_got == "from python\n",
        "a Python client (socket module) sent \"from python\\n\" in two pieces, and the socat \
         client received {socat_got:?}; {}",
        server_state(&mut bus)
    );
    if let Some(stdin) = socat.stdin() {
        use std::io::Write as _;
        stdin
            .write_all(b"from socat\n")
            .map_err(|e| Fail(format!("the grader could not write to socat's stdin: {e}")))?;
        stdin.flush()?;
    }
    let out = ctx.finish("the Python client", &mut py, Duration::from_secs(10))?;
    ensure!(
        out.status() == 0 && out.stdout_str() == "from socat\n",
        "socat's line \"from socat\\n\" did not reach the Python client: it {} and printed \
         {:?} (stderr {:?})",
        out.ending.describe(),
        out.stdout_str(),
        crate::run::clip(out.stderr_str().trim(), 300)
    );
    Ok(())
}

/// Idle, with clients connected, uds-bus and fd-server use no CPU.
pub(super) fn idle_cpu(ctx: &mut Ctx) -> CheckResult {
    let path = ctx.scratch.join("bus.sock");
    let mut bus = start_bus(ctx, &path, &[])?;
    let mut a = Peer::connect(ctx, &path)?;
    wait_logged(&mut bus, me(), "joined", 1, "after a client connected")?;
    let mut b = Peer::connect(ctx, &path)?;
    wait_logged(
        &mut bus,
        me(),
        "joined",
        2,
        "after a second client connected",
    )?;
    a.send(b"one line before the quiet\n")?;
    let got = b.line(Instant::now() + PROMPT);
    ensure!(
        matches!(&got, Ok(l) if l == b"one line before the quiet\n"),
        "a line between two clients did not arrive ({got:?}); {}",
        server_state(&mut bus)
    );
    let file = ctx.scratch.join("served.txt");
    std::fs::write(&file, "served\n")?;
    let fd_path = ctx.scratch.join("fd.sock");
    let spec = ctx
        .bin("fd-server")
        .args([fd_path.as_os_str(), file.as_os_str()]);
    let server = start_ready(ctx, &spec, "fd-server fd.sock served.txt")?;
    // The one timed wait: idleness is the absence of events, so it takes a stretch of time.
    testkit::cpu::check_idle(
        &[bus.pid, server.pid],
        Duration::from_secs(1),
        0.05,
        "A server waits in poll() with no timeout on every socket and the signalfd; it asks \
         for POLLOUT only for a client whose buffer holds bytes (a socket with room is always \
         writable, so asking for POLLOUT otherwise wakes poll at once, again and again)",
    )
    .map_err(|why| Fail(format!("with two idle clients connected, {why}")))?;
    Ok(())
}
