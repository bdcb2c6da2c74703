// NOTE TO THE ENGINEER BUILDING THIS LAB (delete this comment block when done):
// ## The project
// /work/main is a Cargo workspace of graded Rust lab assignments on inter-process communication for an OS course (git repo, branch main). Read first: /work/shared/DESIGN.md (architecture), /work/shared/CURRICULUM.md (the labs' contracts; the "Conventions for every lab's binaries" at its top apply), /work/shared/STYLE.md, and /work/main/README.md ("Adding a lab"). The first lab, `pipes`, is the model every lab copies: look at labs/pipes/ (Cargo.toml, lab.toml, README.md handout, src/ skeleton with `todo!("part X: ...")` bodies and full `///` docs, tests/ with tests/common/mod.rs helpers, hidden/), solutions/pipes/ (same paths, solved), and grader/src/labs/pipes.rs (the grader's multi-process checks). The pipes lab is still being finished by another engineer, so parts of it may be missing; follow its shape.
//
// The grader: `grader/src/check.rs` is the check API: a check is `fn(&mut Ctx) -> CheckResult` listed in `pub const CHECKS: &[Check]` in `grader/src/labs/fifos.rs` (already registered in grader/src/labs.rs with an empty list: you fill it). `Ctx::bin("name")` gives a sandboxed `Spec` (grader/src/sandbox.rs) for the student's binary (cwd = a per-check scratch folder the grader removes afterwards; minimal env; only fds 0-2 open; `Spec.user = Some((uid,gid))` runs it as another user since the grader is root), `Ctx::spawn(&spec)` returns a `Proc` (pid, `wait_until(deadline)`, `signal(sig)`, `kill()`, `stdout()`, `wait_stdout(deadline, pred)` to wait for a readiness line such as "ready", `stdin()` with `Input::Pipe`), `Ctx::run(what, &spec, limit)` runs to completion and on overrun fails with a /proc-based diagnosis of every process. `fail!`/`ensure!` macros return `Fail(message)`: the message is what a student reads — say what was observed, what was expected, and the likely cause in the student's terms. Every process a check starts is killed when the check ends. Checks never sleep to synchronise: they wait for a condition (a line on stdout, a file appearing, a process exiting) with a deadline; a short poll loop on a condition with a deadline is acceptable where there is no event to wait on. Random data comes from `ctx.next_u64()`/`ctx.random_bytes(n)` (seeded; the seed is in the report).
//
// Rubric: `labs/fifos/lab.toml` (see labs/pipes/lab.toml and grader/src/labfile.rs for the schema). Test items match `<test file stem>::<fn name>` prefixes; check items name a check. Hidden tests go in `labs/fifos/hidden/*.rs` (copied into tests/ for grading, so they may `mod common;`). Visible tests use assert_cmd with `Command::cargo_bin("name")` (RUNTIME lookup; never the `cargo_bin!` macro or `env!("CARGO_BIN_EXE_..")`: the grader relocates binaries), predicates, and rstest with `#[case::name(..)]`; a `///` line on each test. Test names carry the part (`..._part_a`). Tests and checks must be deterministic under load (two gradings at once on 2 cores), use per-test unique names/paths (tempfile dirs, keys from paths inside them, queue names with the pid and a counter), and leave NOTHING behind even when they fail (Drop guards that remove FIFOs/segments/semaphores/queues, kill process groups). No `#[ignore]`, no `#[should_panic]`, no sleep-based synchronisation. Each test must fail (not hang) within ~5-10 s whatever the student's code does: processes get deadlines that kill their process group.
//
// Mutants: `solutions/fifos/mutants/<name>.patch`, unified diffs against the solution (paths `a/src/...`/`b/src/...`, make them with `diff -u` from a modified copy and fix the header lines), headed by comment lines:
// ```
// # mutant: NAME
// # why: one sentence on the mistake
// # loses: ITEM-ID = "case-insensitive words the item's report message must contain"
// # loses: OTHER-ITEM
// ```
// A mutant must fail EXACTLY the items it lists (every other item passes), and where a `= "..."` is given the failing item's message must contain it: that proves the feedback names the cause. Keep each mutant a minimal, realistic student mistake.
//
// ## How to check your work
// - `cargo run -q -p grader -- grade fifos solutions/fifos` must score the maximum; `cargo run -q -p grader -- grade fifos labs/fifos` (the skeleton) must compile and score 0; `cargo xtask verify fifos` checks solution, skeleton and every mutant at once and says what is wrong. `--only ITEM` and `--seed N` help while iterating.
// - For quick iterations on the lab's own tests you can make a scratch copy (like /tmp/fifos-dev: the lab without hidden/, the solution's src/ over it, hidden/*.rs into tests/, a standalone Cargo.toml with the versions from the root [workspace.dependencies] and an empty `[workspace]` table, /work/main/Cargo.lock copied) and run `CARGO_TARGET_DIR=/work/main/target/dev-fifos cargo test` there.
// - Run the solution's grading twice at once (two `cargo run -p grader -- grade ...` in parallel) to prove it is not flaky, and check afterwards that nothing is left: `ipcs`, `ls /dev/mqueue` (mount -t mqueue none /dev/mqueue if absent), `find /tmp -type p`, `ps -ef` for stray processes.
// - Clippy-clean and rustfmt-clean for your files (`rustfmt --edition 2024 FILE`; do NOT run `cargo fmt` on the whole workspace).
//
// ## Rules
// - Edit only: labs/fifos/ (new), solutions/fifos/ (new), grader/src/labs/fifos.rs. Do not edit any other file (grader core, pipes lab, root files, Cargo.lock beyond what cargo itself adds for your new member). If you need something in the grader core, write a local helper in your checks module, or tell me in your report. Do not commit (I commit). Other engineers are working in the same tree on other labs at the same time; the machine has only 2 cores, so don't run the whole workspace's `cargo test`.
// - labs/fifos/Cargo.toml: `[package] name = "fifos"`, `version = "0.1.0"`, `edition.workspace = true`, `publish = false`, dependencies with `workspace = true` (nix, libc; dev: assert_cmd, predicates, rstest, and tempfile if useful — all pinned in the root Cargo.toml already; don't add new crates).
// - Hard deadline: report back by 19:05 (check `date`), even if not everything is done — with what works, what doesn't, and the exact state of each file. A smaller lab that is correct beats a bigger one that is flaky.
// - Your final reply: the files, the rubric, per mutant which items it loses (as verified by `cargo xtask verify fifos`), the measurements asked for (with the commands), anything left undone.

//! Checks of the fifos lab.

use crate::check::Check;

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[];
