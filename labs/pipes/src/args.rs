//! Part A: reading `pipeline`'s command line and computing its exit status as bash does.

use std::error::Error;
use std::ffi::OsString;
use std::fmt;

use nix::sys::wait::WaitStatus;

/// The argument that separates two stages: a literal `|`, given quoted in a shell
/// (`pipeline echo hi '|' wc -c`).
pub const SEPARATOR: &str = "|";

/// The argument that, given first, turns on bash's `pipefail` rule.
pub const PIPEFAIL: &str = "--pipefail";

/// What `pipeline` was asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `true` when the first argument was `--pipefail`: the pipeline's status is then the
    /// rightmost non-zero status of any stage (see [`pipeline_status`]).
    pub pipefail: bool,
    /// The stages from left to right. Each stage is the program (looked up in `PATH`)
    /// followed by its arguments, exactly as given: never empty, no argument is `|`.
    pub stages: Vec<Vec<OsString>>,
}

/// Why a command line is not a pipeline. `pipeline` prints it with the usage line and
/// exits with status 2 without running anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// No command at all: `pipeline` or `pipeline --pipefail`.
    NoStage,
    /// Two `|` in a row: the stage at `index` (0-based, from the left) has no command.
    EmptyStage {
        /// The position of the empty stage: 0 is the first stage.
        index: usize,
    },
    /// The first argument (after `--pipefail`) is `|`: nothing writes into that pipe.
    LeadingBar,
    /// The last argument is `|`: nothing reads from that pipe.
    TrailingBar,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::NoStage => write!(f, "no command given"),
            UsageError::EmptyStage { index } => {
                write!(f, "stage {} is empty (two '|' in a row)", index + 1)
            }
            UsageError::LeadingBar => write!(f, "'|' before the first command"),
            UsageError::TrailingBar => write!(f, "'|' after the last command"),
        }
    }
}

impl Error for UsageError {}

/// Splits `pipeline`'s arguments into stages.
///
/// `args` are the arguments after the program name (`std::env::args_os().skip(1)`).
/// If the first one is `--pipefail`, [`Plan::pipefail`] is set and it is not part of any
/// stage; anywhere else `--pipefail` is an ordinary argument. Every argument equal to `|`
/// ends one stage and starts the next; any other argument, including the empty string,
/// one with spaces or one that is not UTF-8, belongs to the current stage unchanged.
///
/// # Errors
///
/// A [`UsageError`] when there is no stage, when `|` comes first or last, or when two `|`
/// follow each other. When several apply, the first in that order is reported.
///
/// # Example
///
/// ```no_run
/// use std::ffi::OsString;
/// use pipes::{parse_args, Plan};
///
/// let args = ["--pipefail", "echo", "hi", "|", "wc", "-c"].map(OsString::from);
/// let plan = parse_args(args)?;
/// assert!(plan.pipefail);
/// assert_eq!(plan.stages, [vec!["echo", "hi"], vec!["wc", "-c"]]);
/// # Ok::<(), pipes::UsageError>(())
/// ```
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Plan, UsageError> {
    let args: Vec<OsString> = args.into_iter().collect();
    todo!("part A: split {args:?} into stages")
}

/// The status of a whole pipeline, from the statuses of its stages (left to right), as
/// bash computes it.
///
/// Without `pipefail` it is the last stage's status: `false | true` is 0. With `pipefail`
/// it is the rightmost non-zero status, or 0 if every stage succeeded:
/// `false | true` is 1, and `sh -c 'exit 2' | sh -c 'exit 3' | true` is 3.
/// An empty slice gives 0.
///
/// # Example
///
/// ```no_run
/// use pipes::pipeline_status;
///
/// assert_eq!(pipeline_status(&[1, 0], false), 0);
/// assert_eq!(pipeline_status(&[1, 0], true), 1);
/// ```
pub fn pipeline_status(statuses: &[i32], pipefail: bool) -> i32 {
    todo!(
        "part A: the status of a pipeline whose stages ended with {statuses:?} (pipefail: {pipefail})"
    )
}

/// Turns what `waitpid` reported about a child into the number bash shows in `$?`:
/// the exit code if it exited, 128 + N if signal N killed it (143 for SIGTERM).
///
/// Returns `None` for a status that does not end the child (stopped, continued, still
/// alive): whoever waits must keep waiting.
///
/// # Example
///
/// ```no_run
/// use nix::sys::signal::Signal;
/// use nix::sys::wait::WaitStatus;
/// use nix::unistd::Pid;
/// use pipes::status_code;
///
/// let pid = Pid::from_raw(42);
/// assert_eq!(status_code(WaitStatus::Exited(pid, 3)), Some(3));
/// assert_eq!(status_code(WaitStatus::Signaled(pid, Signal::SIGPIPE, false)), Some(141));
/// assert_eq!(status_code(WaitStatus::Continued(pid)), None);
/// ```
pub fn status_code(status: WaitStatus) -> Option<i32> {
    todo!("part A: the number bash shows for {status:?}")
}
