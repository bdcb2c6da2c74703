//! Pieces of messages: paths, commands, quoted output, keys, and the lock's state.

use std::path::Path;

use crate::sandbox::Spec;

use super::kernel::{sem_of, sem_state, state};

pub(super) fn s(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

pub(super) fn shown(spec: &Spec) -> String {
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

pub(super) fn quoted(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        "(nothing)".into()
    } else {
        format!("{:?}", crate::run::clip(t, 400))
    }
}

pub(super) fn hex(key: i32) -> String {
    format!("{:#010x}", key as u32)
}

/// What the counter's semaphore says about its lock, for a message about a hang.
pub(super) fn lock_state(key: i32) -> String {
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
