//! The registry of every lab's checks. Each lab's scenarios live in `labs/<slug>.rs`.

use crate::check::Check;

pub mod fifos;
pub mod mqueue;
pub mod pipes;
pub mod prefork;
pub mod rpc;
pub mod shm_ring;
pub mod sysv_shm;
pub mod tcp_sockets;
pub mod unix_sockets;

/// The checks of the lab `slug` (empty for a lab without checks).
pub fn checks(slug: &str) -> &'static [Check] {
    match slug {
        "pipes" => pipes::CHECKS,
        "fifos" => fifos::CHECKS,
        "sysv-shm" => sysv_shm::CHECKS,
        "mqueue" => mqueue::CHECKS,
        "shm-ring" => shm_ring::CHECKS,
        "unix-sockets" => unix_sockets::CHECKS,
        "rpc" => rpc::CHECKS,
        "tcp-sockets" => tcp_sockets::CHECKS,
        "prefork" => prefork::CHECKS,
        _ => &[],
    }
}

/// The check `name` of the lab `slug`.
pub fn find(slug: &str, name: &str) -> Option<&'static Check> {
    checks(slug).iter().find(|c| c.name == name)
}

/// Quotes `arg` for bash, so that a check can run the same command line under bash.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_bash() {
        assert_eq!(shell_quote("a-b"), "a-b");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
