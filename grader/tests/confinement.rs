//! Two gradings at once cannot reach each other, even when one knows everything about the
//! other: its processes' pids on the host and its scratch folder's path. Each grading runs
//! the student's code as an identity of its own, in a jail with PID and mount namespaces of
//! its own (`grader __jail` confines a command exactly as a test is confined).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `grader __jail -- sh -c SCRIPT`; returns it and the scratch folder it printed.
fn jailed(script: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_grader"))
        .args(["__jail", "--timeout", "60", "--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let scratch = line
        .strip_prefix("scratch ")
        .unwrap_or_else(|| panic!("`grader __jail` did not name its scratch folder: {line:?}"))
        .trim()
        .to_owned();
    (child, scratch)
}

/// A `grader __jail` work folder (`grader-jail-*`, its scratch's parent), removed when the
/// test ends: the test SIGKILLs that grader, which then cannot remove it itself.
struct RemovedAtEnd(Option<std::path::PathBuf>);

impl Drop for RemovedAtEnd {
    fn drop(&mut self) {
        if let Some(work) = self.0.as_ref().filter(|w| {
            w.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("grader-jail-"))
        }) {
            let _ = std::fs::remove_dir_all(work);
        }
    }
}

/// The host pids of the processes below `pid` whose command name is `comm`.
fn descendants_named(pid: u32, comm: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let name = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
            if name.trim() == comm {
                found.push(c);
            }
            frontier.push(c);
        }
    }
    found
}

/// A grading's student process that knows another grading's host pid and scratch folder can
/// neither signal nor trace that process (it is not in its PID namespace), nor read or write
/// that folder (it is not in its mount namespace), and `kill(-1, SIGKILL)` ends nothing of
/// the other grading.
#[test]
fn a_grading_cannot_reach_another() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("this machine's grader is not root: gradings share the grader's user");
        return;
    }
    let (mut victim, victim_scratch) = jailed("echo victim-secret > secret; exec sleep 50");
    let _victims_folder = RemovedAtEnd(
        std::path::Path::new(&victim_scratch)
            .parent()
            .map(Into::into),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let target = loop {
        if let Some(p) = descendants_named(victim.id(), "sleep").first() {
            break *p;
        }
        assert!(
            Instant::now() < deadline,
            "the victim's sleep never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let attack = format!(
        r#"
        kill -9 {target} 2>/dev/null && echo "REACHED signal {target}"
        [ -e /proc/{target} ] && echo "REACHED /proc/{target}"
        cat {victim_scratch}/secret 2>/dev/null && echo "REACHED read {victim_scratch}"
        echo x 2>/dev/null > {victim_scratch}/adv-x && echo "REACHED write {victim_scratch}"
        [ -e {victim_scratch} ] && echo "REACHED sees {victim_scratch}"
        /usr/bin/python3 - <<'EOF'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(16, {target}, 0, 0) == 0:
    print("REACHED ptrace {target}")
print("attack-done", flush=True)
libc.kill(-1, 9)
EOF
        "#
    );
    let attacker = Command::new(env!("CARGO_BIN_EXE_grader"))
        .args(["__jail", "--timeout", "30", "--", "sh", "-c", &attack])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&attacker.stdout);
    let alive =
        std::fs::read_to_string(format!("/proc/{target}/comm")).is_ok_and(|c| c.trim() == "sleep");
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        said.contains("attack-done"),
        "the attack did not run to its end: {said}\n{}",
        String::from_utf8_lossy(&attacker.stderr)
    );
    assert!(!said.contains("REACHED"), "{said}");
    assert!(alive, "the victim's process was killed");
    assert!(
        !std::path::Path::new(&victim_scratch).join("adv-x").exists(),
        "the attacker wrote into the victim's scratch folder"
    );
}

/// What a jail shows: the system read-only, its own scratch folder writable, no capability,
/// `no_new_privs`, and nothing of the lab tree, the cargo home or other users' files.
#[test]
fn a_jail_shows_only_the_system_and_its_scratch() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("this machine's grader is not root: there is no jail to look at");
        return;
    }
    let tree = env!("CARGO_MANIFEST_DIR");
    let script = format!(
        r#"
        echo "uid=$(id -u)"
        grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
        ls / | tr '\n' ' '; echo
        [ -e {tree} ] && echo "SEES {tree}"
        [ -e "$HOME/../../../../root/.cargo" ] && echo "SEES cargo home"
        [ -e /root ] && echo "SEES /root"
        [ -e /home ] && echo "SEES /home"
        echo x > /usr/adv-x 2>/dev/null && echo "WRITES /usr"
        echo x > /adv-x 2>/dev/null && echo "WRITES /"
        echo x > ./mine && echo "writes its scratch"
        echo x > /tmp/mine && echo "writes its /tmp"
        "#
    );
    let out = Command::new(env!("CARGO_BIN_EXE_grader"))
        .args(["__jail", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("SEES") && !said.contains("WRITES"), "{said}");
    assert!(
        said.contains("writes its scratch") && said.contains("writes its /tmp"),
        "{said}"
    );
    assert!(said.contains("CapEff:\t0000000000000000"), "{said}");
    assert!(said.contains("NoNewPrivs:\t1"), "{said}");
    assert!(!said.contains("uid=0"), "{said}");
}
