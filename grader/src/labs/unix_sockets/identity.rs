//! Who may talk: `peer_credentials` (a client of another uid is denied by the bus, and
//! admitted with `--allow`) and `fd_other_uid` (an open file reaches a user who could not
//! open it). Both need root, to act as another user.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessage, MsgFlags, getsockopt, sendmsg, sockopt};

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
        "with --allow 65534, after a client of the bus's own uid connected",
    )
    .map_err(|Fail(why)| {
        Fail(format!(
            "{why}. --allow adds uids to the server's own: the bus's own uid is always admitted"
        ))
    })?;
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

/// `fd-client` run as uid 65534 copies mode-0600 files it cannot open itself, through a
/// descriptor passed with SCM_RIGHTS: first one of the student's uid that the student's
/// `fd-server` opened, then one owned by root that the grader's own sender opened (the
/// student's programs never run as root, so only the grader can open that one).
pub(super) fn fd_other_uid(ctx: &mut Ctx) -> CheckResult {
    ctx.require_root()?;
    let shared = Shared::new(ctx, "fdpass")?;
    let secret = shared.dir.join("secret.bin");
    let data = secret_bytes(ctx);
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
    client_copies(ctx, &shared, &client, &path, &data, || {
        format!(
            "`fd-server` (your uid) opened and passed (fd-server: {})",
            match server.try_ending() {
                Some(e) => format!("{}; {}", e.describe(), stderr_of(&server)),
                None => "still running".into(),
            }
        )
    })?;
    root_file_to_nobody(ctx, &shared, &client)
}

/// Some 96 KiB of the run's random bytes and a last line: what the passed file holds.
fn secret_bytes(ctx: &mut Ctx) -> Vec<u8> {
    let mut data = ctx.random_bytes(96 * 1024 + 17);
    data.extend_from_slice(b"\nend of the secret\n");
    data
}

/// Runs `client` (the student's fd-client) as uid 65534 against the server at `path` and
/// requires exactly `data` on its stdout and exit 0. `sender` says who opened the file and
/// how that sender fared, for the message.
fn client_copies(
    ctx: &mut Ctx,
    shared: &Shared,
    client: &Path,
    path: &Path,
    data: &[u8],
    sender: impl FnOnce() -> String,
) -> CheckResult {
    let mut spec = Spec::new(client.as_os_str(), &shared.dir).args([path.as_os_str()]);
    spec.rlimits = Rlimits::untrusted(Duration::from_secs(30));
    spec.cap = 1 << 20;
    spec.user = Some(NOBODY);
    let what = format!("`fd-client {}` (as uid 65534)", shown(path));
    let out = ctx.run(&what, &spec, Duration::from_secs(10))?;
    if out.status() != 0 || out.stdout != data {
        let got = if out.stdout == data {
            "the whole file".to_string()
        } else if out.stdout.is_empty() {
            "nothing".to_string()
        } else {
            format!(
                "{} bytes that differ ({})",
                out.stdout.len(),
                testkit::compare::bytes_diff(data, &out.stdout).unwrap_or_default()
            )
        };
        let advice = if out.stderr_str().contains("cannot connect") {
            "Connecting to a UNIX socket needs write permission on its file: uid 65534 could \
             not connect, so the server's socket file must be mode 0666 (chmod it after bind, \
             whatever the umask)"
        } else {
            "The server passes its open descriptor with SCM_RIGHTS (the byte `F` and one \
             descriptor); the client must use the descriptor it receives (recvmsg with room \
             for the control message: cmsg_space!([RawFd; 1]); check MSG_CTRUNC) instead of \
             opening the file"
        };
        fail!(
            "`fd-client {}` run as uid 65534 {} and printed {got}; its stderr: {:?}. It was to \
             copy a mode-0600 file it cannot open itself, which {}. {advice}",
            shown(path),
            out.ending.describe(),
            crate::run::clip(out.stderr_str().trim(), 400),
            sender(),
        );
    }
    Ok(())
}

/// The grader, as root, opens a root-owned mode-0600 file and sends it the way the contract
/// says `fd-server` does (one message: the byte `F` with the descriptor attached) to the one
/// client that connects; the student's `fd-client`, run as uid 65534, must copy it.
fn root_file_to_nobody(ctx: &mut Ctx, shared: &Shared, client: &Path) -> CheckResult {
    let data = secret_bytes(ctx);
    let secret = shared.dir.join("root-secret.bin");
    let file = as_root_fs(secret.clone(), data.clone())?;
    let meta = file.metadata()?;
    ensure!(
        meta.uid() == 0 && meta.mode() & 0o777 == 0o600,
        "the grader's setup is wrong: root-secret.bin is owned by uid {} with mode {:o}",
        meta.uid(),
        meta.mode() & 0o777
    );
    let refused = as_user(NOBODY, secret, |p| std::fs::File::open(p).map(drop));
    ensure!(
        refused.is_err(),
        "the grader's setup is wrong: uid 65534 can open the root-owned mode-0600 file"
    );
    let path = shared.dir.join("root-fd.sock");
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    let sender = std::thread::spawn(move || -> std::io::Result<bool> {
        let (conn, _) = listener.accept()?;
        // The grader's own unblocking connection (below, as root) is not sent anything.
        let theirs = getsockopt(&conn, sockopt::PeerCredentials)?.uid() != 0;
        if theirs {
            let fds = [file.as_raw_fd()];
            let cmsgs = [ControlMessage::ScmRights(&fds)];
            let iov = [std::io::IoSlice::new(b"F")];
            sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)?;
        }
        Ok(theirs)
    });
    let copied = client_copies(ctx, shared, client, &path, &data, || {
        "the grader, as root, opened and passed to it".into()
    });
    if !sender.is_finished() {
        // The client never connected: wake the accept so the sender thread ends.
        let _ = UnixStream::connect(&path);
    }
    let _ = sender.join();
    copied?;
    ctx.note(
        "fd-client as uid 65534 copied a mode-0600 file from fd-server, and a root-owned one \
         from the grader's own sender",
    );
    Ok(())
}

/// Writes `data` to a new file `path` of mode 0600 owned by root, and opens it read-only.
/// The check's filesystem identity is the student's; a thread of its own takes root's back
/// for this (`setfsuid` is per thread), and ends.
fn as_root_fs(path: PathBuf, data: Vec<u8>) -> std::io::Result<std::fs::File> {
    std::thread::spawn(move || {
        // SAFETY: plain system calls on integers, changing only this thread's filesystem
        // identity; the thread ends below.
        unsafe {
            libc::syscall(libc::SYS_setfsgid, 0);
            libc::syscall(libc::SYS_setfsuid, 0);
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?
            .write_all(&data)?;
        std::fs::File::open(&path)
    })
    .join()
    .map_err(|_| std::io::Error::other("the grader's root thread panicked"))?
}
