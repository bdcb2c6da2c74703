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

/// Every lab the grader knows, with its checks: the one list the rest of the grader reads.
/// A test (`registry_matches_the_tree`) holds it to `labs/`, `solutions/` and every
/// lab.toml: the same labs, every check item naming a check here, every check used.
pub const LABS: &[(&str, &[Check])] = &[
    ("pipes", pipes::CHECKS),
    ("fifos", fifos::CHECKS),
    ("sysv-shm", sysv_shm::CHECKS),
    ("mqueue", mqueue::CHECKS),
    ("shm-ring", shm_ring::CHECKS),
    ("unix-sockets", unix_sockets::CHECKS),
    ("rpc", rpc::CHECKS),
    ("tcp-sockets", tcp_sockets::CHECKS),
    ("prefork", prefork::CHECKS),
];

/// The checks of the lab `slug`; `None` for a lab the grader does not know.
pub fn checks(slug: &str) -> Option<&'static [Check]> {
    LABS.iter().find(|(s, _)| *s == slug).map(|(_, c)| *c)
}

/// The check `name` of the lab `slug`.
pub fn find(slug: &str, name: &str) -> Option<&'static Check> {
    checks(slug)?.iter().find(|c| c.name == name)
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
