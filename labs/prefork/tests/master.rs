//! Part D: the master: N workers, a dead worker replaced at once, SIGHUP replaces every
//! worker without dropping a request, SIGTERM ends everything with status 0.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{DEADLINE, Server, Www, bin, pending, resume, state, stop, try_read_response};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Polls `cond` every 2 ms until it holds; fails the test with `why()` after [`DEADLINE`].
#[track_caller]
fn wait_for(mut cond: impl FnMut() -> bool, why: impl Fn() -> String) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "{}", why());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `prefork-httpd`'s stderr, in one line, for messages.
fn stderr_of(s: &Server) -> String {
    String::from_utf8_lossy(&s.stderr.bytes())
        .trim()
        .replace('\n', " | ")
}

/// Usage errors exit 2; a root that is not a directory exits 1 with a line.
#[test]
fn usage_errors_part_d() {
    for args in [
        vec![],
        vec!["--port", "0", "--root", "."],
        vec!["--port", "x", "--root", ".", "--workers", "2"],
        vec!["--port", "0", "--root", ".", "--workers", "0"],
        vec!["--port", "0", "--root", ".", "--workers", "65"],
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
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage"),
            "prefork-httpd {args:?}: a usage error shows the usage on stderr"
        );
    }
    let most: Vec<String> = ["--port", "0", "--root", ".", "--workers", "64"]
        .map(String::from)
        .to_vec();
    assert!(
        prefork::master::parse_args(&most).is_ok_and(|c| c.workers == 64),
        "`--workers 64` must be accepted: the contract allows 1 to 64 workers, but \
         parse_args says {:?}",
        prefork::master::parse_args(&most)
    );
    let out = testkit::run(
        bin("prefork-httpd").args(["--port", "0", "--root", "/no/such/dir", "--workers", "1"]),
        "prefork-httpd --root /no/such/dir",
        b"",
        DEADLINE,
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_one_line("--root /no/such/dir", &out.stderr);
}

/// A runtime error is one line on stderr, `prefork-httpd: <why>`.
#[track_caller]
fn assert_one_line(what: &str, stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("prefork-httpd: "),
        "prefork-httpd {what} cannot start: it must say why in one line \
         `prefork-httpd: <why>` on stderr, but it wrote {text:?}"
    );
}

/// A port another program listens on: exit 1 at once, with one line saying why.
#[test]
fn port_taken_part_d() {
    let www = Www::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let root = www.root();
    let out = testkit::run(
        bin("prefork-httpd")
            .args(["--port", &port, "--root"])
            .arg(&root)
            .args(["--workers", "2"]),
        "prefork-httpd --port TAKEN",
        b"",
        DEADLINE,
        "a port in use cannot be bound: exit 1 at once",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "prefork-httpd on a port another program listens on must exit 1 (it cannot start); \
         its stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_one_line("--port TAKEN", &out.stderr);
}

/// `--workers 64`, the most the contract allows, starts 64 workers that serve.
#[test]
fn sixty_four_workers_part_d() {
    let www = Www::new();
    let mut s = Server::start(&www.root(), 64);
    assert_eq!(s.get("/notes.txt").status, 200);
    s.group.signal(Signal::SIGTERM);
    let status = s
        .group
        .wait_or_explain(DEADLINE, "SIGTERM stops the 64 workers");
    assert_eq!(status.code(), Some(0), "exit 0 after SIGTERM");
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
    // The dead worker's slot was given back when it was reaped: the page shows 2 workers,
    // and no row of the dead one.
    let page = String::from_utf8_lossy(&s.get("/server-status").body).into_owned();
    let dead = before[0].to_string();
    assert!(
        page.lines().any(|l| l == "workers: 2")
            && !page
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(dead.as_str())),
        "worker {dead} was killed and replaced; /server-status must show the 2 workers in use \
         and no row of the dead one (the master releases a worker's slot when it reaps it, or \
         after a few replacements no slot is left for the next):\n{page}"
    );
}

/// Three workers killed at the same moment, while the master is stopped (so one SIGCHLD
/// stands for all three): the master reaps and replaces all three.
#[test]
fn replaces_workers_that_die_together_part_d() {
    let www = Www::new();
    let s = Server::start(&www.root(), 3);
    let before = s.workers();
    let master = Pid::from_raw(s.pid());
    kill(master, Signal::SIGSTOP).unwrap();
    wait_for(
        || state(s.pid()) == 'T',
        || "the master did not stop on SIGSTOP".into(),
    );
    for &w in &before {
        kill(Pid::from_raw(w), Signal::SIGKILL).unwrap();
    }
    // Dead and not reaped (the master is stopped): their SIGCHLDs are one pending signal.
    wait_for(
        || before.iter().all(|&w| state(w) == 'Z'),
        || format!("the killed workers {before:?} did not die"),
    );
    kill(master, Signal::SIGCONT).unwrap();
    let end = Instant::now() + DEADLINE;
    loop {
        let now = s.workers();
        if now.len() == 3 && !now.iter().any(|p| before.contains(p)) {
            break;
        }
        if Instant::now() > end {
            let zombies: Vec<i32> = testkit::procfs::children(s.pid())
                .into_iter()
                .filter(|p| p.state == 'Z')
                .map(|p| p.pid)
                .collect();
            panic!(
                "workers {before:?} were killed at the same moment (the master got one SIGCHLD \
                 for all of them); {} later the master has the workers {now:?} and the \
                 unreaped zombies {zombies:?}: one SIGCHLD can stand for several dead \
                 children: reap with waitpid(-1, WNOHANG) until it says none is left, and \
                 start a worker for each",
                testkit::deadline::secs(DEADLINE)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(s.get("/notes.txt").status, 200);
}

/// Waits until the master has sent SIGTERM to `worker`, stopped by [`stop`] (the signal
/// waits, pending), or killed it; `true` for SIGTERM.
#[track_caller]
fn wait_sigterm(s: &Server, worker: i32, after: &str) -> bool {
    wait_for(
        || pending(worker, Signal::SIGTERM) || matches!(state(worker), 'Z' | '-'),
        || {
            format!(
                "after {after} the master must send SIGTERM to its old worker {worker}, but it \
                 never did; its workers are {:?}",
                s.workers()
            )
        },
    );
    pending(worker, Signal::SIGTERM)
}

/// SIGHUP while a request is half sent: its worker gets SIGTERM and still answers that
/// request (with `Connection: close`), and afterwards every worker is a new one.
#[test]
fn sighup_replaces_workers_gracefully_part_d() {
    let www = Www::new();
    let s = Server::start(&www.root(), 2);
    let before = s.workers();
    let mut c = s.connect();
    c.write_all(b"GET /4k.bin HTTP/1.1\r\nHost: x\r\n").unwrap();
    s.wait_read(&c, "the first half of a request");
    // Wait until a worker shows it is reading this request.
    let end = Instant::now() + DEADLINE;
    while !s.any_worker_in("reading") {
        assert!(
            Instant::now() < end,
            "with a request half sent, /server-status should show a worker `reading`"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Stopped, the worker keeps SIGTERM pending until the rest of the request is there:
    // the signal always comes before the end of the request.
    let holder = s.holder(&c);
    stop(holder);
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
    wait_sigterm(&s, holder, "SIGHUP");
    let sent = c.write_all(b"\r\n");
    resume(holder);
    if let Err(e) = sent {
        panic!("the server closed the connection of a request half sent when SIGHUP came ({e})");
    }
    let r = try_read_response(&mut c, "a request half sent when SIGHUP came", true).unwrap_or_else(
        |why| {
            panic!(
                "a request sent in two parts, SIGHUP coming between them, was not answered: \
                 {why}. If the server closed the connection, its worker was killed or stopped \
                 without finishing it (SIGHUP sends the old workers SIGTERM, and a worker \
                 finishes the request it reads); if it answered nothing, the worker lost the \
                 first part of the request (keep what a read brings until the head is whole)"
            )
        },
    );
    assert_eq!(
        r.status, 200,
        "a request in progress at SIGHUP must be answered by its old worker"
    );
    if r.header("connection") != Some("close") {
        panic!(
            "the request half sent when SIGHUP came was answered with `Connection: {}`: {}",
            r.header("connection").unwrap_or("(none)"),
            if pending(holder, Signal::SIGTERM) {
                format!(
                    "its worker {holder} still has the master's SIGTERM pending, so the signal \
                     never got in. A worker keeps SIGTERM blocked except while it waits (ppoll \
                     with a mask that lets it in), and answers the request in hand with \
                     `Connection: close` once it got it"
                )
            } else {
                "a worker that got SIGTERM while it read a request answers it with \
                 `Connection: close`"
                    .to_string()
            }
        );
    }
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

/// How soon an idle server must be gone after SIGTERM: its workers have nothing to finish
/// (the master's 5 s grace is for requests in progress).
const IDLE_STOP: Duration = Duration::from_secs(2);

/// SIGTERM to an idle server: the master exits 0 at once and no worker is left.
#[test]
fn sigterm_stops_everything_part_d() {
    let www = Www::new();
    let mut s = Server::start(&www.root(), 2);
    let workers = s.workers();
    assert_eq!(s.get("/notes.txt").status, 200);
    // Every worker back to waiting for a connection.
    wait_for(
        || workers.iter().all(|&w| state(w) == 'S'),
        || {
            format!(
                "the workers {workers:?} did not go back to sleep after one request (their \
                 states: {:?}): an idle worker blocks in poll or accept until a connection \
                 comes, it never spins",
                workers.iter().map(|&w| state(w)).collect::<String>()
            )
        },
    );
    let sent = Instant::now();
    s.group.signal(Signal::SIGTERM);
    let status = s.group.wait_or_explain(
        DEADLINE,
        "on SIGTERM the master stops its workers and exits 0",
    );
    let took = sent.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "prefork-httpd must exit 0 after SIGTERM"
    );
    assert!(
        took < IDLE_STOP,
        "prefork-httpd exited {:.1} s after SIGTERM although its workers were idle (at most \
         {} allowed): an idle worker must stop at once, so SIGTERM must get in while it waits \
         (ppoll with a mask that lets SIGTERM in); a master that waits its whole 5 s grace \
         and then kills the workers took as long as this",
        took.as_secs_f64(),
        testkit::deadline::secs(IDLE_STOP)
    );
    for w in workers {
        assert!(
            testkit::procfs::stat(w).is_none_or(|p| p.state == 'Z'),
            "worker {w} still runs after the master exited"
        );
    }
}

/// A terminal sends SIGHUP and SIGINT to the whole process group: the workers ignore both,
/// so the request each holds is still answered; on SIGHUP the master replaces its workers,
/// on SIGINT it stops as on SIGTERM (exit 0, no worker left).
#[test]
fn terminal_signals_to_the_group_part_d() {
    let www = Www::new();
    let mut s = Server::start(&www.root(), 2);
    let group = Pid::from_raw(s.pid());
    let half = b"GET /notes.txt HTTP/1.1\r\nHost: x\r\n";

    let before = s.workers();
    let mut c = s.connect();
    c.write_all(half).unwrap();
    s.wait_read(&c, "the first half of a request");
    let holder = s.holder(&c);
    stop(holder);
    killpg(group, Signal::SIGHUP).unwrap();
    wait_for(
        || s.workers().iter().filter(|p| !before.contains(p)).count() == 2,
        || {
            format!(
                "after SIGHUP to the whole group the master should have 2 new workers; it has \
                 {:?} (before: {before:?}); stderr: {}",
                s.workers(),
                stderr_of(&s)
            )
        },
    );
    wait_sigterm(&s, holder, "SIGHUP");
    let sent = c.write_all(b"\r\n").map_err(|e| e.to_string());
    resume(holder);
    let answered =
        sent.and_then(|()| try_read_response(&mut c, "a request held when SIGHUP came", true));
    match answered {
        Ok(r) => assert_eq!(
            (r.status, r.header("connection")),
            (200, Some("close")),
            "the request a worker held when SIGHUP reached the group must be answered 200 \
             with `Connection: close` (the master asked its worker to stop)"
        ),
        Err(why) => panic!(
            "after SIGHUP to the whole process group (as a terminal sends it) the request a \
             worker was reading, sent in two parts, was not answered: {why}. If the server \
             closed the connection, the worker died of SIGHUP: workers must ignore SIGHUP \
             and SIGINT (only the master acts on them; a worker stops when the master sends \
             it SIGTERM). If it answered nothing, the worker lost the first part of the \
             request (keep what a read brings until the head is whole)"
        ),
    }
    drop(c);
    let fresh = s.workers();
    wait_for(
        || s.workers().iter().all(|p| !before.contains(p)),
        || {
            format!(
                "the old workers {before:?} must exit; the workers are {:?}",
                s.workers()
            )
        },
    );

    let mut c = s.connect();
    c.write_all(half).unwrap();
    s.wait_read(&c, "the first half of a request");
    let holder = s.holder(&c);
    stop(holder);
    killpg(group, Signal::SIGINT).unwrap();
    wait_for(
        || pending(holder, Signal::SIGTERM) || s.group.exited_within(Duration::ZERO),
        || {
            format!(
                "after SIGINT to the whole group the master must stop its workers with \
                 SIGTERM, but worker {holder} never got one; the workers are {:?}",
                s.workers()
            )
        },
    );
    if s.group.exited_within(Duration::ZERO) {
        let status = s.group.wait_timeout(Duration::ZERO).unwrap();
        panic!(
            "prefork-httpd ended at once on SIGINT ({status}) while a worker still held a \
             request, and left its workers {fresh:?} behind: the master must take SIGINT as it \
             takes SIGTERM (block it with the others and read it from the signalfd)"
        );
    }
    let sent = c.write_all(b"\r\n").map_err(|e| e.to_string());
    resume(holder);
    let answered =
        sent.and_then(|()| try_read_response(&mut c, "a request held when SIGINT came", true));
    match answered {
        Ok(r) => assert_eq!(
            (r.status, r.header("connection")),
            (200, Some("close")),
            "the request a worker held when SIGINT reached the group must be answered 200 \
             with `Connection: close`"
        ),
        Err(why) => panic!(
            "after SIGINT to the whole process group (Ctrl-C in a terminal) the request a \
             worker was reading, sent in two parts, was not answered: {why}. If the server \
             closed the connection, the worker died of SIGINT: workers must ignore SIGINT \
             (the master stops them with SIGTERM, and they finish the request in hand). If \
             it answered nothing, the worker lost the first part of the request"
        ),
    }
    let status = s
        .group
        .wait_or_explain(DEADLINE, "on SIGINT the master stops like on SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "prefork-httpd must exit 0 after SIGINT, as after SIGTERM"
    );
    for w in fresh {
        assert!(
            matches!(state(w), 'Z' | '-'),
            "worker {w} still runs after the master exited on SIGINT"
        );
    }
}
