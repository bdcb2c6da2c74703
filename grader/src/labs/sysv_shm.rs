//! Checks of the sysv-shm lab.

use crate::check::Check;

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[];
