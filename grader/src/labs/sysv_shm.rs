//! Checks of the sysv-shm lab: many `shmctr` processes on one counter, killed adders,
//! `stat` against `ipcs`, removal, permissions and another user.
//!
//! Every counter is keyed by `ftok(PATH, 'c')` of a file in the check's scratch folder, so
//! two gradings at once never share a key. After each check, pass or fail, the grader kills
//! what it started and removes every System V segment or semaphore set it can attribute to
//! the check (the key of one of its files, or a creator among its processes); a failed
//! check's message names them ("left behind: ...").

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::check::{Check, CheckResult, Ctx, Fail, Output};
use crate::sandbox::{self, Proc, Spec};
use crate::{ensure, fail};

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[
    Check {
        name: "counts_exactly",
        run: |ctx| guarded(ctx, counts_exactly),
    },
    Check {
        name: "survives_killed_adders",
        run: |ctx| guarded(ctx, survives_killed_adders),
    },
    Check {
        name: "stat_matches_ipcs",
        run: |ctx| guarded(ctx, stat_matches_ipcs),
    },
    Check {
        name: "removes_everything",
        run: |ctx| guarded(ctx, removes_everything),
    },
    Check {
        name: "permissions",
        run: |ctx| guarded(ctx, permissions),
    },
    Check {
        name: "create_twice_and_missing",
        run: |ctx| guarded(ctx, create_twice_and_missing),
    },
];

/// How long one short `shmctr` command may take.
const SHORT: Duration = Duration::from_secs(10);

/// The project id of the contract: `ftok(PATH, 'c')`.
const PROJ: u8 = b'c';

/// The uid and gid of "another user" (nobody).
const NOBODY: (u32, u32) = (65534, 65534);

// ---------------------------------------------------------------------------------------
// The scene of one check: its counter files, its processes, and the clean-up

/// A check's state: the counter files it made (and their keys), the pids it started.
struct Scene<'a> {
    ctx: &'a mut Ctx,
    keys: Vec<(PathBuf, i32)>,
    pids: BTreeSet<i32>,
    /// The pid of the last process [`Scene::run_spec`] ran.
    last_pid: i32,
    done: bool,
}

/// Runs `check` on a fresh [`Scene`], then cleans up; a failure names what was left behind.
fn guarded(ctx: &mut Ctx, check: fn(&mut Scene) -> CheckResult) -> CheckResult {
    let mut scene = Scene {
        ctx,
        keys: Vec::new(),
        pids: BTreeSet::new(),
        last_pid: 0,
        done: false,
    };
    let result = check(&mut scene);
    let left = scene.clean_up();
    match result {
        Err(Fail(message)) if !left.is_empty() => Err(Fail(format!(
            "{message}\nLeft behind: {}; removed by the grader",
            left.join(", ")
        ))),
        other => other,
    }
}

impl Scene<'_> {
    /// Makes the (empty) file `name` in the scratch folder and returns its absolute path;
    /// its key `ftok(path, 'c')` is remembered for the clean-up.
    fn counter_file(&mut self, name: &str) -> Result<PathBuf, Fail> {
        let path = self.ctx.scratch.join(name);
        std::fs::write(&path, b"")?;
        let key = ftok(&path).ok_or_else(|| Fail(format!("ftok({}) failed", path.display())))?;
        self.keys.push((path.clone(), key));
        Ok(path)
    }

    /// The key of a counter file made by [`Scene::counter_file`].
    fn key(&self, path: &Path) -> i32 {
        self.keys
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, k)| *k)
            .expect("a counter file of this check")
    }

    /// A spec for `shmctr ARGS...`.
    fn shmctr<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Spec {
        self.ctx.bin("shmctr").args(args)
    }

    fn spawn(&mut self, spec: &Spec) -> Result<Proc, Fail> {
        let p = self.ctx.spawn(spec)?;
        self.pids.insert(p.pid);
        Ok(p)
    }

    /// Runs `shmctr ARGS...` to completion within [`SHORT`].
    fn run(&mut self, args: &[&str]) -> Result<Output, Fail> {
        let spec = self.shmctr(args);
        self.run_spec(&spec)
    }

    fn run_spec(&mut self, spec: &Spec) -> Result<Output, Fail> {
        let mut p = self.spawn(spec)?;
        self.last_pid = p.pid;
        let what = format!("`{}`", shown(spec));
        self.ctx.finish(&what, &mut p, SHORT).map_err(|Fail(m)| {
            Fail(format!(
                "{m}\n(A process that waits in semop forever waits for a lock that is never \
                 released.)"
            ))
        })
    }

    /// Runs `shmctr ARGS...` and requires exit status 0.
    fn run_ok(&mut self, args: &[&str]) -> Result<Output, Fail> {
        let out = self.run(args)?;
        ensure!(
            out.status() == 0,
            "`shmctr {}` {} (expected exit status 0); its stderr: {}",
            args.join(" "),
            out.ending.describe(),
            quoted(&out.stderr_str())
        );
        Ok(out)
    }

    /// `shmctr create PATH`, required to succeed.
    fn create(&mut self, path: &Path) -> Result<Output, Fail> {
        self.run_ok(&["create", s(path)])
    }

    /// `shmctr get PATH` as a number.
    fn get(&mut self, path: &Path) -> Result<u64, Fail> {
        let out = self.run_ok(&["get", s(path)])?;
        let text = out.stdout_str();
        text.trim().parse().map_err(|_| {
            Fail(format!(
                "`shmctr get {}` printed {} instead of one number",
                path.display(),
                quoted(&text)
            ))
        })
    }

    /// Kills every process of the check, then removes every System V object it can
    /// attribute to the check; returns a description of each.
    fn clean_up(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        // Nothing may re-create an object after it is removed.
        sandbox::kill_descendants();
        let keys: BTreeSet<i32> = self.keys.iter().map(|(_, k)| *k).collect();
        let mut left = Vec::new();
        for seg in shm_table() {
            if keys.contains(&seg.key) || self.pids.contains(&seg.cpid) {
                // SAFETY: IPC_RMID ignores the buffer.
                unsafe { libc::shmctl(seg.id, libc::IPC_RMID, std::ptr::null_mut()) };
                left.push(format!(
                    "segment key {} (shmid {}, {} bytes, created by pid {})",
                    hex(seg.key),
                    seg.id,
                    seg.size,
                    seg.cpid
                ));
            }
        }
        for sem in sem_table() {
            let by_us = (0..sem.nsems).any(|i| {
                // SAFETY: GETPID takes no fourth argument.
                let pid = unsafe { libc::semctl(sem.id, i, libc::GETPID) };
                self.pids.contains(&pid)
            });
            if keys.contains(&sem.key) || by_us {
                // SAFETY: IPC_RMID takes no fourth argument.
                unsafe { libc::semctl(sem.id, 0, libc::IPC_RMID) };
                left.push(format!(
                    "semaphore set key {} (semid {})",
                    hex(sem.key),
                    sem.id
                ));
            }
        }
        left
    }
}

impl Drop for Scene<'_> {
    fn drop(&mut self) {
        // A panic in a check: still leave nothing behind.
        self.clean_up();
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

fn shown(spec: &Spec) -> String {
    let prog = Path::new(&spec.program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut line = prog;
    for a in &spec.args {
        line.push(' ');
        line.push_str(&crate::labs::shell_quote(&a.to_string_lossy()));
    }
    line
}

fn quoted(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        "(nothing)".into()
    } else {
        format!("{:?}", crate::run::clip(t, 400))
    }
}

fn hex(key: i32) -> String {
    format!("{:#010x}", key as u32)
}

// ---------------------------------------------------------------------------------------
// What the kernel says: ftok, /proc/sysvipc, semctl

/// `ftok(path, 'c')`.
fn ftok(path: &Path) -> Option<i32> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid C string that outlives the call.
    let key = unsafe { libc::ftok(c.as_ptr(), libc::c_int::from(PROJ)) };
    (key != -1).then_some(key)
}

/// One row of /proc/sysvipc/shm.
#[derive(Debug, Clone, Copy)]
struct ShmRow {
    key: i32,
    id: i32,
    perms: u32,
    size: u64,
    cpid: i32,
    nattch: u64,
}

/// One row of /proc/sysvipc/sem.
#[derive(Debug, Clone, Copy)]
struct SemRow {
    key: i32,
    id: i32,
    perms: u32,
    nsems: i32,
}

fn table(file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Every segment in /proc/sysvipc/shm: key shmid perms size cpid lpid nattch ...
fn shm_table() -> Vec<ShmRow> {
    table("/proc/sysvipc/shm")
        .iter()
        .filter_map(|f| {
            Some(ShmRow {
                key: f.first()?.parse().ok()?,
                id: f.get(1)?.parse().ok()?,
                perms: u32::from_str_radix(f.get(2)?, 8).ok()?,
                size: f.get(3)?.parse().ok()?,
                cpid: f.get(4)?.parse().ok()?,
                nattch: f.get(6)?.parse().ok()?,
            })
        })
        .collect()
}

/// Every semaphore set in /proc/sysvipc/sem: key semid perms nsems ...
fn sem_table() -> Vec<SemRow> {
    table("/proc/sysvipc/sem")
        .iter()
        .filter_map(|f| {
            Some(SemRow {
                key: f.first()?.parse().ok()?,
                id: f.get(1)?.parse().ok()?,
                perms: u32::from_str_radix(f.get(2)?, 8).ok()?,
                nsems: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn shm_of(key: i32) -> Option<ShmRow> {
    shm_table().into_iter().find(|r| r.key == key)
}

fn sem_of(key: i32) -> Option<SemRow> {
    sem_table().into_iter().find(|r| r.key == key)
}

/// Value and last pid of semaphore 0 of the set `semid`, or `None` if it is gone.
fn sem_state(semid: i32) -> Option<(i32, i32)> {
    // SAFETY: GETVAL and GETPID take no fourth argument.
    let (val, pid) = unsafe {
        (
            libc::semctl(semid, 0, libc::GETVAL),
            libc::semctl(semid, 0, libc::GETPID),
        )
    };
    (val != -1 && pid != -1).then_some((val, pid))
}

/// The segment and semaphore set of a counter just created, or a failure that says which
/// is missing.
fn objects_of(path: &Path, key: i32) -> Result<(ShmRow, SemRow), Fail> {
    let shm = shm_of(key);
    let sem = sem_of(key);
    match (shm, sem) {
        (Some(shm), Some(sem)) => {
            ensure!(
                sem.nsems >= 1,
                "the semaphore set of key {} has no semaphore",
                hex(key)
            );
            Ok((shm, sem))
        }
        (None, _) => fail!(
            "after `shmctr create {}` (exit 0) there is no segment with key {} = ftok(PATH, 'c') \
             in /proc/sysvipc/shm: create must make the segment with the key ftok(PATH, 'c')",
            path.display(),
            hex(key)
        ),
        (_, None) => fail!(
            "after `shmctr create {}` (exit 0) there is no semaphore set with key {} = \
             ftok(PATH, 'c') in /proc/sysvipc/sem: create must make the semaphore with the \
             same key as the segment",
            path.display(),
            hex(key)
        ),
    }
}

/// The state letter of `pid` (R, S, T, Z...), or `None` once it is gone.
fn state(pid: i32) -> Option<char> {
    crate::procinfo::stat(pid).map(|s| s.state)
}

/// Waits until `cond` holds, polling every millisecond, until `deadline`.
fn poll_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What the counter's semaphore says about its lock, for a message about a hang.
fn lock_state(key: i32) -> String {
    let Some(sem) = sem_of(key) else {
        return format!("There is no semaphore set with key {} any more.", hex(key));
    };
    let Some((val, last)) = sem_state(sem.id) else {
        return String::new();
    };
    let who = match state(last) {
        Some('Z') | None => "which is no longer running",
        Some(_) => "which is still running",
    };
    if val == 0 {
        format!(
            "The counter's semaphore is 0 (taken); the last semop on it was by pid {last}, {who}. \
             If that process took the lock and never released it, every other waits forever: \
             each lock (semop -1) needs its unlock (semop +1), and SEM_UNDO for a process that dies."
        )
    } else {
        format!("The counter's semaphore is {val}; the last semop on it was by pid {last}, {who}.")
    }
}

/// Waits for every adder to exit 0 within `deadline`.
fn finish_adders(
    scene: &mut Scene,
    adders: &mut [(Proc, String)],
    key: i32,
    deadline: Instant,
    hint: &str,
) -> CheckResult {
    for (p, what) in adders.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        let out = scene
            .ctx
            .finish(what, p, left)
            .map_err(|Fail(m)| Fail(format!("{m}\n{hint} {}", lock_state(key))))?;
        ensure!(
            out.status() == 0,
            "{what} {} (expected exit status 0); its stderr: {}",
            out.ending.describe(),
            quoted(&out.stderr_str())
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The checks

/// 8 processes x 2000 increments at once: exactly 16000.
fn counts_exactly(scene: &mut Scene) -> CheckResult {
    const PROCS: usize = 8;
    const ADDS: u64 = 2000;
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    let mut adders = Vec::new();
    for _ in 0..PROCS {
        let spec = scene.shmctr(&["add", s(&path), &ADDS.to_string()]);
        let p = scene.spawn(&spec)?;
        adders.push((p, format!("`shmctr add {} {ADDS}`", path.display())));
    }
    let key = scene.key(&path);
    finish_adders(
        scene,
        &mut adders,
        key,
        Instant::now() + Duration::from_secs(20),
        "8 adders of 2000 must finish in a few seconds.",
    )?;
    let value = scene.get(&path)?;
    let want = PROCS as u64 * ADDS;
    if value < want {
        fail!(
            "{PROCS} processes each ran `shmctr add PATH {ADDS}` at once; the counter ends at \
             {value} instead of {want}: {} updates were lost. Two processes read the same value \
             and both wrote value+1. Every read-modify-write must happen under the semaphore's \
             lock: wait (semop -1) before the read, post (semop +1) after the write",
            want - value
        );
    }
    ensure!(
        value == want,
        "{PROCS} processes each ran `shmctr add PATH {ADDS}` at once; the counter ends at \
         {value}, more than the {want} increments asked for"
    );
    if let Some(sem) = sem_of(key) {
        if let Some((val, _)) = sem_state(sem.id) {
            ensure!(
                val == 1,
                "after every adder exited, the counter's semaphore has the value {val}, not 1 \
                 (free): each lock (semop -1) must be followed by exactly one unlock (semop +1)"
            );
        }
    }
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// Adders SIGKILLed while they hold the lock: the others still finish (SEM_UNDO).
fn survives_killed_adders(scene: &mut Scene) -> CheckResult {
    const PROCS: usize = 8;
    const ADDS: u64 = 10_000;
    const KILLS: usize = 2;
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    let key = scene.key(&path);
    let (_, sem) = objects_of(&path, key)?;
    let mut adders: Vec<(Proc, String)> = Vec::new();
    for _ in 0..PROCS {
        let spec = scene.shmctr(&["add", s(&path), &ADDS.to_string()]);
        let p = scene.spawn(&spec)?;
        adders.push((p, format!("`shmctr add {} {ADDS}`", path.display())));
    }
    // Catch an adder while it holds the lock: stop it, and look at the semaphore. Its value
    // is 0 (taken) and the last semop on it was this adder's exactly when the adder's last
    // operation was the wait of its lock. Then SIGKILL it, still stopped, lock held.
    let mut killed: Vec<i32> = Vec::new();
    let hunt_deadline = Instant::now() + Duration::from_secs(20);
    let mut turn = 0;
    while killed.len() < KILLS {
        for (p, what) in adders.iter_mut() {
            if let Some(ending) = p.try_ending() {
                if ending != crate::sandbox::Ending::Exited(0) && !killed.contains(&p.pid) {
                    let err = String::from_utf8_lossy(&p.stderr().0).into_owned();
                    fail!(
                        "{what} {} (expected exit status 0); its stderr: {}",
                        ending.describe(),
                        quoted(&err)
                    );
                }
            }
        }
        let live: Vec<usize> = (0..adders.len())
            .filter(|&i| {
                let (p, _) = &mut adders[i];
                !killed.contains(&p.pid) && p.try_ending().is_none()
            })
            .collect();
        if live.is_empty() || Instant::now() >= hunt_deadline {
            fail!(
                "8 processes ran `shmctr add PATH {ADDS}`; the grader stopped them one at a time \
                 to catch one holding the counter's lock (semaphore value 0, last semop by that \
                 process) and never did{}. `add` must take the lock with semop on the counter's \
                 semaphore (key ftok(PATH, 'c')) around every increment",
                if live.is_empty() {
                    " before they all ended"
                } else {
                    ""
                }
            );
        }
        turn += 1;
        let (p, _) = &mut adders[live[turn % live.len()]];
        p.signal(Signal::SIGSTOP);
        let pid = p.pid;
        let stopped = poll_until(Instant::now() + Duration::from_secs(2), || {
            matches!(state(pid), Some('T' | 't' | 'Z') | None)
        });
        let holds = stopped
            && matches!(state(pid), Some('T' | 't'))
            && sem_state(sem.id).is_some_and(|(val, last)| val == 0 && last == pid);
        if holds {
            p.signal(Signal::SIGKILL);
            let _ = p.wait_until(Instant::now() + Duration::from_secs(5));
            killed.push(pid);
            // Without SEM_UNDO the lock stays taken by the dead process for good: the value
            // stays 0 and nobody else ever does a semop on it.
            let released = poll_until(Instant::now() + Duration::from_secs(5), || {
                sem_state(sem.id).is_none_or(|(val, last)| val != 0 || last != pid)
            });
            if !released {
                fail!(
                    "the grader SIGKILLed an adder (pid {pid}) while it held the counter's lock; \
                     5 s later the semaphore is still 0 (taken) and nobody else got the lock: the \
                     other adders wait forever. A process that dies holding the lock never posts: \
                     give every semop the flag SEM_UNDO, so that the kernel undoes a dead \
                     process's operations and releases its lock"
                );
            }
        } else {
            p.signal(Signal::SIGCONT);
        }
    }
    let mut survivors: Vec<(Proc, String)> = adders
        .into_iter()
        .filter(|(p, _)| !killed.contains(&p.pid))
        .collect();
    // Stopped ones that were not killed were continued; make sure.
    for (p, _) in &survivors {
        p.signal(Signal::SIGCONT);
    }
    finish_adders(
        scene,
        &mut survivors,
        key,
        Instant::now() + Duration::from_secs(40),
        "The other adders must finish after two adders were SIGKILLed holding the lock \
         (SEM_UNDO releases it).",
    )?;
    let value = scene.get(&path)?;
    let (low, high) = ((PROCS - KILLS) as u64 * ADDS, PROCS as u64 * ADDS);
    ensure!(
        (low..=high).contains(&value),
        "after {KILLS} of {PROCS} adders of {ADDS} were SIGKILLed and the others finished, the \
         counter is {value}; it must be between {low} (the survivors' increments) and {high}. \
         Updates were lost: every read-modify-write must happen under the lock"
    );
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// The fields of a `shmctr stat` line, `size=8 nattch=0 mode=600 cpid=123`.
fn parse_stat(text: &str) -> Option<(u64, u64, u32, i32)> {
    let mut size = None;
    let mut nattch = None;
    let mut mode = None;
    let mut cpid = None;
    for field in text.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        match k {
            "size" => size = v.parse().ok(),
            "nattch" => nattch = v.parse().ok(),
            "mode" => mode = u32::from_str_radix(v.trim_start_matches("0o"), 8).ok(),
            "cpid" => cpid = v.parse().ok(),
            _ => {}
        }
    }
    Some((size?, nattch?, mode?, cpid?))
}

/// From `ipcs -m` and `ipcs -m -p`: the bytes, nattch, perms and cpid of `key`'s segment.
fn ipcs_row(scene: &mut Scene, key: i32) -> Result<(u64, u64, u32, i32), Fail> {
    let ipcs = |scene: &mut Scene, args: &[&str]| -> Result<String, Fail> {
        let spec = Spec::new("ipcs", &scene.ctx.scratch).args(args);
        // Not the student's fault: say so, for the course staff.
        let broken = |why: String| {
            Fail(format!(
                "the grader could not run `ipcs` (util-linux), which this check compares with: \
                 {why}. This is a problem of the grading machine: tell your course staff"
            ))
        };
        let mut p = scene.ctx.spawn(&spec).map_err(|Fail(m)| broken(m))?;
        let out = scene.ctx.finish("ipcs", &mut p, SHORT)?;
        if out.status() != 0 {
            return Err(broken(out.stderr_str().trim().to_owned()));
        }
        Ok(out.stdout_str())
    };
    let want = hex(key);
    // key shmid owner perms bytes nattch status
    let plain = ipcs(scene, &["-m"])?;
    let row = plain
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&want.as_str()))
        .ok_or_else(|| Fail(format!("`ipcs -m` shows no segment with key {want}")))?;
    let shmid = row[1].to_owned();
    let perms = u32::from_str_radix(row[3], 8)?;
    let bytes = row[4].parse()?;
    let nattch = row[5].parse()?;
    // shmid owner cpid lpid
    let pids = ipcs(scene, &["-m", "-p"])?;
    let cpid = pids
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&shmid.as_str()))
        .and_then(|f| f.get(2)?.parse().ok())
        .ok_or_else(|| Fail(format!("`ipcs -m -p` shows no segment with shmid {shmid}")))?;
    Ok((bytes, nattch, perms & 0o777, cpid))
}

/// `shmctr stat` agrees with `ipcs -m`, idle and with one attached adder.
fn stat_matches_ipcs(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    let key = scene.key(&path);
    // The pid of `create` is the segment's creator.
    let creator = scene.last_pid;
    let compare = |scene: &mut Scene, when: &str| -> CheckResult {
        let out = scene.run_ok(&["stat", s(&path)])?;
        let line = out.stdout_str();
        let Some((size, nattch, mode, cpid)) = parse_stat(&line) else {
            fail!(
                "`shmctr stat PATH` printed {}; expected one line \
                 `size=<bytes> nattch=<n> mode=<octal> cpid=<pid>`",
                quoted(&line)
            );
        };
        let (i_size, i_nattch, i_mode, i_cpid) = ipcs_row(scene, key)?;
        let ours = format!("size={size} nattch={nattch} mode={mode:o} cpid={cpid}");
        let theirs = format!("size={i_size} nattch={i_nattch} mode={i_mode:o} cpid={i_cpid}");
        ensure!(
            ours == theirs,
            "{when}, `shmctr stat PATH` printed `{}` but `ipcs -m` shows {theirs} for key {}. \
             stat must print shm_segsz, shm_nattch, the permission bits of shm_perm.mode (in \
             octal) and shm_cpid from shmctl(IPC_STAT), without attaching the segment itself",
            line.trim(),
            hex(key)
        );
        ensure!(
            cpid == creator,
            "{when}, `shmctr stat PATH` printed cpid={cpid}, but the segment was created by \
             `shmctr create` (pid {creator})"
        );
        Ok(())
    };
    compare(scene, "with no process attached")?;
    // One adder attached, stopped so that nattch holds still.
    let spec = scene.shmctr(&["add", s(&path), "1000000000"]);
    let adder = scene.spawn(&spec)?;
    let attached = poll_until(Instant::now() + Duration::from_secs(10), || {
        shm_of(key).is_some_and(|r| r.nattch >= 1)
    });
    ensure!(
        attached,
        "`shmctr add PATH 1000000000` did not attach the counter's segment within 10 s \
         (nattch stayed 0 in /proc/sysvipc/shm)"
    );
    adder.signal(Signal::SIGSTOP);
    let pid = adder.pid;
    poll_until(Instant::now() + Duration::from_secs(2), || {
        matches!(state(pid), Some('T' | 't') | None)
    });
    compare(scene, "with one `shmctr add` attached")?;
    drop(adder);
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// After `remove`, nothing of the counter is left; a second `remove` fails.
fn removes_everything(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("counter")?;
    let key = scene.key(&path);
    scene.create(&path)?;
    objects_of(&path, key)?;
    scene.run_ok(&["add", s(&path), "10"])?;
    scene.run_ok(&["remove", s(&path)])?;
    if let Some(shm) = shm_of(key) {
        fail!(
            "after `shmctr remove PATH` (exit 0) the counter's segment (key {}, shmid {}) is still \
             in /proc/sysvipc/shm: it is left behind until reboot. remove must mark it with \
             shmctl(IPC_RMID)",
            hex(key),
            shm.id
        );
    }
    if let Some(sem) = sem_of(key) {
        fail!(
            "after `shmctr remove PATH` (exit 0) the counter's semaphore set (key {}, semid {}) \
             is still in /proc/sysvipc/sem: it is left behind until reboot. remove must delete \
             it with semctl(IPC_RMID)",
            hex(key),
            sem.id
        );
    }
    let again = scene.run(&["remove", s(&path)])?;
    ensure!(
        again.status() == 1 && again.stderr_str().starts_with("shmctr: "),
        "a second `shmctr remove PATH` {} with stderr {}; expected exit status 1 and a line \
         `shmctr: ...`: there is no counter to remove",
        again.ending.describe(),
        quoted(&again.stderr_str())
    );
    let get = scene.run(&["get", s(&path)])?;
    ensure!(
        get.status() == 1,
        "`shmctr get PATH` after `shmctr remove PATH` {} (printed {}); expected exit status 1: \
         the counter is gone",
        get.ending.describe(),
        quoted(&get.stdout_str())
    );
    Ok(())
}

/// Segment and semaphore have mode 0600; another user cannot read or add.
fn permissions(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("counter")?;
    let key = scene.key(&path);
    scene.create(&path)?;
    let (shm, sem) = objects_of(&path, key)?;
    ensure!(
        shm.perms & 0o777 == 0o600,
        "the counter's segment (key {}) has mode {:o} in /proc/sysvipc/shm; it must be 600: \
         only its owner may read or write it. Pass 0o600 in shmget's flags",
        hex(key),
        shm.perms & 0o777
    );
    ensure!(
        sem.perms & 0o777 == 0o600,
        "the counter's semaphore set (key {}) has mode {:o} in /proc/sysvipc/sem; it must be \
         600. Pass 0o600 in semget's flags",
        hex(key),
        sem.perms & 0o777
    );
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // Without root the grader cannot act as another user; the modes above say enough.
        return Ok(());
    }
    // Another user must reach the counter file and the binary: the scratch folder is
    // private, so both go into a folder that anyone may traverse. A hard link is the same
    // inode, so ftok gives the same key.
    let shared = Shared::new(&scene.ctx.scratch)?;
    let link = shared.dir.join("counter");
    std::fs::hard_link(&path, &link)?;
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o644))?;
    let bin = shared.dir.join("shmctr");
    let original = scene
        .ctx
        .bins
        .get("shmctr")
        .cloned()
        .ok_or_else(|| Fail("the grader has no shmctr binary".into()))?;
    std::fs::copy(&original, &bin)?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    let as_nobody = |program: &Path, args: &[&str]| {
        let mut spec = Spec::new(program.as_os_str(), &shared.dir).args(args);
        spec.rlimits = crate::sandbox::Rlimits::untrusted(Duration::from_secs(30));
        spec.user = Some(NOBODY);
        spec
    };
    let probe = as_nobody(Path::new("/bin/sh"), &["-c", "test -e \"$0\"", s(&link)]);
    let reach = scene.run_spec(&probe)?;
    ensure!(
        reach.status() == 0,
        "the grader could not make the counter file reachable by uid {} ({})",
        NOBODY.0,
        reach.stderr_str().trim()
    );
    let before = scene.get(&path)?;
    for args in [&["get", s(&link)][..], &["add", s(&link), "1"][..]] {
        let spec = as_nobody(&bin, args);
        let out = scene.run_spec(&spec)?;
        let err = out.stderr_str();
        ensure!(
            out.status() != 0,
            "`shmctr {}` run as another user (uid {}) succeeded (printed {}); the counter's \
             segment must have mode 0600 so that only its owner can attach it",
            args.join(" "),
            NOBODY.0,
            quoted(&out.stdout_str())
        );
        ensure!(
            out.status() == 1
                && err.starts_with("shmctr: ")
                && err.to_lowercase().contains("permission denied"),
            "`shmctr {}` run as another user (uid {}) {} with stderr {}; expected exit status \
             1 and one line `shmctr: ...` that says why, with the OS error (\"Permission \
             denied\", EACCES from shmat)",
            args.join(" "),
            NOBODY.0,
            out.ending.describe(),
            quoted(&err)
        );
    }
    let after = scene.get(&path)?;
    ensure!(
        after == before,
        "the counter changed from {before} to {after} although another user's `shmctr add` \
         was refused"
    );
    scene.run_ok(&["remove", s(&path)])?;
    Ok(())
}

/// A folder in the first ancestor of the scratch folder that everyone may traverse (the
/// system's /tmp), mode 0711, removed on drop.
struct Shared {
    dir: PathBuf,
}

impl Shared {
    fn new(scratch: &Path) -> Result<Shared, Fail> {
        let base = scratch
            .ancestors()
            .skip(1)
            .find(|a| {
                std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o1 != 0)
                    && a.ancestors().all(|b| {
                        std::fs::metadata(b).is_ok_and(|m| m.permissions().mode() & 0o1 != 0)
                    })
            })
            .ok_or_else(|| Fail("no folder above the scratch folder is open to others".into()))?;
        let name = format!(
            "sysv-shm-other-{}-{}",
            std::process::id(),
            scratch
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let dir = base.join(name);
        std::fs::create_dir(&dir)?;
        let shared = Shared { dir };
        std::fs::set_permissions(&shared.dir, std::fs::Permissions::from_mode(0o711))?;
        Ok(shared)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Create twice, a missing counter, a missing file, usage errors.
fn create_twice_and_missing(scene: &mut Scene) -> CheckResult {
    let path = scene.counter_file("counter")?;
    scene.create(&path)?;
    scene.run_ok(&["add", s(&path), "3"])?;
    let twice = scene.run(&["create", s(&path)])?;
    ensure!(
        twice.status() == 1 && twice.stderr_str().starts_with("shmctr: "),
        "a second `shmctr create PATH` {} with stderr {}; expected exit status 1 and a line \
         `shmctr: ...`: the counter exists (create with IPC_CREAT | IPC_EXCL, and report EEXIST)",
        twice.ending.describe(),
        quoted(&twice.stderr_str())
    );
    let value = scene.get(&path)?;
    ensure!(
        value == 3,
        "after `shmctr add PATH 3` and a refused second `shmctr create PATH`, `shmctr get PATH` \
         printed {value} instead of 3: a failed create must leave the existing counter alone"
    );
    let key = scene.key(&path);
    ensure!(
        shm_of(key).is_some() && sem_of(key).is_some(),
        "a refused second `shmctr create PATH` removed the existing counter's segment or \
         semaphore"
    );
    scene.run_ok(&["remove", s(&path)])?;

    // A file with no counter, and no file at all.
    let never = scene.counter_file("never-created")?;
    let nofile = scene.ctx.scratch.join("no-such-file");
    for (path, why) in [
        (&never, "the file exists but no counter was created for it"),
        (&nofile, "the file does not exist (ftok fails)"),
    ] {
        for args in [
            vec!["get", s(path)],
            vec!["add", s(path), "1"],
            vec!["stat", s(path)],
            vec!["remove", s(path)],
        ] {
            let out = scene.run(&args)?;
            ensure!(
                out.status() == 1 && out.stderr_str().starts_with("shmctr: "),
                "`shmctr {}` {} with stderr {}, where {why}; expected exit status 1 and one \
                 line `shmctr: ...`",
                args.join(" "),
                out.ending.describe(),
                quoted(&out.stderr_str())
            );
        }
    }
    ensure!(
        ftok(&never).is_some_and(|k| shm_of(k).is_none() && sem_of(k).is_none()),
        "`shmctr get/add/stat/remove` on a file with no counter created a segment or a \
         semaphore: only `create` may create"
    );

    // Usage errors: exit 2 with the usage on stderr.
    for args in [
        vec![],
        vec!["create"],
        vec!["frobnicate", s(&path)],
        vec!["add", s(&path)],
        vec!["add", s(&path), "many"],
        vec!["get", s(&path), "extra"],
    ] {
        let out = scene.run(&args)?;
        ensure!(
            out.status() == 2 && !out.stderr_str().trim().is_empty(),
            "`shmctr {}` {} with stderr {}; a usage error must exit with status 2 and print \
             the usage on stderr",
            args.join(" "),
            out.ending.describe(),
            quoted(&out.stderr_str())
        );
    }
    Ok(())
}
