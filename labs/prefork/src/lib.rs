//! # Lab 9: prefork, a multi-process web server
//!
//! The capstone: a static-file HTTP/1.1 server built the way Apache's prefork MPM is. A
//! master process binds the listening socket and forks N workers that all accept on it; a
//! scoreboard in shared memory shows what each worker does; the master replaces a worker
//! that dies at once, replaces all of them on SIGHUP without dropping a connection, and
//! stops gracefully on SIGTERM. One crashed worker costs one connection, never the server.
//!
//! - **Part A** ([`http`]): parsing a request head, the response head, content types, and
//!   mapping a URL to a file without ever leaving the document root.
//! - **Part B** ([`scoreboard`]): the shared-memory scoreboard (`mmap` of anonymous
//!   `MAP_SHARED` memory before `fork`, atomics for every word).
//! - **Part C** ([`worker`]): accepting on the shared socket and serving connections
//!   (keep-alive, `sendfile`, SIGTERM between requests).
//! - **Part D** ([`master`]): forking, reaping and replacing workers; SIGHUP and SIGTERM
//!   through a `signalfd`.
//!
//! `cargo test part_a` runs the tests of part A; likewise `part_b`, `part_c` and `part_d`.
//! README.md has the background, the exact contract and hints.
//!
//! # Layout
//!
//! | Concept                                                      | File                          |
//! |--------------------------------------------------------------|-------------------------------|
//! | request heads, response heads, content types, safe paths    | `src/http.rs`                 |
//! | the scoreboard in shared memory                              | `src/scoreboard.rs`           |
//! | a worker: accept, serve a connection, stop between requests  | `src/worker.rs`               |
//! | the master: fork, SIGCHLD, SIGHUP, SIGTERM                   | `src/master.rs`               |
//! | the program (given)                                          | `src/bin/prefork-httpd.rs`    |

pub mod http;
pub mod master;
pub mod scoreboard;
pub mod worker;
