//! Part A: [`Mailbox`], a POSIX message queue (`mq_open`, `mq_send`, `mq_receive`).
//!
//! A POSIX queue is a kernel object with a name (`/something`), a capacity (at most
//! `/proc/sys/fs/mqueue/msg_max` messages, 10 by default for a normal user) and a maximum
//! message size (at most `msgsize_max`, 8192 by default). It outlives the processes that use
//! it until someone calls `mq_unlink`. Messages keep their boundaries and carry a priority:
//! `mq_receive` always returns the oldest message of the highest priority.
//!
//! A full queue blocks `mq_send`; an empty one blocks `mq_receive`. `mq_timedsend` and
//! `mq_timedreceive` take an absolute deadline on `CLOCK_REALTIME`, and a deadline already
//! past means "do not wait at all": that gives the non-blocking variants without
//! `O_NONBLOCK`, a flag that would be shared by every process that inherited the descriptor.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::mqueue::MqdT;

/// The longest name [`check_name`] accepts, leading `/` included (Linux's NAME_MAX is 255).
pub const MAX_NAME_LEN: usize = 255;

/// One message taken from a [`Mailbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The bytes, exactly as sent.
    pub data: Vec<u8>,
    /// The priority it was sent with (0 is the lowest).
    pub priority: u32,
}

/// An open POSIX message queue. Dropping it closes the descriptor; the queue itself stays
/// until [`Mailbox::unlink`].
#[derive(Debug)]
pub struct Mailbox {
    // Always `Some` until drop: `mq_close` consumes the descriptor.
    mqd: Option<MqdT>,
    name: String,
    capacity: usize,
    msg_size: usize,
}

/// Checks that `name` is a valid queue name: a leading `/`, then 1 or more bytes, none of
/// them `/` or NUL, at most [`MAX_NAME_LEN`] bytes in all.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`], saying what is wrong with the name.
///
/// # Example
///
/// ```no_run
/// use mqueue::check_name;
///
/// assert!(check_name("/jobs").is_ok());
/// assert!(check_name("jobs").is_err());
/// assert!(check_name("/a/b").is_err());
/// ```
pub fn check_name(name: &str) -> io::Result<()> {
    let _ = name;
    todo!("part A: check the queue name {name:?}")
}

/// A queue name nobody else uses: `/<prefix>-<pid>-<counter>`, the counter counting the
/// calls in this process.
///
/// # Example
///
/// ```no_run
/// let a = mqueue::unique_name("mqlab");
/// let b = mqueue::unique_name("mqlab");
/// assert_ne!(a, b);
/// assert!(a.starts_with(&format!("/mqlab-{}-", std::process::id())));
/// ```
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/{prefix}-{}-{n}", std::process::id())
}

impl Mailbox {
    /// Creates the queue `name`, which must not exist yet, with room for `capacity` messages
    /// of at most `msg_size` bytes each, readable and writable by its owner only (mode 0600),
    /// and opens it for sending and receiving.
    ///
    /// Unprivileged, Linux allows a capacity of at most 10 and a size of at most 8192
    /// (`/proc/sys/fs/mqueue/msg_max` and `msgsize_max`).
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] for a bad name (see [`check_name`]) or a capacity
    ///   or size of 0, checked before any system call; the kernel's `EINVAL` for a capacity
    ///   or size above the limits.
    /// - [`io::ErrorKind::AlreadyExists`] if a queue of that name exists.
    /// - Any other error of `mq_open` (too many queues: `EMFILE`, `ENOSPC`).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use mqueue::Mailbox;
    ///
    /// let name = mqueue::unique_name("doc-create");
    /// let mb = Mailbox::create(&name, 4, 64)?;
    /// mb.send(b"hello", 1)?;
    /// let msg = mb.receive()?;
    /// assert_eq!((msg.data.as_slice(), msg.priority), (&b"hello"[..], 1));
    /// Mailbox::unlink(&name)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(name: &str, capacity: usize, msg_size: usize) -> io::Result<Mailbox> {
        let _ = (name, capacity, msg_size);
        todo!(
            "part A: create the queue {name:?} (mq_open with O_CREAT | O_EXCL, mode 0600, attributes)"
        )
    }

    /// Opens the existing queue `name` for sending and receiving; its capacity and message
    /// size are read from the kernel (`mq_getattr`).
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] for a bad name, before any system call.
    /// - [`io::ErrorKind::NotFound`] if there is no such queue.
    /// - [`io::ErrorKind::PermissionDenied`] if it belongs to someone else.
    pub fn open(name: &str) -> io::Result<Mailbox> {
        todo!("part A: open the existing queue {name:?} and read its attributes")
    }

    /// Removes the queue `name`. Processes that have it open keep using it; the name is free
    /// at once, and the queue is gone once the last of them closes it.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a bad name; [`io::ErrorKind::NotFound`] if there
    /// is no such queue.
    pub fn unlink(name: &str) -> io::Result<()> {
        todo!("part A: mq_unlink {name:?}")
    }

    /// The queue's name, as given to [`create`](Mailbox::create) or [`open`](Mailbox::open).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many messages the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The largest message the queue takes, in bytes.
    pub fn msg_size(&self) -> usize {
        self.msg_size
    }

    /// How many messages are in the queue now (`mq_getattr`'s `mq_curmsgs`).
    ///
    /// # Errors
    ///
    /// Any error of `mq_getattr`.
    pub fn len(&self) -> io::Result<usize> {
        todo!("part A: the number of messages in the queue (mq_getattr)")
    }

    /// Whether the queue holds no message now.
    ///
    /// # Errors
    ///
    /// Any error of `mq_getattr`.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Sends `data` with `priority`, waiting as long as the queue is full.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] if `data` is longer than [`msg_size`](Self::msg_size)
    ///   (checked before the system call, which would say `EMSGSIZE`) or `priority` is
    ///   32768 or more.
    /// - [`io::ErrorKind::Interrupted`] if a signal handler ran while it waited.
    pub fn send(&self, data: &[u8], priority: u32) -> io::Result<()> {
        let _ = (data, priority);
        todo!("part A: mq_send, waiting while the queue is full")
    }

    /// Sends `data` with `priority` if there is room now; never waits.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::WouldBlock`] if the queue is full: nothing was sent.
    /// - As [`send`](Self::send) otherwise.
    pub fn try_send(&self, data: &[u8], priority: u32) -> io::Result<()> {
        let _ = (data, priority);
        todo!("part A: send only if there is room now")
    }

    /// Sends `data` with `priority`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::TimedOut`] if the queue stayed full for `timeout`: nothing was sent.
    /// - As [`send`](Self::send) otherwise.
    pub fn send_timeout(&self, data: &[u8], priority: u32, timeout: Duration) -> io::Result<()> {
        let _ = (data, priority, timeout);
        todo!("part A: send, waiting at most the timeout")
    }

    /// Takes the oldest message of the highest priority, waiting as long as the queue is
    /// empty.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Interrupted`] if a signal handler ran while it waited; any other
    /// error of `mq_receive`.
    pub fn receive(&self) -> io::Result<Message> {
        todo!("part A: mq_receive, waiting while the queue is empty")
    }

    /// Takes a message if there is one now; never waits.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] if the queue is empty; as [`receive`](Self::receive)
    /// otherwise.
    pub fn try_receive(&self) -> io::Result<Message> {
        todo!("part A: receive only if a message is there now")
    }

    /// Takes a message, waiting at most `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] if the queue stayed empty for `timeout`; as
    /// [`receive`](Self::receive) otherwise.
    pub fn receive_timeout(&self, timeout: Duration) -> io::Result<Message> {
        let _ = timeout;
        todo!("part A: receive, waiting at most the timeout")
    }

    /// The open descriptor (for `poll`: readable when a message waits, writable when there
    /// is room).
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.mqd().as_fd()
    }

    fn mqd(&self) -> &MqdT {
        self.mqd
            .as_ref()
            .expect("the descriptor is open until drop")
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        if let Some(mqd) = self.mqd.take() {
            let _ = nix::mqueue::mq_close(mqd);
        }
    }
}
