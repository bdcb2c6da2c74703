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
}

fn case(name: &'static str, inject: &str, passes: bool, says: &'static [&'static str]) -> Case {
    Case {
        name,
        inject: inject.to_owned(),
        extra: Vec::new(),
        passes,
        says,
        survivor: None,
    }
}

fn corpus() -> Vec<Case> {
    let root = root();
    let tree = root.display();
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
        case(
            "read-hidden-tests",
            &format!(
                r#"for p in ["{tree}/labs/pipes/hidden/hidden_filter.rs", "{tree}/solutions/pipes/src/filter.rs"] {{
                    if std::fs::read(p).is_ok() {{ panic!("LEAKED {{p}}"); }}
                }}"#
            ),
            true,
            &[],
        ),
        case(
            "write-the-tree",
            &format!(
                r#"let me = std::env::var("CARGO_BIN_EXE_pipeline").unwrap();
                for p in ["{tree}/labs/pipes/tests/filter.rs", "{tree}/grader/src/lib.rs", me.as_str()] {{
                    if std::fs::OpenOptions::new().append(true).open(p).is_ok() {{ panic!("WRITABLE {{p}}"); }}
                }}"#
            ),
            true,
            &[],
        ),
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
    ]
}

fn submission(dir: &Path, c: &Case) -> PathBuf {
    let sub = dir.join(c.name);
    copy_dir(&root().join("solutions/pipes/src"), &sub.join("src"));
    let f = sub.join("src/filter.rs");
    let text = std::fs::read_to_string(&f).unwrap();
    let sig = "-> io::Result<Filtered> {";
    assert!(
        text.contains(sig),
        "the solution's filter signature changed"
    );
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

fn grade(sub: &Path) -> Report {
    let dir = sub.parent().unwrap();
    let json = dir.join(format!(
        "{}.json",
        sub.file_name().unwrap().to_string_lossy()
    ));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_grader"))
        .arg("--root")
        .arg(root())
        .args(["grade", "pipes"])
        .arg(sub)
        .args([
            "--only",
            "filter-basics",
            "--test",
            "filter::empty_input_part_c::case_1_cat",
            "--timeout",
            "3",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    serde_json::from_str(&text).unwrap()
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
    let guarded = root().join("labs/pipes/tests/filter.rs");
    let before = std::fs::read(&guarded).unwrap();
    let cases = corpus();
    let mut failures = Vec::new();
    for pair in cases.chunks(2) {
        let reports: Vec<(&Case, Report)> = std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|c| (c, s.spawn(|| grade(&submission(dir.path(), c)))))
                .collect();
            handles
                .into_iter()
                .map(|(c, h)| (c, h.join().unwrap()))
                .collect()
        });
        for (c, r) in reports {
            let isolated = !r
                .notes
                .iter()
                .any(|n| n.contains("namespaces are not available"));
            let item = r.items.iter().find(|i| i.id == "filter-basics").unwrap();
            let mut problems = Vec::new();
            if !r.gradable || !r.compiled {
                problems.push(format!("not graded: {:?} {:?}", r.error, r.compile_errors));
            } else if c.passes
                && !item.passed
                && (isolated || !c.name.contains("tree") && !c.name.contains("hidden"))
            {
                problems.push(format!(
                    "should pass (the attack must not work) but: {}",
                    item.message
                ));
            } else if !c.passes && item.passed {
                problems.push("should fail but passed".into());
            }
            for word in c.says {
                if !item.message.contains(word) {
                    problems.push(format!(
                        "the message should say \"{word}\": {}",
                        item.message
                    ));
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
    assert_eq!(
        std::fs::read(&guarded).unwrap(),
        before,
        "a submission changed the lab's tests"
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
