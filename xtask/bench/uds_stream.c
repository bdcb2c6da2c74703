/* The C anchor of `cargo xtask bench --only unix-sockets`: bytes through one UNIX stream
 * socket between two processes, CHUNK-byte writes and reads.
 *
 *   uds_stream BYTES CHUNK
 *
 * socketpair(AF_UNIX, SOCK_STREAM), fork: the child writes BYTES in CHUNK-byte writes, the
 * parent reads them with a CHUNK-byte buffer. Prints the seconds the transfer took (from
 * just before the fork to the last byte read) on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: uds_stream BYTES CHUNK\n");
        return 2;
    }
    long long bytes = atoll(argv[1]);
    size_t chunk = (size_t)atol(argv[2]);
    char *buf = malloc(chunk);
    if (!buf) return 1;
    memset(buf, 0x5a, chunk);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) { perror("socketpair"); return 1; }
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        close(sv[0]);
        long long left = bytes;
        while (left > 0) {
            size_t n = left < (long long)chunk ? (size_t)left : chunk;
            ssize_t w = write(sv[1], buf, n);
            if (w <= 0) { perror("write"); _exit(1); }
            left -= w;
        }
        _exit(0);
    }
    close(sv[1]);
    long long got = 0;
    for (;;) {
        ssize_t r = read(sv[0], buf, chunk);
        if (r < 0) { perror("read"); return 1; }
        if (r == 0) break;
        got += r;
    }
    double t = now() - t0;
    int status;
    waitpid(pid, &status, 0);
    if (got != bytes || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "uds_stream: got %lld of %lld bytes\n", got, bytes);
        return 1;
    }
    printf("%.6f\n", t);
    return 0;
}
