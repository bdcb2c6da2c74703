//! # Lab 6: UNIX-domain sockets
//!
//! You write two servers on UNIX-domain stream sockets, the IPC of choice between processes
//! of one machine:
//!
//! - `uds-bus PATH [--allow UID]...`: a message bus. Every line a client sends goes, whole
//!   and in order, to every other client. Only peers whose uid (from `SO_PEERCRED`) is the
//!   server's or listed with `--allow` are admitted. One thread, one `poll` loop, and a
//!   client that stops reading never stalls the others.
//! - `fd-server PATH FILE` and `fd-client PATH`: the server opens FILE and hands the open
//!   descriptor to every client with `SCM_RIGHTS`; the client, which may not be allowed to
//!   open FILE itself, copies it to stdout.
//!
//! The lab has three parts:
//!
//! - **Part A** ([`frame`]): cutting a byte stream into whole lines ([`frame::Lines`]) and a
//!   bounded output buffer ([`frame::Outbox`]). Pure code.
//! - **Part B** ([`sock`], [`bus`]): a socket file that is created, replaced when stale,
//!   refused when live and removed on exit; the bus's `poll` loop, credentials, broadcast.
//! - **Part C** ([`fdpass`]): `sendmsg`/`recvmsg` with `SCM_RIGHTS`, the fd server and
//!   client.
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b` and `part_c`.
//! README.md has the background, the exact contract and hints.
//!
//! # Layout
//!
//! | Concept                                                         | File               |
//! |-----------------------------------------------------------------|--------------------|
//! | framing a stream into lines; a bounded output buffer, non-blocking writes | `src/frame.rs` |
//! | `bind`, `sun_path`'s 108 bytes, stale or live (`ECONNREFUSED`), the file's mode, unlink; `signalfd` | `src/sock.rs` |
//! | `poll` over many sockets, `accept`, `SO_PEERCRED`, broadcast, dropping a slow reader | `src/bus.rs` |
//! | `SCM_RIGHTS`, `cmsg_space!`, `MSG_CTRUNC`, `pread` on a shared open file | `src/fdpass.rs` |
//! | the programs (given)                                             | `src/bin/`         |

pub mod bus;
pub mod fdpass;
pub mod frame;
pub mod sock;
