//! Expected outcomes as explanations: a failed visible test says what was expected and what
//! happened instead ("Segment::create twice with the same key: expected an error of kind
//! AlreadyExists, but it succeeded with Segment { id: 3 }"), never a bare
//! "called `Result::unwrap_err()` on an `Ok` value".

use std::fmt::{Debug, Display};
use std::io;

/// Explanatory versions of `unwrap` and `unwrap_err` for `Result` (named apart from
/// std's inherent `expect` and `expect_err`, which would shadow them).
pub trait Expect<T, E> {
    /// The value; otherwise fails with "`what`: expected it to succeed, but it failed: ...".
    fn expect_success(self, what: &str) -> T;
    /// The error; otherwise fails with "`what`: expected an error, but it succeeded with
    /// ...".
    fn expect_failure(self, what: &str) -> E;
}

impl<T: Debug, E: Display + Debug> Expect<T, E> for Result<T, E> {
    #[track_caller]
    fn expect_success(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{what}: expected it to succeed, but it failed: {e} ({e:?})"),
        }
    }

    #[track_caller]
    fn expect_failure(self, what: &str) -> E {
        match self {
            Ok(v) => panic!("{what}: expected an error, but it succeeded with {v:?}"),
            Err(e) => e,
        }
    }
}

/// The error of `result`, which must be an `io::Error` of `kind`; otherwise fails naming
/// `what`, the expected kind and what came instead (the value, or the other error with
/// its OS error number).
#[track_caller]
pub fn expect_err_kind<T: Debug>(
    result: io::Result<T>,
    what: &str,
    kind: io::ErrorKind,
) -> io::Error {
    match result {
        Ok(v) => panic!("{what}: expected an error of kind {kind:?}, but it succeeded with {v:?}"),
        Err(e) if e.kind() == kind => e,
        Err(e) => {
            let os = e
                .raw_os_error()
                .map(|n| format!(", OS error {n}"))
                .unwrap_or_default();
            panic!(
                "{what}: expected an error of kind {kind:?}, got one of kind {:?}{os}: {e}",
                e.kind()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_was_expected() {
        let r: Result<u8, String> = Ok(3);
        let msg = std::panic::catch_unwind(|| r.expect_failure("open twice")).unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert_eq!(
            msg,
            "open twice: expected an error, but it succeeded with 3"
        );
        let r: io::Result<()> = Err(io::Error::from_raw_os_error(libc::EACCES));
        let msg = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            expect_err_kind(r, "open", io::ErrorKind::NotFound)
        }))
        .unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("got one of kind PermissionDenied, OS error 13"),
            "{msg}"
        );
    }
}
