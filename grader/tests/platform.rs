//! The grader where courses run it: paths given relative to wherever a script stands, an
//! output pipe that closes early (`| head`), Ctrl-C, SIGTERM and SIGHUP in the middle of a
//! grading, and a peer program that breaks. Each ends with every result file written, the
//! exit status a shell expects, and nothing left behind: no scratch folder, no process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{copy_dir, root};
use grader::report::Report;

fn grader_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_grader"))
}

fn read_report(path: &Path) -> Report {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Waits for `child` to exit within `limit`; kills it and fails past that.
#[track_caller]
fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` until it holds; fails with `what` past `limit`.
#[track_caller]
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} within {} s",
            limit.as_secs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids of the processes running as `uid`.
fn processes_of(uid: u32) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
        let owner = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
        let zombie = status.lines().any(|l| l.starts_with("State:\tZ"));
        if owner == Some(uid) && !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// What a grading left in its temporary folder.
fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The pipes solution with a `filter` that spins at 100% CPU and never returns.
fn spinning_filter(dir: &Path) -> PathBuf {
    let sub = dir.join("spinning");
    copy_dir(&root().join("solutions/pipes/src"), &sub.join("src"));
    let f = sub.join("src/filter.rs");
    let text = std::fs::read_to_string(&f).unwrap();
    let sig = "-> io::Result<Filtered> {";
    assert!(
        text.contains(sig),
        "the solution's filter signature changed"
    );
    let spin = format!(
        "{sig}\n    #[allow(clippy::empty_loop)]\n    loop {{ std::hint::spin_loop(); }}\n    \
         #[allow(unreachable_code)]"
    );
    std::fs::write(&f, text.replacen(sig, &spin, 1)).unwrap();
    sub
}

/// `--root .` from the tree, `$GRADER_ROOT` relative to another folder, and a relative
/// submission and result file: every path is made absolute before anything starts, so the
/// jails (which start elsewhere) find them. This is how Gradescope's setup.sh grades.
#[test]
fn relative_paths_grade_as_absolute_ones() {
    let out = tempfile::tempdir().unwrap();
    let st = Command::new(grader_exe())
        .current_dir(root())
        .args(["--root", ".", "grade", "rpc", "solutions/rpc", "--quiet"])
        .args(["--only", "wire", "--json"])
        .arg(out.path().join("a.json"))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let r = read_report(&out.path().join("a.json"));
    assert!(r.gradable, "{:?}", r.error);
    assert_eq!(r.score, 15.0, "{:#?}", r.items);

    // From a folder beside the tree: the root, the submission and the report all relative.
    let up = "../".repeat(out.path().components().count() - 1);
    let rel_root = format!(
        "{up}{}",
        root().display().to_string().trim_start_matches('/')
    );
    let st = Command::new(grader_exe())
        .current_dir(out.path())
        .env("GRADER_ROOT", &rel_root)
        .args(["grade", "rpc"])
        .arg(format!("{rel_root}/solutions/rpc"))
        .args(["--quiet", "--only", "wire", "--json", "b.json"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let r = read_report(&out.path().join("b.json"));
    assert!(r.gradable, "{:?}", r.error);
    assert_eq!(r.score, 15.0, "{:#?}", r.items);
}

/// Output that closes early (`grader grade ... 2>&1 | head -3`, `grader list | head`): the
/// grading goes on silently to its end, writes its results, removes its scratch folder and
/// exits as it would have; nothing panics.
#[test]
fn closed_output_never_hangs_panics_or_loses_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(grader_exe())
        .arg("--root")
        .arg(root())
        .args(["grade", "rpc"])
        .arg(root().join("solutions/rpc"))
        .args(["--only", "wire", "--json"])
        .arg(&json)
        .env("TMPDIR", tmp.path())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let st = wait_within(
        &mut child,
        Duration::from_secs(300),
        "a grading with a closed output",
    );
    assert_eq!(st.code(), Some(0), "{st}");
    let r = read_report(&json);
    assert!(
        r.gradable && r.score == 15.0,
        "{:?} {:#?}",
        r.error,
        r.items
    );
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );

    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let list = Command::new(grader_exe())
        .arg("--root")
        .arg(root())
        .arg("list")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0));
    assert!(
        list.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
}

/// SIGINT, SIGTERM and SIGHUP while a test spins at 100% CPU: the grader stops every process
/// of the grading at once, removes its scratch folder, writes every result file as "not
/// gradable: interrupted" and exits as a shell reports the signal (128 + N).
#[test]
fn an_interrupted_grading_leaves_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let sub = spinning_filter(dir.path());
    for (sig, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (json, gs) = (dir.path().join("r.json"), dir.path().join("results.json"));
        let _ = std::fs::remove_file(&json);
        let _ = std::fs::remove_file(&gs);
        let mut child = Command::new(grader_exe())
            .arg("--root")
            .arg(root())
            .args(["grade", "pipes"])
            .arg(&sub)
            .args(["--only", "filter-basics", "--json"])
            .arg(&json)
            .arg("--gradescope")
            .arg(&gs)
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (student, _) = grader::sandbox::isolate::student_identity_of(child.id());
        wait_for(
            Duration::from_secs(300),
            "a test of the submission spinning",
            || !processes_of(student).is_empty(),
        );
        let sent = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let st = wait_within(
            &mut child,
            Duration::from_secs(10),
            "the interrupted grader",
        );
        let took = sent.elapsed();
        assert_eq!(st.code(), Some(128 + sig), "{name}: {st}");
        assert!(
            processes_of(student).is_empty(),
            "{name}: the submission's processes outlived the grader: {:?}",
            processes_of(student)
        );
        assert!(
            took < Duration::from_secs(3),
            "{name}: took {took:?} to stop"
        );
        let r = read_report(&json);
        assert!(!r.gradable, "{name}");
        let why = r.error.unwrap_or_default();
        assert!(why.contains(&format!("interrupted by {name}")), "{why}");
        let gs: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&gs).unwrap()).unwrap();
        assert!(
            gs["output"].as_str().unwrap_or("").contains("interrupted"),
            "{gs}"
        );
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{name}: {:?}",
            leftovers(tmp.path())
        );
    }
}

/// SIGTERM to `grade-all` while its second submission is being graded: the child grader
/// stops and cleans up, the finished row stays in the gradebook, the cut one is left to be
/// graded by the next run, and the batch exits 143.
#[test]
fn an_interrupted_batch_keeps_its_finished_rows() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("class");
    std::fs::create_dir_all(class.join("a-empty")).unwrap();
    let spinning = spinning_filter(dir.path());
    copy_dir(&spinning, &class.join("b-spinning"));
    let tmp = tempfile::tempdir().unwrap();
    let out = dir.path().join("grades");
    let mut child = Command::new(grader_exe())
        .arg("--root")
        .arg(root())
        .args(["grade-all", "pipes"])
        .arg(&class)
        .arg("--out")
        .arg(&out)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The second grading has a test running once a scratch folder holds a test's folder.
    wait_for(
        Duration::from_secs(600),
        "the second submission's tests running",
        || {
            out.join("a-empty.json").exists()
                && leftovers(tmp.path()).iter().any(|d| {
                    std::fs::read_dir(tmp.path().join(d).join("scratch"))
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|e| e.file_name() != "list")
                })
        },
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_within(&mut child, Duration::from_secs(30), "the interrupted batch");
    assert_eq!(st.code(), Some(143), "{st}");
    let book = std::fs::read_to_string(out.join("gradebook.csv")).unwrap();
    assert!(book.contains("\na-empty,"), "{book}");
    assert!(!book.contains("b-spinning"), "{book}");
    let cut = read_report(&out.join("b-spinning.json"));
    assert!(!cut.gradable, "the cut grading must be graded again");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

/// A peer that crashes before the student's program starts (here node, whose jayson aborts
/// as it loads, as a package too new for the machine's node does) makes the item "not
/// gradable here" with the reason: never a failure of the student's.
#[test]
fn a_peer_that_crashes_is_not_gradable_here() {
    let dir = tempfile::tempdir().unwrap();
    let jayson = dir.path().join("fixtures/npm/node_modules/jayson");
    std::fs::create_dir_all(&jayson).unwrap();
    std::fs::write(
        jayson.join("package.json"),
        r#"{"name": "jayson", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(jayson.join("index.js"), "process.abort();\n").unwrap();
    for sub in ["bins", "scratch", "peers"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let result = dir.path().join("verdict.json");
    let st = Command::new(grader_exe())
        .args([
            "__check", "--lab", "rpc", "--check", "jayson", "--seed", "1",
        ])
        .arg("--bins")
        .arg(dir.path().join("bins"))
        .arg("--scratch")
        .arg(dir.path().join("scratch"))
        .arg("--peers")
        .arg(dir.path().join("peers"))
        .arg("--fixtures")
        .arg(dir.path().join("fixtures"))
        .arg("--result")
        .arg(&result)
        .status()
        .unwrap();
    assert!(st.success(), "{st}");
    let v: grader::check::Verdict =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert!(!v.passed);
    let why = v.not_gradable_here.unwrap_or_default();
    assert!(
        why.contains("does not run on this machine") && why.contains("SIGABRT"),
        "{why} / {}",
        v.message
    );
}

/// The prefork solution whose master runs one more thread that sends `signal` to every
/// process it can see named nginx, wrk or redis-server, every 50 ms (a SIGSTOP is followed
/// by a SIGCONT 45 ms later, so that the baseline crawls).
fn prefork_attacking_peers(dir: &Path, signal: &str) -> PathBuf {
    let sub = dir.join(format!("attack-{signal}"));
    copy_dir(&root().join("solutions/prefork/src"), &sub.join("src"));
    let main = sub.join("src/bin/prefork-httpd.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    let at = "fn main() -> ExitCode {";
    assert!(text.contains(at), "prefork-httpd's main changed");
    let attack = format!(
        r#"{at}
    std::thread::spawn(|| loop {{
        let mut hit = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {{
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {{ continue }};
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if ["nginx", "wrk", "redis-server"].iter().any(|n| comm.trim().starts_with(n)) {{
                hit.push(pid);
            }}
        }}
        for &p in &hit {{ unsafe {{ libc::kill(p, libc::{signal}); }} }}
        std::thread::sleep(std::time::Duration::from_millis(45));
        for &p in &hit {{ unsafe {{ libc::kill(p, libc::SIGCONT); }} }}
        std::thread::sleep(std::time::Duration::from_millis(5));
    }});"#
    );
    std::fs::write(&main, text.replacen(at, &attack, 1)).unwrap();
    sub
}

/// A submission that stops or kills the baseline it is compared with (nginx) gets no free
/// pass: the peers run as an identity the student's cannot signal, so the comparison is the
/// honest one (prefork-httpd slower than nginx), graded, never "not gradable".
#[test]
fn a_submission_cannot_stop_or_kill_the_peers() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: peers run as the grader's own user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for signal in ["SIGSTOP", "SIGKILL"] {
        let sub = prefork_attacking_peers(dir.path(), signal);
        let json = dir.path().join(format!("{signal}.json"));
        let st = Command::new(grader_exe())
            .arg("--root")
            .arg(root())
            .args(["grade", "prefork"])
            .arg(&sub)
            .args(["--only", "vs-nginx", "--quiet", "--json"])
            .arg(&json)
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(0), "{signal}: {st}");
        let r = read_report(&json);
        let item = r.items.iter().find(|i| i.id == "vs-nginx").unwrap();
        assert!(
            item.not_gradable_here.is_none(),
            "{signal}: {}",
            item.message
        );
        let ratio: f64 = item
            .message
            .split_once("ratio ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("{signal}: no ratio in {:?}", item.message));
        assert!(
            ratio < 1.5,
            "{signal}: the baseline was slowed down: {}",
            item.message
        );
    }
}

/// A deadlocked submission (sysv-shm's `shmctr` creating its lock taken, which once took 67 s
/// to grade) has its tests' and checks' deadlines run out side by side: the grading takes
/// well under the sum of its items' times, and each item still says what the processes
/// waited for.
#[test]
fn a_deadlocked_submission_waits_out_its_deadlines_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let lab = grader::labfile::Tree::locate(Some(&root()))
        .unwrap()
        .lab("sysv-shm")
        .unwrap();
    let patch = root().join("xtask/src/bench/hangs/sysv-shm.patch");
    let m = grader::mutants::Mutant::load(&patch).unwrap();
    let sub = dir.path().join("deadlock");
    m.apply(&lab.solution, &sub).unwrap();
    let r = grader::verify::grade_with(&grader_exe(), &root(), "sysv-shm", &sub).unwrap();
    let sum: f64 = r.items.iter().map(|i| i.elapsed_ms as f64 / 1e3).sum();
    let waited = r.elapsed_s - r.timing.build_ms as f64 / 1e3;
    assert!(
        waited < 0.6 * sum,
        "the items' deadlines ran out one after another: {waited:.1} s of tests and checks for \
         {sum:.1} s of items"
    );
    for (id, _) in &m.loses {
        let item = r.items.iter().find(|i| &i.id == id).unwrap();
        assert!(!item.passed, "{id} passed");
        let check = lab.file.item(id).unwrap().kind == grader::labfile::Kind::Check;
        assert!(
            !check || item.message.contains("semtimedop") || item.message.contains("semop"),
            "{id} does not say where it waits: {}",
            item.message
        );
    }
}
