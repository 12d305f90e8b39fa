/* A planted heap overflow for the sanitizer path of the crash oracle.
 *
 * Loaded into the real dbus-daemon with LD_PRELOAD (after AddressSanitizer's runtime), it
 * watches every byte the bus reads from a socket; when the bytes hold the trigger (a bus name
 * a scenario asks for), it writes one byte past a heap buffer, and AddressSanitizer reports a
 * heap-buffer-overflow WRITE in busrig_overflow and aborts the bus. Nothing else changes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static const char TRIGGER[] = "Busrig.Overflow";

__attribute__((noinline)) void busrig_overflow(size_t n) {
    char *buf = malloc(n);
    buf[n] = 'x'; /* one byte past the end */
    free(buf);
}

static void inspect(const void *data, ssize_t len) {
    if (len > 0 && memmem(data, (size_t)len, TRIGGER, sizeof TRIGGER - 1))
        busrig_overflow(16);
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
