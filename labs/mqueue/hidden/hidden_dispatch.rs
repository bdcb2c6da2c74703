//! Hidden tests, part C: an idle `mq-dispatch` blocks (the dispatcher and every worker), and
//! its queues have the mode the contract states.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use testkit::procfs;

/// How many workers the test starts.
const WORKERS: usize = 3;

/// While its stdin is open and no job comes, `mq-dispatch --workers 3` and each of its
/// workers use less than 2% of a CPU over 3 s; its two queues have mode 0600; and once its
/// stdin ends it exits 0.
#[test]
fn idle_dispatcher_and_workers_block_part_c() {
    let mut cmd = Command::cargo_bin("mq-dispatch")
        .unwrap_or_else(|e| panic!("cannot find the mq-dispatch binary: {e}"));
    cmd.args(["--workers", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut group = testkit::Group::spawn(&mut cmd, "mq-dispatch --workers 3");
    let stdin = group.child().stdin.take().expect("stdin is piped");
    let pid = group.pid();
    let (jobs, results) = mqueue::queue_names(pid as u32);
    let _unlink = Unlink([jobs.clone(), results.clone()]);

    // Ready once both queues exist and every worker has started.
    let end = Instant::now() + common::DEADLINE;
    let workers = loop {
        let workers: Vec<i32> = procfs::children(pid)
            .into_iter()
            .filter(|c| c.state != 'Z')
            .map(|c| c.pid)
            .collect();
        let queues = testkit::ipc::queue_mode(&jobs).is_some()
            && testkit::ipc::queue_mode(&results).is_some();
        if workers.len() >= WORKERS && queues {
            break workers;
        }
        if Instant::now() >= end {
            panic!(
                "`mq-dispatch --workers 3` had {} worker(s) and {} after {} s; what it was doing:\n{}",
                workers.len(),
                if queues { "both queues" } else { "not both of its queues" },
                common::DEADLINE.as_secs(),
                group.hang_report()
            );
        }
        // Nothing announces a fork or an mq_open: look again in a moment, bounded above.
        std::thread::sleep(Duration::from_millis(10));
    };

    for name in [&jobs, &results] {
        let mode = testkit::ipc::queue_mode(name)
            .unwrap_or_else(|| panic!("the queue {name} vanished while mq-dispatch ran"));
        testkit::ipc::assert_mode(&format!("mq-dispatch's queue {name}"), 0o600, mode);
    }

    let mut pids = vec![pid];
    pids.extend(&workers);
    testkit::cpu::assert_idle(
        &pids,
        Duration::from_secs(3),
        0.02,
        "An idle worker must block in mq_receive (Mailbox::receive), not call try_receive in \
         a loop; the dispatcher must block in poll() on stdin and the result queue.",
    );

    drop(stdin);
    let status = group.wait_or_explain(
        common::DEADLINE,
        "At EOF on stdin the dispatcher stops its workers, waits for them and unlinks its \
         queues.",
    );
    assert!(
        status.success(),
        "mq-dispatch with no job at all must exit 0 at EOF, it ended with {status}"
    );
}

/// Unlinks the queues on drop, whatever happened.
struct Unlink([String; 2]);

impl Drop for Unlink {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = nix::mqueue::mq_unlink(name.as_str());
        }
    }
}
