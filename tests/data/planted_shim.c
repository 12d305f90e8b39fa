/* Planted crashes for the crash oracle, loaded into the real dbus-daemon with LD_PRELOAD.
 *
 * It watches every byte the bus reads from a socket. When the bytes hold a trigger (a bus name
 * a scenario asks for, tests/data/asan and tests/data/segv):
 * - "Busrig.Overflow": one byte written past a heap buffer in busrig_overflow. Built with
 *   -fsanitize=address (and loaded after AddressSanitizer's runtime), AddressSanitizer reports
 *   a heap-buffer-overflow WRITE there and aborts the bus.
 * - "Busrig.SegvA" / "Busrig.SegvB": a write through a null pointer in busrig_segv_a /
 *   busrig_segv_b: two bugs that both die by SIGSEGV and print nothing, told apart only by the
 *   backtrace read from the core.
 * Nothing else changes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static volatile int *nowhere;

__attribute__((noinline)) void busrig_overflow(size_t n) {
    char *buf = malloc(n);
    buf[n] = 'x'; /* one byte past the end */
    free(buf);
}

__attribute__((noinline)) void busrig_segv_a(void) { *nowhere = 1; }
__attribute__((noinline)) void busrig_segv_b(void) { *nowhere = 2; }

static int holds(const void *data, ssize_t len, const char *trigger) {
    return len > 0 && memmem(data, (size_t)len, trigger, strlen(trigger)) != NULL;
}

static void inspect(const void *data, ssize_t len) {
    if (holds(data, len, "Busrig.Overflow"))
        busrig_overflow(16);
    if (holds(data, len, "Busrig.SegvA"))
        busrig_segv_a();
    if (holds(data, len, "Busrig.SegvB"))
        busrig_segv_b();
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    static ssize_t (*real)(int, struct msghdr *, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "recvmsg");
    ssize_t n = real(fd, msg, flags);
    ssize_t left = n;
    for (size_t i = 0; left > 0 && i < msg->msg_iovlen; i++) {
        ssize_t part = left < (ssize_t)msg->msg_iov[i].iov_len ? left
                                                               : (ssize_t)msg->msg_iov[i].iov_len;
        inspect(msg->msg_iov[i].iov_base, part);
        left -= part;
    }
    return n;
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    static ssize_t (*real)(int, void *, size_t, int);
    if (!real)
        real = dlsym(RTLD_NEXT, "recv");
    ssize_t n = real(fd, buf, len, flags);
    inspect(buf, n);
    return n;
}

ssize_t read(int fd, void *buf, size_t len) {
    static ssize_t (*real)(int, void *, size_t);
    if (!real)
        real = dlsym(RTLD_NEXT, "read");
    ssize_t n = real(fd, buf, len);
    inspect(buf, n);
    return n;
}
