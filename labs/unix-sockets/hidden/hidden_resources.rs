//! Hidden tests: descriptor passing and binding leak nothing however often they are called,
//! and every socket file the lab creates has mode 0666.

mod common;

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Server, at, listing, socket_dir};
use testkit::Expect;
use unix_sockets::fdpass::{fetch, recv_fd, send_fd};
use unix_sockets::sock::Listener;

/// What to do about a descriptor left open.
const ADVICE: &str = "every descriptor recv_fd receives must be owned (OwnedFd) at once, so \
that it is closed on every path, and fetch must close its connection before it returns";

/// 1000 descriptors sent and received over a socketpair, each dropped: nothing left open.
#[test]
fn send_and_recv_leak_nothing_part_c() {
    let dir = socket_dir();
    let path = at(dir.path(), "f.txt");
    std::fs::write(&path, "x").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    testkit::assert_no_leak(1000, "send_fd + recv_fd", ADVICE, |_| {
        send_fd(&a, file.as_fd()).expect_success("send_fd");
        drop(recv_fd(&b).expect_success("recv_fd"));
    });
}

/// 300 failed receives (garbage with descriptors attached) leave nothing open. (300: two
/// descriptors leaked per call must not fill the table of 1024, or the leak could not be
/// counted.)
#[test]
fn refused_descriptors_leak_nothing_part_c() {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let dir = socket_dir();
    let path = at(dir.path(), "f.txt");
    std::fs::write(&path, "x").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let fds = [file.as_raw_fd(), file.as_raw_fd()];
    testkit::assert_no_leak(300, "recv_fd of two descriptors (refused)", ADVICE, |_| {
        let iov = [IoSlice::new(b"F")];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(a.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
        recv_fd(&b).expect_failure("recv_fd of two descriptors");
    });
}

/// 300 truncated receives (8 descriptors at once): the ones that fit are closed too.
#[test]
fn truncated_descriptors_leak_nothing_part_c() {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let dir = socket_dir();
    let path = at(dir.path(), "f.txt");
    std::fs::write(&path, "x").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    let fds = [file.as_raw_fd(); 8];
    testkit::assert_no_leak(
        300,
        "recv_fd of 8 descriptors (MSG_CTRUNC)",
        "with MSG_CTRUNC, the descriptors that fit were installed anyway: close them \
         (rights_in reads them from the control buffer)",
        |_| {
            let iov = [IoSlice::new(b"F")];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            sendmsg::<()>(a.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
            recv_fd(&b).expect_failure("recv_fd of 8 descriptors");
        },
    );
}

/// 1000 fetches from a server thread: no descriptor left open.
#[test]
fn fetch_leaks_nothing_part_c() {
    let dir = socket_dir();
    let file_path = at(dir.path(), "f.txt");
    std::fs::write(&file_path, "x").unwrap();
    let file = std::fs::File::open(&file_path).unwrap();
    let path = at(dir.path(), "fd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let server = std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(s) = conn {
                let _ = send_fd(&s, file.as_fd());
            }
        }
    });
    testkit::assert_no_leak(1000, "fetch", ADVICE, |_| {
        drop(fetch(&path).expect_success("fetch from a server that sends a descriptor"));
    });
    stop.store(true, Ordering::SeqCst);
    let _ = UnixStream::connect(&path);
    server.join().unwrap();
}

/// 1000 listeners bound and dropped: no descriptor and no socket file left.
#[test]
fn listener_leaks_nothing_part_b() {
    let dir = socket_dir();
    let path = at(dir.path(), "l.sock");
    testkit::assert_no_leak(
        1000,
        "Listener::bind + drop",
        "a Listener must close its socket and remove its file when dropped",
        |_| drop(Listener::bind(&path).expect_success("Listener::bind")),
    );
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "left after every Listener was dropped: a Listener must remove its file when it is \
         dropped (its Drop), whatever path drops it"
    );
}

/// 1000 buses and fd servers started and dropped: no descriptor (listener, signalfd, the
/// served file) and no socket file left.
#[test]
fn servers_leak_nothing_part_c() {
    let dir = socket_dir();
    let file = at(dir.path(), "f.txt");
    std::fs::write(&file, "x").unwrap();
    let bus = unix_sockets::bus::Config {
        path: at(dir.path(), "bus.sock"),
        allow: Vec::new(),
    };
    let fd_path = at(dir.path(), "fd.sock");
    testkit::assert_no_leak(
        1000,
        "Bus::start + FdServer::start + drop",
        "a server holds its listener, its signalfd (and the fd server its file) as owned \
         values, so that dropping it closes them all and removes its socket file",
        |_| {
            drop(unix_sockets::bus::Bus::start(&bus).expect_success("Bus::start"));
            drop(
                unix_sockets::fdpass::FdServer::start(&fd_path, &file)
                    .expect_success("FdServer::start"),
            );
        },
    );
    assert_eq!(
        listing(dir.path()),
        ["f.txt"],
        "left after every server was dropped: a server's Listener must remove its file when \
         it is dropped, not only when a stop signal comes"
    );
}

/// Listener::bind, uds-bus and fd-server all make mode 0666 socket files, whatever the
/// umask.
#[test]
fn socket_modes_part_b() {
    // Alone: the umask is the process's, and the servers' threads would look like leaks.
    let _serial = testkit::leak::serial();
    let dir = socket_dir();
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let path = at(dir.path(), "l.sock");
    let listener = Listener::bind(&path).expect_success("Listener::bind under umask 077");
    let (_, mode) = testkit::ipc::file_mode(&path).expect("no socket file after bind");
    testkit::ipc::assert_mode("the socket file of Listener::bind (umask 077)", 0o666, mode);
    drop(listener);
    nix::sys::stat::umask(old);

    let bus_path = at(dir.path(), "bus.sock");
    let _bus = Server::bus(&bus_path);
    let (_, mode) = testkit::ipc::file_mode(&bus_path).expect("uds-bus made no socket file");
    testkit::ipc::assert_mode("uds-bus's socket file", 0o666, mode);
    let file = at(dir.path(), "f.txt");
    std::fs::write(&file, "x").unwrap();
    let fd_path = at(dir.path(), "fd.sock");
    let _fd = Server::start("fd-server", &[fd_path.as_os_str(), file.as_os_str()]);
    let (_, mode) = testkit::ipc::file_mode(&fd_path).expect("fd-server made no socket file");
    testkit::ipc::assert_mode("fd-server's socket file", 0o666, mode);
}
