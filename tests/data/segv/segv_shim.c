/* Two planted silent crashes for the crash oracle's core-dump path.
 *
 * Loaded into the real dbus-daemon with LD_PRELOAD, it watches every byte the bus reads from a
 * socket; bytes holding "Busrig.SegvA" make it write through a null pointer in busrig_segv_a,
 * "Busrig.SegvB" the same in busrig_segv_b. Both die by SIGSEGV and print nothing, so only a
 * backtrace read from the core tells the two bugs apart. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static volatile int *nowhere;

__attribute__((noinline)) void busrig_segv_a(void) { *nowhere = 1; }
__attribute__((noinline)) void busrig_segv_b(void) { *nowhere = 2; }

static void inspect(const void *data, ssize_t len) {
    if (len <= 0)
        return;
    if (memmem(data, (size_t)len, "Busrig.SegvA", 12))
        busrig_segv_a();
    if (memmem(data, (size_t)len, "Busrig.SegvB", 12))
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

ssize_t read(int fd, void *buf, size_t len) {
    static ssize_t (*real)(int, void *, size_t);
    if (!real)
        real = dlsym(RTLD_NEXT, "read");
    ssize_t n = real(fd, buf, len);
    inspect(buf, n);
    return n;
}
