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

use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_attr_member_t};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};

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
/// ```
/// use mqueue::check_name;
///
/// assert!(check_name("/jobs").is_ok());
/// assert!(check_name("jobs").is_err());
/// assert!(check_name("/a/b").is_err());
/// ```
pub fn check_name(name: &str) -> io::Result<()> {
    let bad = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad queue name {name:?}: {why}"),
        ))
    };
    let Some(rest) = name.strip_prefix('/') else {
        return bad("it must start with '/'");
    };
    if rest.is_empty() {
        return bad("it needs a name after the '/'");
    }
    if rest.contains('/') {
        return bad("only the first character may be '/'");
    }
    if rest.contains('\0') {
        return bad("it contains a NUL byte");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is longer than 255 bytes");
    }
    Ok(())
}

/// A queue name nobody else uses: `/<prefix>-<pid>-<counter>`, the counter counting the
/// calls in this process.
///
/// # Example
///
/// ```
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

/// The absolute `CLOCK_REALTIME` deadline `timeout` from now, as `mq_timed*` want it.
fn deadline(timeout: Duration) -> io::Result<TimeSpec> {
    let now = clock_gettime(ClockId::CLOCK_REALTIME)?;
    Ok(now + TimeSpec::from_duration(timeout))
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
    /// ```
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
        check_name(name)?;
        if capacity == 0 || msg_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a queue needs a capacity and a message size of at least 1",
            ));
        }
        let as_member = |v: usize| {
            mq_attr_member_t::try_from(v).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        };
        let attr = MqAttr::new(0, as_member(capacity)?, as_member(msg_size)?, 0);
        let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        let mqd = nix::mqueue::mq_open(name, flags, Mode::from_bits_truncate(0o600), Some(&attr))?;
        Ok(Mailbox {
            mqd: Some(mqd),
            name: name.to_owned(),
            capacity,
            msg_size,
        })
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
        check_name(name)?;
        let flags = MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        let mqd = nix::mqueue::mq_open(name, flags, Mode::empty(), None)?;
        let attr = nix::mqueue::mq_getattr(&mqd)?;
        Ok(Mailbox {
            mqd: Some(mqd),
            name: name.to_owned(),
            capacity: attr.maxmsg() as usize,
            msg_size: attr.msgsize() as usize,
        })
    }

    /// Removes the queue `name`. Processes that have it open keep using it; the name is free
    /// at once, and the queue is gone once the last of them closes it.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a bad name; [`io::ErrorKind::NotFound`] if there
    /// is no such queue.
    pub fn unlink(name: &str) -> io::Result<()> {
        check_name(name)?;
        nix::mqueue::mq_unlink(name)?;
        Ok(())
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
        Ok(nix::mqueue::mq_getattr(self.mqd())?.curmsgs() as usize)
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
        self.check_message(data, priority)?;
        nix::mqueue::mq_send(self.mqd(), data, priority)?;
        Ok(())
    }

    /// Sends `data` with `priority` if there is room now; never waits.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::WouldBlock`] if the queue is full: nothing was sent.
    /// - As [`send`](Self::send) otherwise.
    pub fn try_send(&self, data: &[u8], priority: u32) -> io::Result<()> {
        self.check_message(data, priority)?;
        // A deadline that is already past: the kernel sends if there is room, and otherwise
        // fails at once with ETIMEDOUT, which here means "full".
        let now = deadline(Duration::ZERO)?;
        match self.timedsend(data, priority, &now) {
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
            other => Ok(other?),
        }
    }

    /// Sends `data` with `priority`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::TimedOut`] if the queue stayed full for `timeout`: nothing was sent.
    /// - As [`send`](Self::send) otherwise.
    pub fn send_timeout(&self, data: &[u8], priority: u32, timeout: Duration) -> io::Result<()> {
        self.check_message(data, priority)?;
        let until = deadline(timeout)?;
        match self.timedsend(data, priority, &until) {
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Err(io::ErrorKind::TimedOut.into()),
            other => Ok(other?),
        }
    }

    /// Takes the oldest message of the highest priority, waiting as long as the queue is
    /// empty.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Interrupted`] if a signal handler ran while it waited; any other
    /// error of `mq_receive`.
    pub fn receive(&self) -> io::Result<Message> {
        let mut buf = vec![0u8; self.msg_size];
        let mut priority = 0;
        let n = nix::mqueue::mq_receive(self.mqd(), &mut buf, &mut priority)?;
        Ok(Self::message(buf, n, priority))
    }

    /// Takes a message if there is one now; never waits.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] if the queue is empty; as [`receive`](Self::receive)
    /// otherwise.
    pub fn try_receive(&self) -> io::Result<Message> {
        match self.timedreceive(Duration::ZERO) {
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
            other => Ok(other?),
        }
    }

    /// Takes a message, waiting at most `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] if the queue stayed empty for `timeout`; as
    /// [`receive`](Self::receive) otherwise.
    pub fn receive_timeout(&self, timeout: Duration) -> io::Result<Message> {
        match self.timedreceive(timeout) {
            Err(Errno::ETIMEDOUT | Errno::EAGAIN) => Err(io::ErrorKind::TimedOut.into()),
            other => Ok(other?),
        }
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

    fn check_message(&self, data: &[u8], priority: u32) -> io::Result<()> {
        if data.len() > self.msg_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a message of {} bytes does not fit in {} (at most {} bytes)",
                    data.len(),
                    self.name,
                    self.msg_size
                ),
            ));
        }
        if priority >= 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("priority {priority} is above the limit of 32767"),
            ));
        }
        Ok(())
    }

    fn timedsend(&self, data: &[u8], priority: u32, until: &TimeSpec) -> Result<(), Errno> {
        use std::os::fd::AsRawFd;
        // nix has no mq_timedsend; on Linux an mqd_t is the descriptor itself.
        // SAFETY: a valid descriptor, a buffer of `data.len()` bytes and a valid timespec.
        let r = unsafe {
            libc::mq_timedsend(
                self.mqd().as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                priority,
                until.as_ref(),
            )
        };
        Errno::result(r).map(drop)
    }

    fn timedreceive(&self, timeout: Duration) -> Result<Message, Errno> {
        let until =
            deadline(timeout).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        let mut buf = vec![0u8; self.msg_size];
        let mut priority = 0;
        let n = nix::mqueue::mq_timedreceive(self.mqd(), &mut buf, &mut priority, &until)?;
        Ok(Self::message(buf, n, priority))
    }

    fn message(mut buf: Vec<u8>, n: usize, priority: u32) -> Message {
        buf.truncate(n);
        Message {
            data: buf,
            priority,
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        if let Some(mqd) = self.mqd.take() {
            let _ = nix::mqueue::mq_close(mqd);
        }
    }
}
