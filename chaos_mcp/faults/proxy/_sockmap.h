/*
 * In-kernel splicing for the native relay: a BPF sockmap whose stream verdict program hands each
 * segment a socket receives straight to its peer's send path, so a toxic-free request/response
 * connection costs the proxy no wakeup, no copy and no system call per message.
 *
 * Per socket the program reads a control record (an mmap-shared array indexed by descriptor,
 * found through a hash of the socket's 4-tuple):
 *   PASS      the segment goes to the socket's own receive queue, read by the relay as usual;
 *             `passed` counts its bytes;
 *   RESUMING  as PASS until the relay has read and forwarded every passed byte (`consumed` ==
 *             `passed`), then REDIRECT: nothing the relay still holds can be overtaken;
 *   REDIRECT  the segment is spliced to the peer; `redirected` counts its bytes.
 * Leaving the kernel path (a toxic, an end of stream, bulk traffic) sets PASS and then waits until
 * the peer's send queue has taken every redirected byte before the relay writes to it again.
 */
#ifndef CHAOS_SOCKMAP_H
#define CHAOS_SOCKMAP_H

#include <stdint.h>

#define SOCKMAP_PASS 0
#define SOCKMAP_REDIRECT 1
#define SOCKMAP_RESUMING 2
#define SOCKMAP_SLOTS 65536 /* descriptors below this can use the kernel path */

typedef struct {
    uint32_t state;
    uint32_t unused;
    uint64_t redirected;
    uint64_t passed;
    uint64_t consumed;
} SockCtl;

typedef struct {
    unsigned char bytes[16]; /* the 4-tuple as the verdict program sees it */
} SockKey;

typedef struct {
    int sockhash_fd, index_fd, ctl_fd, prog_fd;
    SockCtl *ctl;
} Sockmap;

/* 0 and a ready sockmap, or -1 with errno (no BPF permission, old kernel ...). */
int sockmap_open(Sockmap *m);
void sockmap_close(Sockmap *m);
/* The key under which the peer of `fd` is found; -1 if fd is not a connected IPv4 TCP socket. */
int sockmap_key(int fd, SockKey *key);
/* Register the pair in PASS state (their segments are counted from now on). -1: nothing left
 * registered that could redirect; the sockets may keep a pass-only psock, which reads as usual. */
int sockmap_join(Sockmap *m, int fd_a, const SockKey *key_a, int fd_b, const SockKey *key_b);
/* Forget the pair's keys (their segments then pass as plain data). */
void sockmap_forget(Sockmap *m, const SockKey *key_a, const SockKey *key_b);
/* Wait for any verdict running on fd's socket to end (the socket lock is the barrier). */
void sockmap_barrier(int fd);
/* Bytes ever queued for sending on fd (acked + still in the send queue), exactly: -1 on failure,
 * or if acks kept arriving while it was read (only meaningful while nothing writes to fd). */
int64_t sockmap_queued(int fd);
/* The same, possibly less than the truth (never more) while acks arrive; -1 on failure. */
int64_t sockmap_queued_at_least(int fd);
/* Make the kernel look again at bytes that arrived before the socket joined. */
void sockmap_kick(int fd);

#endif
