//! The adversarial corpus: submissions that misbehave on purpose. Each is the pipes
//! solution with hostile code at the top of `filter`, graded on one test. For each, the
//! grader finishes, the affected item scores 0 with the reason (or passes, where the attack
//! must simply not work), and nothing of the submission survives: no process, no IPC
//! object, no file outside its scratch folder, no change to the lab tree.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, root};
use grader::report::Report;

/// One hostile submission.
struct Case {
    name: &'static str,
    /// Rust statements run at the start of `filter`.
    inject: String,
    /// Extra files laid over the solution (path, contents).
    extra: Vec<(&'static str, &'static str)>,
    /// Whether the item must pass (the attack must fail silently) or fail.
    passes: bool,
    /// Words the item's message must contain when it fails.
    says: &'static [&'static str],
    /// A command-line fragment no process may carry after the grading.
    survivor: Option<&'static str>,
    /// Where the hostile code goes: the file and the line it follows.
    at: (&'static str, &'static str),
    /// The item graded, and the one test of it run (checks have none).
    item: (&'static str, Option<&'static str>),
    /// Whether it must compile (a submission that reads what it must not see at compile
    /// time does not).
    compiles: bool,
    /// Whether the item's pass or fail is part of the verdict (else only that it was graded).
    judged: bool,
    /// The grader's `--timeout`, seconds.
    timeout: u32,
}

const FILTER: (&str, &str) = ("src/filter.rs", "-> io::Result<Filtered> {");
const RUN: (&str, &str) = ("src/run.rs", "-> io::Result<Vec<i32>> {");
const ONE_TEST: (&str, Option<&str>) = (
    "filter-basics",
    Some("filter::empty_input_part_c::case_1_cat"),
);

fn case(name: &'static str, inject: &str, passes: bool, says: &'static [&'static str]) -> Case {
    Case {
        name,
        inject: inject.to_owned(),
        extra: Vec::new(),
        passes,
        says,
        survivor: None,
        at: FILTER,
        item: ONE_TEST,
        compiles: true,
        judged: true,
        timeout: 3,
    }
}

/// What a submission must never read, let alone print: the hidden tests, the solution, and
/// a file of the host outside what the jail shows. Each file with a line of it.
fn secrets() -> Vec<(PathBuf, String)> {
    let root = root();
    let host = root.join("target/adv-host-secret.txt");
    std::fs::write(&host, "adv-host-secret-4f1d9c\n").unwrap();
    let line = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::trim)
            .filter(|l| l.len() > 30 && !l.starts_with("//") && !l.starts_with("use "))
            .max_by_key(|l| l.len())
            .unwrap()
            .to_owned()
    };
    let hidden = root.join("labs/pipes/hidden/hidden_filter.rs");
    let solution = root.join("solutions/pipes/src/run.rs");
    vec![
        (hidden.clone(), line(&hidden)),
        (solution.clone(), line(&solution)),
        (host, "adv-host-secret-4f1d9c".into()),
    ]
}

/// Places of the host a submission must not change, for [`host_state`].
fn guarded_places(out: &Path) -> Vec<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    vec![
        PathBuf::from("/etc/hosts"),
        PathBuf::from("/etc"),
        PathBuf::from("/root"),
        PathBuf::from("/usr/local/bin"),
        cargo_home.join("bin"),
        out.to_owned(),
        root().join("labs/pipes/tests/filter.rs"),
        root().join("labs/pipes/lab.toml"),
    ]
}

/// A fingerprint of each place: a file's bytes; in a folder, the entries the corpus would
/// write (`adv-*`), so that other programs of the machine changing it meanwhile do not count.
fn host_state(places: &[PathBuf]) -> Vec<(PathBuf, String)> {
    places
        .iter()
        .map(|p| {
            let print = if p.is_dir() {
                let mut names: Vec<String> = std::fs::read_dir(p)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| n.starts_with("adv-"))
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                names.join(",")
            } else {
                String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
            };
            (p.clone(), print)
        })
        .collect()
}

fn corpus(out: &Path) -> Vec<Case> {
    let root = root();
    let tree = root.display();
    let out = out.display();
    let up = "../".repeat(16);
    let host_secret = root.join("target/adv-host-secret.txt");
    let host_secret = host_secret.display();
    let host_rel = host_secret.to_string().trim_start_matches('/').to_owned();
    let cargo_bin = guarded_places(Path::new("/"))[4].display().to_string();
    let fake_ok = "test empty_input_part_c::case_1_cat ... ok\\n\\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 40 filtered out; finished in 0.00s\\n";
    vec![
        case(
            "loop-forever",
            "loop { std::hint::spin_loop(); }",
            false,
            &["did not finish within 3 s", "is running"],
        ),
        case(
            "sleep-forever",
            "std::thread::sleep(std::time::Duration::from_secs(1 << 20));",
            false,
            &["did not finish within 3 s", "is sleeping"],
        ),
        case(
            "fork-bomb",
            "loop { unsafe { if libc::fork() == 0 { libc::pause(); } } }",
            false,
            &["forks without end"],
        ),
        case(
            "allocate-forever",
            "let mut hog: Vec<Vec<u8>> = Vec::new(); loop { hog.push(Vec::with_capacity(1 << 30)); }",
            false,
            &["SIGABRT"],
        ),
        Case {
            // Filling 1 GiB takes a while on a loaded machine; the memory cap, not the
            // timeout, must be what stops it.
            timeout: 60,
            ..case(
                "hog-memory",
                "let mut hog: Vec<Vec<u8>> = Vec::new(); loop { hog.push(vec![1u8; 64 << 20]); }",
                false,
                &["used more than 1024 MiB"],
            )
        },
        case(
            "flood-stdout",
            "let chunk = vec![b'x'; 1 << 20]; for _ in 0..1024 { unsafe { libc::write(1, chunk.as_ptr().cast(), chunk.len()); } }",
            false,
            &["more than the 64 KiB a test may print"],
        ),
        Case {
            survivor: Some("sleep 31337.5"),
            ..case(
                "daemon",
                r#"let _ = std::process::Command::new("sh").args(["-c", "setsid sleep 31337.5 </dev/null >/dev/null 2>&1 &"]).status();"#,
                false,
                &["still running after the test ended", "sleep"],
            )
        },
        case(
            "exit-zero",
            "std::process::exit(0);",
            false,
            &["exited with status 0 before the test harness finished"],
        ),
        case("abort", "std::process::abort();", false, &["SIGABRT"]),
        case(
            "fake-ok",
            &format!(
                "unsafe {{ let s = \"{fake_ok}\"; libc::write(1, s.as_ptr().cast(), s.len()); libc::_exit(0); }}"
            ),
            false,
            &["print test results itself"],
        ),
        case(
            "ipc-leftovers",
            r#"unsafe {
                libc::shmget(0x5eed_0001, 4096, libc::IPC_CREAT | 0o600);
                libc::semget(0x5eed_0002, 1, libc::IPC_CREAT | 0o600);
                libc::msgget(0x5eed_0003, libc::IPC_CREAT | 0o600);
                let attr: libc::mq_attr = std::mem::zeroed();
                libc::mq_open(c"/adv-leftover".as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600, std::ptr::null::<libc::mq_attr>());
                let _ = attr;
                libc::mkfifo(c"/tmp/adv-leftover.fifo".as_ptr(), 0o600);
                libc::mkfifo(c"/dev/shm/adv-leftover.fifo".as_ptr(), 0o600);
            }"#,
            false,
            &[
                "left behind",
                "shm key=0x5eed0001",
                "sem key=0x5eed0002",
                "msg key=0x5eed0003",
                "mq /adv-leftover",
            ],
        ),
        // Compile time: nothing but the handout and the submission is there to include: the
        // hidden tests by a relative path, the solution by an absolute one, a host file both
        // ways. Each of the four is an error of its own.
        Case {
            compiles: false,
            ..case(
                "include-everything",
                &format!(
                    r#"panic!("{{}}{{}}{{}}{{}}", include_str!("../tests/hidden_filter.rs"),
                    include_str!("{tree}/solutions/pipes/src/run.rs"),
                    include_str!("{host_secret}"),
                    include_str!("{up}{host_rel}"));"#
                ),
                false,
                &["couldn't read"],
            )
        },
        // Run time: the host is read-only, the tree and other gradings are out of sight, and
        // nothing outside the test's own namespaces can be signalled or traced. One
        // submission tries it all (a success panics, failing the item and naming it); the
        // user namespace comes last, as it changes what the process is.
        case(
            "escape-attempts",
            &format!(
                r#"use std::io::Write as _;
                let mut got: Vec<String> = Vec::new();
                let me = std::env::var("CARGO_BIN_EXE_pipeline").unwrap();
                for p in ["{tree}/labs/pipes/hidden/hidden_filter.rs", "{tree}/solutions/pipes/src/filter.rs", "{host_secret}"] {{
                    if std::fs::read(p).is_ok() {{ got.push(format!("read {{p}}")); }}
                }}
                for p in ["{tree}/labs/pipes/tests/filter.rs", "{tree}/grader/src/lib.rs", me.as_str(), "/etc/hosts"] {{
                    if std::fs::OpenOptions::new().append(true).open(p).and_then(|mut f| f.write_all(b"")).is_ok() {{ got.push(format!("append {{p}}")); }}
                }}
                for p in ["/root/adv-x", "/etc/adv-x", "/usr/local/bin/adv-x", "{cargo_bin}/adv-x", "{out}/adv-x", "{tree}/adv-x", "/adv-x", "/dev/adv-x"] {{
                    if std::fs::write(p, "x").is_ok() {{ got.push(format!("write {{p}}")); }}
                }}
                let here = std::env::current_dir().unwrap();
                for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {{
                    for s in std::fs::read_dir(e.path().join("scratch")).into_iter().flatten().flatten() {{
                        let p = s.path().join("adv-x");
                        if !p.starts_with(&here) && std::fs::write(&p, "x").is_ok() {{ got.push(format!("write {{}}", p.display())); }}
                    }}
                }}
                let mine = std::process::id() as i32;
                for e in std::fs::read_dir("/proc").unwrap().flatten() {{
                    let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {{ continue }};
                    if pid == mine {{ continue; }}
                    unsafe {{
                        if libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) == 0 {{ got.push(format!("ptrace {{pid}}")); }}
                        if libc::kill(pid, 0) == 0 {{ got.push(format!("signal {{pid}}")); }}
                    }}
                }}
                unsafe {{ libc::kill(-1, libc::SIGKILL); }}
                unsafe {{
                    let none = std::ptr::null::<libc::c_char>();
                    let rw = libc::MS_REMOUNT | libc::MS_BIND;
                    if libc::mount(none, c"/".as_ptr(), none, rw, std::ptr::null()) == 0 {{ got.push("remount /".into()); }}
                    if libc::mount(none, c"/etc".as_ptr(), none, rw, std::ptr::null()) == 0 {{ got.push("remount /etc".into()); }}
                    if libc::setuid(0) == 0 {{ got.push("setuid 0".into()); }}
                    // Where anyone may make a user namespace: root in there is nobody outside,
                    // and the read-only mounts stay locked.
                    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0
                        && libc::mount(none, c"/etc".as_ptr(), none, rw, std::ptr::null()) == 0
                    {{
                        got.push("remount /etc in a user namespace".into());
                    }}
                }}
                if std::fs::write("/etc/adv-remount", "x").is_ok() {{ got.push("write /etc after remounting".into()); }}
                if !got.is_empty() {{ panic!("ESCAPED {{got:?}}"); }}"#
            ),
            true,
            &[],
        ),
        Case {
            at: RUN,
            item: ("sigpipe-default", None),
            judged: false,
            ..case(
                "kill-everything-from-a-check",
                "unsafe { libc::kill(-1, libc::SIGKILL); }",
                true,
                &[],
            )
        },
        Case {
            extra: vec![
                (
                    "build.rs",
                    "fn main() { std::fs::write(\"/tmp/adv-build-rs-ran\", \"x\").unwrap(); }",
                ),
                (
                    "Cargo.toml",
                    "[package]\nname = \"pipes\"\nversion = \"0.1.0\"\nbuild = \"build.rs\"\n[dependencies]\nevil = { path = \"/nonexistent\" }\n",
                ),
            ],
            ..case("build-rs-and-manifest", "", true, &[])
        },
        // Compile time, after the cases above have been built: what an earlier grading
        // compiled is gone from the shared target folder. Its program (to run as one's own)
        // by a path relative to the build folder and by an absolute one.
        Case {
            compiles: false,
            ..case(
                "include-earlier-builds",
                &format!(
                    r#"panic!("{{}}{{}}", include_bytes!("../../../labs/debug/pipeline").len(),
                    include_bytes!("{tree}/target/grader/labs/debug/pipeline").len());"#
                ),
                false,
                &["couldn't read"],
            )
        },
    ]
}

fn submission(dir: &Path, c: &Case) -> PathBuf {
    let sub = dir.join(c.name);
    copy_dir(&root().join("solutions/pipes/src"), &sub.join("src"));
    let (file, sig) = c.at;
    let f = sub.join(file);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains(sig), "{file} no longer has `{sig}`");
    let hostile = format!(
        "{sig}\n    #[allow(unreachable_code, clippy::all)]\n    {{ {} }}\n",
        c.inject
    );
    std::fs::write(&f, text.replacen(sig, &hostile, 1)).unwrap();
    for (path, contents) in &c.extra {
        std::fs::write(sub.join(path), contents).unwrap();
    }
    sub
}

/// The shell wrapper each grading runs in, as root: a PID namespace of its own, so that a
/// regression that lets `kill(-1, SIGKILL)` out ends that grading, not the test runner or
/// CI, and a sentinel process beside the grader whose death says it happened.
const SENTINEL: &str = r#"sleep 3600 & s=$!; "$@"; st=$?; kill -0 $s 2>/dev/null || echo ADV-SENTINEL-KILLED >&2; kill $s; exit $st"#;

/// Grades `sub` for `c`: the report, its JSON text and the grader's stderr.
fn grade(sub: &Path, c: &Case) -> (Report, String, String) {
    let dir = sub.parent().unwrap();
    let json = dir.join(format!(
        "{}.json",
        sub.file_name().unwrap().to_string_lossy()
    ));
    let own_pid_ns = nix::unistd::geteuid().is_root()
        && std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success());
    let mut cmd = if own_pid_ns {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "sh",
            "-c",
        ])
        .args([SENTINEL, "sh"]);
        cmd
    } else {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", SENTINEL, "sh"]);
        cmd
    };
    cmd.arg(env!("CARGO_BIN_EXE_grader"))
        .arg("--root")
        .arg(root())
        .args(["grade", "pipes"])
        .arg(sub)
        .args(["--only", c.item.0]);
    if let Some(test) = c.item.1 {
        cmd.args(["--test", test]);
    }
    let out = cmd
        .args(["--timeout", &c.timeout.to_string(), "--quiet", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text =
        std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    (serde_json::from_str(&text).unwrap(), text, stderr)
}

/// Every System V object key on the machine (this IPC namespace).
fn sysv_keys() -> Vec<String> {
    ["shm", "sem", "msg"]
        .iter()
        .flat_map(|k| {
            std::fs::read_to_string(format!("/proc/sysvipc/{k}"))
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn survivors(fragment: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .filter(|c| c.contains(fragment))
        .collect()
}

/// Each hostile submission is contained: the grader finishes, scores it for the reason, and
/// leaves nothing behind.
#[test]
fn hostile_submissions_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    // What `grade-all` would use as its output folder.
    let out = dir.path().join("grades");
    std::fs::create_dir_all(&out).unwrap();
    let secrets = secrets();
    let places = guarded_places(&out);
    let host_before = host_state(&places);
    let cases = corpus(&out);
    let mut failures = Vec::new();
    for pair in cases.chunks(2) {
        let reports: Vec<(&Case, (Report, String, String))> = std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|c| (c, s.spawn(|| grade(&submission(dir.path(), c), c))))
                .collect();
            handles
                .into_iter()
                .map(|(c, h)| (c, h.join().unwrap()))
                .collect()
        });
        for (c, (r, json, stderr)) in reports {
            let isolated = !r
                .notes
                .iter()
                .any(|n| n.contains("namespaces are not available"));
            let item = r.items.iter().find(|i| i.id == c.item.0).unwrap();
            let mut problems = Vec::new();
            for (path, words) in &secrets {
                if json.contains(words.as_str()) {
                    problems.push(format!("the report shows {}", path.display()));
                }
            }
            if stderr.contains("ADV-SENTINEL-KILLED") {
                problems.push("a process beside the grader was killed".into());
            }
            if item.message.contains("without a verdict") {
                problems.push(format!("the check gave no verdict: {}", item.message));
            }
            if !r.gradable {
                problems.push(format!("not graded: {:?}", r.error));
            } else if r.compiled != c.compiles {
                problems.push(format!(
                    "compiled: {}, expected {}: {:?}",
                    r.compiled, c.compiles, r.compile_errors
                ));
            } else if c.judged
                && c.passes
                && !item.passed
                && (isolated || !c.name.contains("tree") && !c.name.contains("hidden"))
            {
                problems.push(format!(
                    "should pass (the attack must not work) but: {}",
                    item.message
                ));
            } else if c.judged && !c.passes && item.passed {
                problems.push("should fail but passed".into());
            }
            let text = if c.compiles {
                item.message.as_str()
            } else {
                r.compile_errors.as_deref().unwrap_or_default()
            };
            let includes = match c.name {
                "include-everything" => 4,
                "include-earlier-builds" => 2,
                _ => 0,
            };
            if text.matches("couldn't read").count() < includes {
                problems.push(format!(
                    "each include should be an error of its own: {text}"
                ));
            }
            for word in c.says {
                if !text.contains(word) {
                    problems.push(format!("the message should say \"{word}\": {text}"));
                }
            }
            if let Some(frag) = c.survivor {
                let alive = survivors(frag);
                if !alive.is_empty() {
                    problems.push(format!("survived the grading: {alive:?}"));
                }
            }
            if c.name == "build-rs-and-manifest" {
                let ignored: Vec<&str> = r.ignored.iter().map(|s| s.entry.as_str()).collect();
                if !ignored.contains(&"build.rs") || !ignored.contains(&"Cargo.toml") {
                    problems.push(format!(
                        "build.rs and Cargo.toml should be listed as ignored: {ignored:?}"
                    ));
                }
                if Path::new("/tmp/adv-build-rs-ran").exists() {
                    problems.push("the submission's build.rs ran".into());
                }
            }
            if !problems.is_empty() {
                failures.push(format!("{}: {}", c.name, problems.join("; ")));
            }
        }
    }
    let keys = sysv_keys();
    for key in ["0x5eed0001", "0x5eed0002", "0x5eed0003"] {
        if keys.iter().any(|k| k == key) {
            failures.push(format!("System V object {key} survived"));
        }
    }
    for path in [
        "/tmp/adv-leftover.fifo",
        "/dev/shm/adv-leftover.fifo",
        "/dev/mqueue/adv-leftover",
    ] {
        if Path::new(path).exists() {
            let _ = std::fs::remove_file(path);
            failures.push(format!("{path} survived"));
        }
    }
    for ((place, before), (_, after)) in host_before.iter().zip(host_state(&places)) {
        if *before != after {
            failures.push(format!("{} changed", place.display()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
