//! Part C: `send_fd`/`recv_fd` pass an open file with SCM_RIGHTS and refuse anything else
//! with a clear error; `fd-server` hands its file to every client, `fd-client` copies it.

mod common;

use std::io::{IoSlice, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use common::{Server, at, listing, socket_dir};
use nix::sys::signal::Signal;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use testkit::Expect;
use unix_sockets::fdpass::{RecvError, recv_fd, send_fd};

/// A file with `bytes` in the test's folder.
fn file_with(dir: &std::path::Path, bytes: &[u8]) -> std::fs::File {
    let path = at(dir, "data.bin");
    std::fs::write(&path, bytes).unwrap();
    std::fs::File::open(&path).unwrap()
}

/// Sends `data` with the descriptors `fds` in one message, as another program might.
fn send_raw(sock: &UnixStream, data: &[u8], fds: &[i32]) {
    let iov = [IoSlice::new(data)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).unwrap();
}

/// The received descriptor is a new one that reads the same open file.
#[test]
fn passes_an_open_file_part_c() {
    let dir = socket_dir();
    let file = file_with(dir.path(), b"the contents\n");
    let (a, b) = UnixStream::pair().unwrap();
    send_fd(&a, file.as_fd()).expect_success("send_fd over a socketpair");
    let got = recv_fd(&b).expect_success("recv_fd of what send_fd sent");
    assert_ne!(
        got.as_raw_fd(),
        file.as_raw_fd(),
        "recv_fd must return the new descriptor the kernel installed"
    );
    let mut text = String::new();
    std::fs::File::from(got).read_to_string(&mut text).unwrap();
    assert_eq!(text, "the contents\n", "what the received descriptor reads");
}

/// The received descriptor is close-on-exec (MSG_CMSG_CLOEXEC), like every descriptor
/// this lab's programs hold.
#[test]
fn received_descriptor_is_cloexec_part_c() {
    let dir = socket_dir();
    let file = file_with(dir.path(), b"x");
    let (a, b) = UnixStream::pair().unwrap();
    send_fd(&a, file.as_fd()).expect_success("send_fd");
    let got = recv_fd(&b).expect_success("recv_fd");
    let flags = nix::fcntl::fcntl(&got, nix::fcntl::FcntlArg::F_GETFD).unwrap();
    assert!(
        flags & libc::FD_CLOEXEC != 0,
        "the received descriptor must be close-on-exec: pass MSG_CMSG_CLOEXEC to recvmsg"
    );
}

/// The peer closed without sending: `RecvError::Closed`.
#[test]
fn closed_peer_part_c() {
    let (a, b) = UnixStream::pair().unwrap();
    drop(a);
    match recv_fd(&b) {
        Err(RecvError::Closed) => {}
        other => panic!("recv_fd from a peer that closed: expected Err(Closed), got {other:?}"),
    }
}

/// Data without a descriptor: `RecvError::NoDescriptor`.
#[test]
fn data_without_descriptor_part_c() {
    let (a, b) = UnixStream::pair().unwrap();
    (&a).write_all(b"F").unwrap();
    match recv_fd(&b) {
        Err(RecvError::NoDescriptor(_)) => {}
        other => {
            panic!("recv_fd of one byte with no descriptor: expected NoDescriptor, got {other:?}")
        }
    }
}

/// A descriptor with other data than `F`, or two descriptors: `RecvError::Garbage`, and no
/// descriptor stays open.
#[test]
fn garbage_part_c() {
    let dir = socket_dir();
    let file = file_with(dir.path(), b"x");
    let fd = file.as_raw_fd();
    let (a, b) = UnixStream::pair().unwrap();
    send_raw(&a, b"hello", &[fd]);
    match recv_fd(&b) {
        Err(RecvError::Garbage(_)) => {}
        other => panic!("recv_fd of \"hello\" with a descriptor: expected Garbage, got {other:?}"),
    }
    send_raw(&a, b"F", &[fd, fd]);
    match recv_fd(&b) {
        Err(RecvError::Garbage(_)) => {}
        other => panic!("recv_fd of two descriptors: expected Garbage, got {other:?}"),
    }
}

/// A receive timeout that expires: `RecvError::TimedOut`, not a hang.
#[test]
fn timeout_part_c() {
    let (_a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    match recv_fd(&b) {
        Err(RecvError::TimedOut) => {}
        other => panic!("recv_fd with a 100 ms timeout and a silent peer: got {other:?}"),
    }
}

/// fd-server hands the file to every client: each copy is byte for byte the file, and the
/// second client gets all of it too (the clients share one file offset: use pread).
#[test]
fn server_and_client_part_c() {
    let dir = socket_dir();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = at(dir.path(), "data.bin");
    std::fs::write(&file, &data).unwrap();
    let path = at(dir.path(), "fd.sock");
    let mut server = Server::start("fd-server", &[path.as_os_str(), file.as_os_str()]);
    let (_, mode) = testkit::ipc::file_mode(&path).expect("fd-server made no socket file");
    testkit::ipc::assert_mode("fd-server's socket file", 0o666, mode);
    for round in ["first", "second"] {
        let (out, _) = common::run("fd-client", &[path.as_os_str()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "the {round} fd-client: stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        testkit::assert_same_bytes(
            &format!("the {round} fd-client's stdout"),
            &data,
            &out.stdout,
        );
    }
    server.signal(Signal::SIGTERM);
    let status = server
        .wait(common::DEADLINE)
        .expect("fd-server did not exit on SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "fd-server's exit status after SIGTERM"
    );
    assert_eq!(
        listing(dir.path()),
        ["data.bin"],
        "fd-server must remove its socket file"
    );
}

/// The received descriptor works even when the file's name is gone: it is the open file,
/// not its path.
#[test]
fn file_removed_after_start_part_c() {
    let dir = socket_dir();
    let file = at(dir.path(), "gone.txt");
    std::fs::write(&file, "still readable\n").unwrap();
    let path = at(dir.path(), "fd.sock");
    let _server = Server::start("fd-server", &[path.as_os_str(), file.as_os_str()]);
    std::fs::remove_file(&file).unwrap();
    let (out, _) = common::run("fd-client", &[path.as_os_str()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "still readable\n",
        "fd-client's output after FILE's name was removed: fd-server opened FILE when it \
         started, and that open file still reads (open it once, at start, not per client); \
         fd-client's stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// fd-client with no server, or a server that sends garbage: exit 1 with a message, at once.
#[test]
fn client_errors_part_c() {
    let dir = socket_dir();
    let path = at(dir.path(), "none.sock");
    let (out, _) = common::run("fd-client", &[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "fd-client with no socket file");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("fd-client: "));

    let path = at(dir.path(), "liar.sock");
    let liar = UnixListener::bind(&path).unwrap();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = liar.accept().unwrap();
        let _ = s.write_all(b"here is your file\n");
        // Keep it open until the client is done: the client must not wait for more.
        let _ = s.read(&mut [0u8; 1]);
    });
    let (out, elapsed) = common::run("fd-client", &[path.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "fd-client against a server that sends text"
    );
    assert!(err.starts_with("fd-client: "), "stderr: {err:?}");
    assert!(
        out.stdout.is_empty(),
        "fd-client printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "fd-client took {elapsed:?} to give up on text"
    );
    // Not joined: a client that never connected would leave it waiting in accept; the
    // test's process ends it.
    drop(thread);
}

/// fd-server with a FILE it cannot open: exit 1, no socket file.
#[test]
fn server_missing_file_part_c() {
    let dir = socket_dir();
    let path = at(dir.path(), "fd.sock");
    let missing = at(dir.path(), "missing.txt");
    if let Ok(server) = Server::try_start("fd-server", &[path.as_os_str(), missing.as_os_str()]) {
        drop(server);
        panic!(
            "fd-server printed `ready` with a FILE that does not exist: it must open FILE when \
             it starts, before binding, and exit 1 with `fd-server: ...` if it cannot"
        );
    }
    let (out, _) = common::run("fd-server", &[path.as_os_str(), missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("fd-server: "));
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// The file offset is shared: a client that reads with `pread` leaves it where it was.
#[test]
fn copy_all_uses_pread_part_c() {
    let dir = socket_dir();
    let mut file = file_with(dir.path(), b"0123456789");
    let mut out = Vec::new();
    let n = unix_sockets::fdpass::copy_all(file.as_fd(), &mut out).expect_success("copy_all");
    assert_eq!((n, out.as_slice()), (10, &b"0123456789"[..]));
    assert_eq!(
        file.stream_position().unwrap(),
        0,
        "copy_all must not move the shared file offset (use pread)"
    );
}

/// More descriptors than the control buffer holds: `RecvError::Truncated` (MSG_CTRUNC).
#[test]
fn truncated_part_c() {
    let dir = socket_dir();
    let file = file_with(dir.path(), b"x");
    let fd = file.as_raw_fd();
    let (a, b) = UnixStream::pair().unwrap();
    send_raw(&a, b"F", &[fd, fd, fd, fd, fd, fd, fd, fd]);
    match recv_fd(&b) {
        Err(RecvError::Truncated) => {}
        other => panic!(
            "recv_fd of 8 descriptors at once (more than a buffer of cmsg_space!([RawFd; 1]) \
             holds): expected Err(Truncated), since the kernel sets MSG_CTRUNC, got {other:?}"
        ),
    }
}
