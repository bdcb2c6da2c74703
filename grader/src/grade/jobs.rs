//! The jobs of a grading's pool (see [`crate::schedule`]): a test, or a check that may run
//! beside tests; running one test; how many workers there are.

use std::path::Path;

use super::Options;
use crate::labfile::Lab;
use crate::run::{self, RunEnv};
use crate::score::ItemResult;

/// One test to run: its id (`stem::name`), its item, its test program.
pub(super) struct TestJob<'a> {
    pub(super) id: String,
    pub(super) item: &'a crate::labfile::Item,
    pub(super) stem: &'a str,
    pub(super) exe: &'a Path,
    pub(super) name: String,
}

/// A job of the grading's pool: a test, or a check that may run beside tests.
pub(super) enum Work<'a> {
    Test(TestJob<'a>),
    Check(&'a crate::labfile::Item),
}

/// What a job of the pool gave.
pub(super) enum Done {
    Test(run::TestResult),
    Check(ItemResult),
}

/// Runs one test; a panic of the grader's becomes the test's failure, never a test left
/// marked running for the other workers to wait on.
pub(super) fn run_test(
    env: &RunEnv,
    lab: &Lab,
    opts: &Options,
    job: &TestJob<'_>,
) -> run::TestResult {
    let timeout = opts.timeout(lab, job.item);
    let memory = lab.file.limits_for(job.item).memory();
    let run = || run::run_one(env, job.exe, job.stem, &job.name, timeout, memory);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        run::TestResult::failed(
            &job.id,
            format!(
                "the grader failed while running this test: {}",
                panic_text(&*panic)
            ),
            0,
        )
    })
}

/// What a caught panic says.
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic")
}

/// How many jobs run at once to begin with: two where every job runs in a PID namespace of
/// its own (its clean-up then touches only its own processes), else one.
pub(super) fn workers(env: &RunEnv) -> usize {
    let parallel =
        env.jail && crate::sandbox::init::provided() && crate::sandbox::isolate::available();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if parallel { cores.clamp(1, 2) } else { 1 }
}
