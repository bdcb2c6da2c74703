//! Part D: the master: N workers, a dead worker replaced at once, SIGHUP replaces every
//! worker without dropping a request, SIGTERM ends everything with status 0.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{DEADLINE, Server, Www, bin, read_response};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Usage errors exit 2; a root that is not a directory exits 1 with a line.
#[test]
fn usage_errors_part_d() {
    for args in [
        vec![],
        vec!["--port", "0", "--root", "."],
        vec!["--port", "x", "--root", ".", "--workers", "2"],
        vec!["--port", "0", "--root", ".", "--workers", "0"],
        vec![
            "--port",
            "0",
            "--root",
            ".",
            "--workers",
            "2",
            "--extra",
            "1",
        ],
    ] {
        let out = testkit::run(
            bin("prefork-httpd").args(&args),
            "prefork-httpd",
            b"",
            DEADLINE,
            "",
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "prefork-httpd {args:?} is a usage error"
        );
    }
    let out = testkit::run(
        bin("prefork-httpd").args(["--port", "0", "--root", "/no/such/dir", "--workers", "1"]),
        "prefork-httpd --root /no/such/dir",
        b"",
        DEADLINE,
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("prefork-httpd: "));
}

/// `--workers 3`: the master has 3 children.
#[test]
fn forks_n_workers_part_d() {
    let www = Www::new();
    let s = Server::start(&www.root(), 3);
    assert_eq!(s.workers().len(), 3);
    assert_eq!(s.get("/notes.txt").status, 200);
}

/// A worker killed with SIGKILL is replaced, and the server goes on serving.
#[test]
fn replaces_a_dead_worker_part_d() {
    let www = Www::new();
    let s = Server::start(&www.root(), 2);
    let before = s.workers();
    kill(Pid::from_raw(before[0]), Signal::SIGKILL).unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        let now = s.workers();
        if now.len() == 2 && !now.contains(&before[0]) {
            break;
        }
        assert!(
            Instant::now() < end,
            "worker {} was killed; the master should fork another at once (on SIGCHLD), but \
             its workers are {now:?}",
            before[0]
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    for _ in 0..4 {
        assert_eq!(s.get("/notes.txt").status, 200);
    }
}

/// SIGHUP while a request is half sent: that request is still answered, and afterwards
/// every worker is a new one.
#[test]
fn sighup_replaces_workers_gracefully_part_d() {
    let www = Www::new();
    let s = Server::start(&www.root(), 2);
    let before = s.workers();
    let mut c = s.connect();
    c.write_all(b"GET /4k.bin HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Wait until a worker shows it is reading this request.
    let end = Instant::now() + DEADLINE;
    while !s.any_worker_in("reading") {
        assert!(
            Instant::now() < end,
            "with a request half sent, /server-status should show a worker `reading`"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    kill(Pid::from_raw(s.pid()), Signal::SIGHUP).unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        let now = s.workers();
        if now.iter().filter(|p| !before.contains(p)).count() == 2 {
            break;
        }
        assert!(
            Instant::now() < end,
            "after SIGHUP there should be 2 new workers: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    if let Err(e) = c.write_all(b"\r\n") {
        panic!("the server closed the connection of a request half sent when SIGHUP came ({e})");
    }
    let r = read_response(&mut c, "a request half sent when SIGHUP came", true);
    assert_eq!(
        r.status, 200,
        "a request in progress at SIGHUP must be answered by its old worker"
    );
    let end = Instant::now() + DEADLINE;
    while s.workers().iter().any(|p| before.contains(p)) {
        assert!(
            Instant::now() < end,
            "the old workers must exit once their request is served: {:?} remain",
            s.workers()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(s.get("/notes.txt").status, 200);
}

/// SIGTERM: the master exits 0 and no worker is left.
#[test]
fn sigterm_stops_everything_part_d() {
    let www = Www::new();
    let mut s = Server::start(&www.root(), 2);
    let workers = s.workers();
    assert_eq!(s.get("/notes.txt").status, 200);
    s.group.signal(Signal::SIGTERM);
    let status = s.group.wait_or_explain(
        DEADLINE,
        "on SIGTERM the master stops its workers and exits 0",
    );
    assert_eq!(
        status.code(),
        Some(0),
        "prefork-httpd must exit 0 after SIGTERM"
    );
    for w in workers {
        assert!(
            testkit::procfs::stat(w).is_none_or(|p| p.state == 'Z'),
            "worker {w} still runs after the master exited"
        );
    }
}
