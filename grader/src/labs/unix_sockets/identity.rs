//! Who may talk: `peer_credentials` (a client of another uid is denied by the bus, and
//! admitted with `--allow`) and `fd_other_uid` (an open file reaches a user who could not
//! open it). Both need root, to act as another user.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use super::PROMPT;
use super::harness::{
    NOBODY, NoLine, Peer, Shared, as_user, connect_as, me, server_state, shown, start_bus,
    start_ready, stderr_of, wait_logged,
};
use crate::check::{CheckResult, Ctx, Fail};
use crate::sandbox::{Rlimits, Spec};
use crate::{ensure, fail};

/// A client of uid 65534 gets `denied\n` and is closed, with a log line; the bus's own uid
/// still talks. With `--allow 65534` the same client joins and talks both ways.
pub(super) fn peer_credentials(ctx: &mut Ctx) -> CheckResult {
    ctx.require_root()?;
    let shared = Shared::new(ctx, "creds")?;
    let path = shared.dir.join("bus.sock");
    let mut bus = start_bus(ctx, &path, &[])?;
    let mut own = Peer::connect(ctx, &path)?;
    wait_logged(
        &mut bus,
        me(),
        "joined",
        1,
        "after a client of the bus's own uid connected",
    )?;
    let stranger = connect_as(&path, NOBODY).map_err(|e| {
        Fail(format!(
            "a client of uid 65534 could not even connect to {} ({e}): the socket file must be \
             mode 0666, so that the bus itself decides who is admitted (SO_PEERCRED)",
            shown(&path)
        ))
    })?;
    let mut stranger = Peer::from(stranger);
    let (said, closed) = stranger.until_closed(Instant::now() + PROMPT);
    let said = String::from_utf8_lossy(&said).into_owned();
    ensure!(
        said == "denied\n" && closed,
        "a client of uid 65534 connected to `uds-bus {}` (run as another uid, with no \
         --allow): it must receive exactly `denied\\n` and then be closed, but it received \
         {said:?}{}. Read the peer's uid with getsockopt(SO_PEERCRED) right after accept, \
         and admit only the server's own uid and those of --allow",
        shown(&path),
        if closed {
            String::new()
        } else {
            format!(" and the connection stayed open for {} s", PROMPT.as_secs())
        }
    );
    wait_logged(
        &mut bus,
        me(),
        "denied",
        1,
        "after a client of uid 65534 was denied",
    )?;
    let denied_line = String::from_utf8_lossy(&bus.stderr().0)
        .lines()
        .find(|l| l.contains(") denied"))
        .unwrap_or_default()
        .to_owned();
    ensure!(
        denied_line.contains("(uid 65534)"),
        "uds-bus logged {denied_line:?} for the client of uid 65534; the line must be \
         `uds-bus: client PID (uid 65534) denied`, with the uid from SO_PEERCRED"
    );
    // The own-uid client is still served.
    let mut second = Peer::connect(ctx, &path)?;
    wait_logged(
        &mut bus,
        me(),
        "joined",
        2,
        "after a second client of the bus's own uid connected",
    )?;
    own.send(b"still here\n")?;
    match second.line(Instant::now() + PROMPT) {
        Ok(l) if l == b"still here\n" => {}
        other => fail!(
            "after denying a client of uid 65534, the bus must go on serving its own uid, but \
             a line between two such clients did not arrive ({other:?}); {}",
            server_state(&mut bus)
        ),
    }
    drop((own, second));

    // Now with --allow 65534, on another socket.
    let path = shared.dir.join("open.sock");
    let mut bus = start_bus(ctx, &path, &["--allow", "65534"])?;
    let mut own = Peer::connect(ctx, &path)?;
    wait_logged(
        &mut bus,
        me(),
        "joined",
        1,
        "after a client of the bus's own uid connected",
    )?;
    let mut guest = Peer::from(connect_as(&path, NOBODY)?);
    wait_logged(
        &mut bus,
        me(),
        "joined",
        2,
        "with --allow 65534, after a client of uid 65534 connected",
    )?;
    guest.send(b"hello from 65534\n")?;
    let got = own.line(Instant::now() + PROMPT);
    ensure!(
        matches!(&got, Ok(l) if l == b"hello from 65534\n"),
        "with --allow 65534, a client of uid 65534 must be admitted like any other: its line \
         did not reach the other client ({got:?}); {}",
        server_state(&mut bus)
    );
    own.send(b"hello from the owner\n")?;
    let got = guest.line(Instant::now() + PROMPT);
    ensure!(
        matches!(&got, Ok(l) if l == b"hello from the owner\n"),
        "with --allow 65534, the client of uid 65534 did not receive the other client's line \
         ({})",
        match got {
            Ok(l) => format!("it got {:?}", String::from_utf8_lossy(&l)),
            Err(NoLine::Closed) => "the bus closed its connection".into(),
            Err(e) => format!("{e:?}"),
        }
    );
    Ok(())
}

/// `fd-client` run as uid 65534 copies a mode-0600 file of the server's uid, which it cannot
/// open itself, through the descriptor `fd-server` passes.
pub(super) fn fd_other_uid(ctx: &mut Ctx) -> CheckResult {
    ctx.require_root()?;
    let shared = Shared::new(ctx, "fdpass")?;
    let secret = shared.dir.join("secret.bin");
    let mut data = ctx.random_bytes(96 * 1024 + 17);
    data.extend_from_slice(b"\nend of the secret\n");
    std::fs::write(&secret, &data)?;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
    // The other user really cannot open it: the point of the scenario.
    let refused = as_user(NOBODY, secret.clone(), |p| std::fs::File::open(p).map(drop));
    ensure!(
        refused.is_err(),
        "the grader's setup is wrong: uid 65534 can open the mode-0600 file itself"
    );
    // fd-client must be reachable by the other user: a copy in the shared folder.
    let original = ctx
        .bins
        .get("fd-client")
        .cloned()
        .ok_or_else(|| Fail("the grader has no fd-client binary".into()))?;
    let client = shared.dir.join("fd-client");
    std::fs::copy(&original, &client)?;
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755))?;
    let path = shared.dir.join("fd.sock");
    let spec = ctx
        .bin("fd-server")
        .args([path.as_os_str(), secret.as_os_str()]);
    let mut server = start_ready(ctx, &spec, "fd-server fd.sock secret.bin")?;
    let mut spec = Spec::new(client.as_os_str(), &shared.dir).args([path.as_os_str()]);
    spec.rlimits = Rlimits::untrusted(Duration::from_secs(30));
    spec.cap = 1 << 20;
    spec.user = Some(NOBODY);
    let out = ctx.run(
        "`fd-client fd.sock` (as uid 65534)",
        &spec,
        Duration::from_secs(10),
    )?;
    if out.status() != 0 || out.stdout != data {
        let got = if out.stdout == data {
            "the whole file".to_string()
        } else {
            format!(
                "{} bytes that differ ({})",
                out.stdout.len(),
                testkit::compare::bytes_diff(&data, &out.stdout).unwrap_or_default()
            )
        };
        fail!(
            "`fd-client fd.sock` run as uid 65534, which cannot open the mode-0600 file that \
             `fd-server` (your uid) opened, {} and printed {got}; its stderr: {:?}. The server \
             must pass its open descriptor with SCM_RIGHTS (sendmsg) and the client use the \
             descriptor it receives (recvmsg with room for the control message: \
             cmsg_space!([RawFd; 1]); check MSG_CTRUNC) instead of opening the file. \
             fd-server: {}",
            out.ending.describe(),
            crate::run::clip(out.stderr_str().trim(), 400),
            match server.try_ending() {
                Some(e) => format!("{}; {}", e.describe(), stderr_of(&server)),
                None => "still running".into(),
            }
        );
    }
    Ok(())
}
