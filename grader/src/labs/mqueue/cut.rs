//! `lines_cut_anywhere`: job lines that reach the dispatcher cut over several reads, one
//! of them inside a UTF-8 character and one right before its newline. Each piece is
//! written only once the dispatcher has read everything before it (its stdin pipe is
//! empty), so every cut is forced to be a read boundary.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::check::{CheckResult, Ctx, Fail, poll_until};
use crate::fail;
use crate::sandbox::{Ending, Input, Spec};

use super::BIN;
use super::jobs::{judge_results, stderr_note};
use super::procs::describe_run;
use super::scope::Scope;

/// The pieces, in the order they are written: four jobs, cut mid-payload, inside the
/// 2-byte "é" (0xc3 0xa9), between a payload and its newline, and after a newline.
const PIECES: [&[u8]; 6] = [
    b"1 ab",
    b"c\n2 d\xc3",
    b"\xa9f\n3 x",
    b"yz",
    b"\n4 end",
    b"\n",
];

/// How long the dispatcher may take to read a piece.
const READ: Duration = Duration::from_secs(5);

pub(super) fn lines_cut_anywhere(ctx: &mut Ctx) -> CheckResult {
    let scope = Scope::enter(ctx);
    let spec = Spec {
        input: Input::Pipe,
        ..ctx.bin(BIN).args(["--workers", "2"])
    };
    let mut p = ctx.spawn(&spec)?;
    let pid = p.pid;
    let mut shown = Vec::new();
    for piece in PIECES {
        let stdin = p.stdin().ok_or_else(|| Fail("no stdin pipe".into()))?;
        stdin
            .write_all(piece)
            .and_then(|()| stdin.flush())
            .map_err(|e| Fail(format!("mq-dispatch stopped reading its stdin: {e}")))?;
        let fd = stdin.as_raw_fd();
        // Escaped bytes: the piece that ends inside "é" is not text on its own.
        shown.push(format!("\"{}\"", piece.escape_ascii()));
        if !poll_until(Instant::now() + READ, || {
            crate::check::pipe_unread(fd) == Some(0)
        }) {
            let state = describe_run(pid);
            p.kill();
            scope.sweep(&[pid]);
            fail!(
                "the grader wrote {} to mq-dispatch's stdin and waited for it to be read: it was \
                 still unread {} s later. The dispatcher must keep reading its input while it \
                 waits for results (poll stdin with the queues). Its processes:\n{state}",
                shown.join(", then "),
                READ.as_secs()
            );
        }
    }
    p.close_stdin();
    let Some(ending) = p.wait_until(Instant::now() + Duration::from_secs(5)) else {
        let state = describe_run(pid);
        p.kill();
        scope.sweep(&[pid]);
        fail!(
            "mq-dispatch got 4 jobs, each line in pieces, then the end of its input, and did not \
             exit within 5 s. Its processes:\n{state}"
        );
    };
    let out = ctx.finish("mq-dispatch", &mut p, Duration::from_secs(1))?;
    scope.sweep(&[pid]);
    let expected: BTreeMap<u64, String> = [(1, "abc"), (2, "déf"), (3, "xyz"), (4, "end")]
        .into_iter()
        .map(|(n, s)| (n, s.to_owned()))
        .collect();
    if let Some(problems) = judge_results(&out.stdout_str(), &expected) {
        // What the dispatcher printed may not be UTF-8: show a replaced byte as a code.
        let printed =
            crate::run::clip(out.stdout_str().trim(), 300).replace('\u{fffd}', "\\u{fffd}");
        let problems = problems.replace('\u{fffd}', "\\u{fffd}");
        fail!(
            "mq-dispatch's stdin got the 4 lines \"1 abc\", \"2 déf\", \"3 xyz\", \"4 end\" in \
             pieces, each piece read by a read() of its own: {}. It printed {:?}: {problems}. A line \
             is what lies between two newlines, however its bytes arrive: a read may end inside \
             a line, even inside a UTF-8 character, so keep the unfinished end of each read and \
             put the next read's bytes after it; decode a line only once its newline came.{}",
            shown.join(", "),
            printed,
            stderr_note(&out).replace('\u{fffd}', "\\u{fffd}")
        );
    }
    if ending != Ending::Exited(0) {
        fail!(
            "mq-dispatch got 4 good jobs, each line in pieces, and printed every result, but it \
             then {} (expected status 0: no line was bad).{}",
            ending.describe(),
            stderr_note(&out)
        );
    }
    Ok(())
}
