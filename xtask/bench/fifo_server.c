/* fifo_server.c: the baseline of `cargo xtask bench`, a minimal C server of the fifos lab's
 * protocol under the same contract as the reference solution (labs/fifos/README.md):
 *
 *   fifo_server DIR   mkfifo DIR/seqnum.fifo 0600 (reuse a stale one, refuse a live one),
 *                     print "ready", serve "<pid> <count>\n" requests with "<start>\n" or
 *                     "error <reason>\n" on DIR/client.<pid>.fifo, opened
 *                     O_WRONLY|O_NONBLOCK and written only if it is a FIFO, until SIGINT or
 *                     SIGTERM (read from a signalfd), then unlink the FIFO and exit 0.
 *
 * Per request it makes the system calls the contract needs and no more, the same as the
 * reference solution: open, fcntl(F_GETPIPE_SZ) (which only a pipe or FIFO answers), write,
 * close of the reply FIFO; per batch of requests one poll and one read.
 *
 * Built twice more by the bench, to show what the FIFO check costs: with -DCHECK_FSTAT
 * the check is fstat + S_ISFIFO instead, with -DNO_CHECK there is none (which breaks the
 * contract: a regular file at the reply path gets written to).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINE 64
#define MAX_COUNT 1000000ULL

static const char *dir;
static char fifo[PATH_MAX];

static void die(const char *what) {
    fprintf(stderr, "fifo_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Digits only, at most 19 of them; -1 when not a number. */
static long long digits(const char *s, size_t n) {
    if (n == 0 || n > 19) return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v > LLONG_MAX ? -1 : (long long)v;
}

static long long pid_of(const char *s, size_t n) {
    long long p = digits(s, n);
    return p >= 1 && p <= INT_MAX ? p : -1;
}

/* 1 when the whole line went to the client's FIFO. */
static int reply(long long pid, const char *line, size_t len) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/client.%lld.fifo", dir, pid);
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
#if defined(NO_CHECK)
    int is_fifo = 1;
#elif defined(CHECK_FSTAT)
    struct stat st;
    int is_fifo = fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
#else
    int is_fifo = fcntl(fd, F_GETPIPE_SZ) >= 0;
#endif
    int ok = is_fifo && write(fd, line, len) == (ssize_t)len;
    close(fd);
    return ok;
}

static unsigned long long next;

static void handle(const char *line, size_t n, int too_long) {
    const char *sp = memchr(line, ' ', n);
    size_t first = sp ? (size_t)(sp - line) : n;
    long long pid = pid_of(line, first);
    const char *reason = NULL;
    long long count = -1;
    if (too_long) {
        reason = "request too long";
    } else if (!sp || memchr(sp + 1, ' ', n - first - 1)) {
        reason = "expected <pid> <count>";
    } else if (pid < 0) {
        reason = "bad pid";
    } else {
        count = digits(sp + 1, n - first - 1);
        if (count < 1 || (unsigned long long)count > MAX_COUNT) reason = "count must be 1..=1000000";
    }
    char out[96];
    if (reason) {
        if (pid > 0) reply(pid, out, (size_t)snprintf(out, sizeof out, "error %s\n", reason));
        return;
    }
    if (reply(pid, out, (size_t)snprintf(out, sizeof out, "%llu\n", next)))
        next += (unsigned long long)count;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fifo_server DIR\n");
        return 2;
    }
    dir = argv[1];
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) die("blocking SIGINT and SIGTERM");
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) die("creating a signalfd");
    signal(SIGPIPE, SIG_IGN); /* EPIPE: the client has gone */

    snprintf(fifo, sizeof fifo, "%s/seqnum.fifo", dir);
    if (mkfifo(fifo, 0600) < 0) {
        struct stat st;
        if (errno != EEXIST) die("creating the FIFO");
        if (lstat(fifo, &st) < 0) die("examining the FIFO");
        if (!S_ISFIFO(st.st_mode)) {
            fprintf(stderr, "fifo_server: %s exists and is not a FIFO\n", fifo);
            return 1;
        }
        int probe = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (probe >= 0) {
            fprintf(stderr, "fifo_server: a server is already running on %s\n", fifo);
            return 1;
        }
        if (errno != ENXIO) die("probing the FIFO");
    }
    int rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (rd < 0) { unlink(fifo); die("opening the FIFO for reading"); }
    int keepalive = open(fifo, O_WRONLY | O_CLOEXEC); /* never EOF while it is open */
    if (keepalive < 0) { unlink(fifo); die("opening the FIFO for writing"); }
    printf("ready\n");
    fflush(stdout);

    char buf[4096], line[MAX_LINE];
    size_t len = 0;
    int too_long = 0;
    for (;;) {
        struct pollfd fds[2] = {{rd, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            unlink(fifo);
            die("poll");
        }
        if (fds[1].revents) break;
        if (!fds[0].revents) continue;
        ssize_t n = read(rd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            unlink(fifo);
            die("reading requests");
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                handle(line, len, too_long);
                len = 0;
                too_long = 0;
            } else if (len + 1 < MAX_LINE) {
                line[len++] = buf[i];
            } else {
                too_long = 1;
            }
        }
    }
    unlink(fifo);
    return 0;
}
