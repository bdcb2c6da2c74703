//! Checks of the fifos lab.

use crate::check::Check;

/// The checks, by the names lab.toml uses.
pub const CHECKS: &[Check] = &[];
