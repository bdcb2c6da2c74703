//! # Lab 3: System V shared memory and semaphores
//!
//! You wrap libc's System V calls (`ftok`, `shmget`, `shmat`, `shmdt`, `shmctl`, `semget`,
//! `semop`, `semctl`) behind a safe API, and use it to write `shmctr`, a counter that many
//! processes increment at once without losing an update.
//!
//! nix has no System V IPC, so this lab is also about `unsafe`: each libc call is made in
//! one small `unsafe` block whose `// SAFETY:` comment says why it is sound, and the types
//! around it make every misuse impossible from safe code (a segment is detached exactly
//! once; the shared bytes are never seen as `&mut [u8]`).
//!
//! - **Part A** ([`key`], [`segment`]): [`Key`], [`Segment`], [`SegmentStat`],
//!   [`Attachment`].
//! - **Part B** ([`semaphore`]): [`Semaphore`] and its lock guard [`SemGuard`].
//! - **Part C** (`src/bin/shmctr.rs`): the `shmctr` program.
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b` and `part_c`.
//! README.md has the background, the exact contract and hints.
//!
//! Every function returns the OS error as an [`std::io::Error`]
//! ([`std::io::Error::last_os_error`] right after the failed call), so that callers can
//! match on its kind ([`std::io::ErrorKind::NotFound`], `AlreadyExists`,
//! `PermissionDenied`) and `raw_os_error()` is the errno.
//!
//! # Layout
//!
//! | Concept                                                      | File                   |
//! |--------------------------------------------------------------|------------------------|
//! | keys: `ftok`, `IPC_PRIVATE`                                  | `src/key.rs`           |
//! | segments: `shmget`, `shmat`, `shmdt`, `shmctl`; why atomics  | `src/segment.rs`       |
//! | semaphores: `semget`, `semop`, `semctl`; `SEM_UNDO`          | `src/semaphore.rs`     |
//! | the `shmctr` program: a counter shared by processes          | `src/bin/shmctr.rs`    |

pub mod key;
pub mod segment;
pub mod semaphore;

pub use key::Key;
pub use segment::{Attachment, Segment, SegmentStat};
pub use semaphore::{SemGuard, Semaphore};
