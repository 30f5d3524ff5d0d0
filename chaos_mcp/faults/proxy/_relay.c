/*
 * The proxy's native fast path: one thread relaying bytes between socket pairs with no toxic.
 *
 * A connection with no toxic has nothing for Python to do but copy bytes, and copying them in
 * Python costs a GIL-holding callback per read. The daemon hands such a connection's two
 * sockets to this relay (adopt), which moves bytes with epoll + read + write on its own thread,
 * without the GIL, until the connection ends (reported through `finished()` and `fileno()`) or
 * a toxic needs it back (release: the relay stops touching both sockets before it returns, and
 * hands back the bytes it had read but not yet written, so nothing is lost or reordered).
 *
 * Where BPF is allowed, a pair adopted for the first time also joins an in-kernel splice
 * (_sockmap.h): the kernel then moves its bytes without waking this thread at all, and the pair
 * drops back to epoll relaying, for good, on its first end of stream, error, release or burst of
 * bulk traffic.
 *
 * The relay never opens or closes a socket: Python's transports own them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "_sockmap.h"

#define SCRATCH_SIZE (256 * 1024)
#define MAX_EVENTS 256
#define WAKE_TOKEN UINT64_MAX
#define FULL_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define QUIET_EVENTS (EPOLLRDHUP | EPOLLET) /* kernel-spliced: only ends and errors wake us */
#define TICK_NS 10000000L                   /* how often spliced pairs are checked for bulk */
#define BULK_BYTES (4u << 20)               /* per tick: more goes through epoll (faster for bulk) */
#define GATE_POLL_NS 100000L                /* retry a gated half this often ... */
#define GATE_SLOW_AFTER_NS 2000000L         /* ... for this long, then (a stalled reader) ... */
#define GATE_SLOW_POLL_NS 5000000L          /* ... this often */
#define IN_FLIGHT_LIMIT (4u << 20)          /* spliced, not yet sent: more, and its source stops */
#define LEAVE_PATIENCE_NS 20000000L         /* then a socket whose inbound still flows switches */
#define FLOWING_BYTES (256u << 10)          /* ... if no more than this is still to be sent to it */

typedef struct {
    char *pending;       /* bytes read from src that dst did not take yet */
    size_t pending_len;
    size_t pending_off;
    int readable;        /* src may have bytes to read (edge seen, not yet read to empty) */
    int peer_shut;       /* src's peer shut its side: read on to end of stream */
    int eof;             /* src reached end of stream */
    int done;            /* eof seen and everything flushed; dst shut for writing */
    uint64_t bytes;      /* bytes written to dst by this thread */
    uint64_t read;       /* bytes read from src by this thread */
    uint64_t spliced;    /* bytes the kernel moved from src, fixed when src switched to PASS */
    uint64_t joined_bytes, joined_read; /* bytes and read when the pair joined the splice */
    int gated;           /* wait until dst has taken every spliced byte before writing to it */
} Half;

typedef struct {
    uint32_t gen;        /* odd while in use */
    int fd[2];           /* 0: client side, 1: upstream side */
    Half half[2];        /* 0: up (fd 0 -> fd 1), 1: down (fd 1 -> fd 0) */
    int kernel;          /* joined to the in-kernel splice (and not yet fully out of it) */
    int quiet;           /* ... and both directions spliced: registered for ends and errors only */
    int leaving;         /* ... and on the way out */
    long leaving_since;
    int switched[2];     /* fd[s] passes its segments to its own queue for good */
    int releasing;       /* a release is waiting for spliced bytes: move nothing meanwhile */
    SockKey key[2];
    int64_t base[2];     /* bytes ever queued on fd[s] when the pair joined */
    uint64_t sampled[2]; /* spliced byte counts at the last tick */
} Pair;

typedef struct {
    uint64_t handle;
    int reset;
    uint64_t up, down;
} Finished;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t lock;
    pthread_t thread;
    int thread_started;
    int stopping;
    int epfd;
    int wakefd;          /* wakes the relay thread (stop) */
    int notifyfd;        /* readable when connections finished */
    long spin_ns;
    Pair *pairs;
    size_t npairs;
    size_t *free_slots;
    size_t nfree;
    Finished *finished;
    size_t nfinished, capfinished;
    size_t active;
    char *scratch;
    int kernel;          /* the in-kernel splice is available */
    Sockmap sockmap;
    size_t kernel_pairs;
    size_t leaving_pairs;
    size_t gated_halves;
    long gated_since;    /* when gated_halves last rose from 0 */
    long next_tick;
    int *loop_epolls;    /* the process's other epoll instances (the event loop's) */
    size_t nloop_epolls;
} Relay;

static uint64_t handle_of(size_t slot, uint32_t gen) { return ((uint64_t)gen << 32) | (uint64_t)slot; }

static Pair *pair_of(Relay *r, uint64_t handle) {
    size_t slot = (size_t)(handle & 0xffffffffu);
    uint32_t gen = (uint32_t)(handle >> 32);
    if (slot >= r->npairs || r->pairs[slot].gen != gen || !(gen & 1))
        return NULL;
    return &r->pairs[slot];
}

static uint64_t token(size_t slot, uint32_t gen, int side) {
    return ((uint64_t)gen << 32) | ((uint64_t)slot << 1) | (uint64_t)side;
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* ---- the in-kernel splice (all under r->lock) ------------------------------------------- */

static SockCtl *ctl_of(Relay *r, int fd) { return &r->sockmap.ctl[fd]; }

/* Bytes the kernel has moved from src of half h so far (final once src switched). */
static uint64_t spliced_bytes(Relay *r, Pair *p, int h) {
    if (p->kernel && !p->switched[h])
        return __atomic_load_n(&ctl_of(r, p->fd[h])->redirected, __ATOMIC_ACQUIRE);
    return p->half[h].spliced;
}

/*
 * The process's other epoll instances, i.e. the event loop's. libuv (uvloop) stops watching a
 * paused socket lazily, on its next readiness event; a spliced socket never becomes readable, so
 * the loop would keep being woken in the kernel by every spliced segment. Taking a spliced
 * socket out of those instances is what libuv would do itself, and it adds it back when Python
 * reads the socket again.
 */
static int find_loop_epolls(Relay *r) {
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char path[300], target[64];
        int fd = atoi(entry->d_name);
        if (entry->d_name[0] == '.' || fd == r->epfd || fd == dirfd(dir))
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len < 0)
            continue;
        target[len] = 0;
        if (strcmp(target, "anon_inode:[eventpoll]") != 0)
            continue;
        int *grown = realloc(r->loop_epolls, (r->nloop_epolls + 1) * sizeof(int));
        if (grown == NULL)
            break;
        r->loop_epolls = grown;
        r->loop_epolls[r->nloop_epolls++] = fd;
    }
    closedir(dir);
    return 0;
}

static int pump_half(Relay *r, size_t slot, Pair *p, int h);
static void finish(Relay *r, size_t slot, Pair *p, int reset);

/* Read what arrived before joining: the kernel hands the verdict whole segments, so a segment
 * partly read in user space would be spliced again from its start. 0: both sources empty,
 * nothing held, no end seen; -1: not so; -2: a socket failed. */
static int drain_before_join(Relay *r, size_t slot, Pair *p) {
    for (int h = 0; h < 2; h++) {
        Half *half = &p->half[h];
        half->readable = 1;
        while (half->readable && !half->eof && half->pending_len == 0)
            if (pump_half(r, slot, p, h) < 0)
                return -2;
        if (half->eof || half->pending_len > 0)
            return -1;
    }
    return 0;
}

/* 1 if the pair finished (a reset while draining: reading it cleared the error, so no event
 * would report it again), else 0, joined or not. */
static int join_kernel(Relay *r, size_t slot, Pair *p) {
    int drained = drain_before_join(r, slot, p);
    if (drained == -2) {
        finish(r, slot, p, 1);
        return 1;
    }
    if (drained < 0)
        return 0; /* the epoll path takes it from here: its events are already queued */
    for (int s = 0; s < 2; s++)
        if (p->fd[s] < 0 || p->fd[s] >= SOCKMAP_SLOTS || sockmap_key(p->fd[s], &p->key[s]) < 0 ||
            (p->base[s] = sockmap_queued(p->fd[s])) < 0)
            return 0;
    if (sockmap_join(&r->sockmap, p->fd[0], &p->key[0], p->fd[1], &p->key[1]) < 0)
        return 0;
    for (int h = 0; h < 2; h++) {
        p->half[h].joined_bytes = p->half[h].bytes;
        p->half[h].joined_read = p->half[h].read;
        p->switched[h] = 0;
    }
    for (int s = 0; s < 2; s++)
        __atomic_store_n(&ctl_of(r, p->fd[s])->state, SOCKMAP_RESUMING, __ATOMIC_RELEASE);
    p->kernel = 1;
    r->kernel_pairs++;
    for (size_t i = 0; i < r->nloop_epolls; i++)
        for (int s = 0; s < 2; s++)
            epoll_ctl(r->loop_epolls[i], EPOLL_CTL_DEL, p->fd[s], NULL);
    /* Bytes that arrived between the drain and joining wait for the next segment unless the
     * kernel is made to look at them now. */
    for (int s = 0; s < 2; s++)
        sockmap_kick(p->fd[s]);
    return 0;
}

/* Report to the verdict program how much of what it passed this half has forwarded. */
static void report_consumed(Relay *r, Pair *p, int h) {
    if (p->kernel && !p->switched[h] && p->half[h].pending_len == 0)
        __atomic_store_n(&ctl_of(r, p->fd[h])->consumed, p->half[h].read - p->half[h].joined_read,
                         __ATOMIC_RELEASE);
}

/* Bytes half h spliced that have not reached its destination's send queue yet (the kernel holds
 * them in the destination's backlog: memory nothing else bounds). 0 if the destination is gone
 * (the pair ends on its own error). */
static uint64_t spliced_in_flight(Relay *r, Pair *p, int h) {
    Half *half = &p->half[h];
    int64_t queued = sockmap_queued_at_least(p->fd[1 - h]);
    if (queued < 0)
        return 0;
    uint64_t delivered = (uint64_t)(queued - p->base[1 - h]);
    uint64_t owed = spliced_bytes(r, p, h) + (half->bytes - half->joined_bytes);
    return owed > delivered ? owed - delivered : 0;
}

static int spliced_delivered(Relay *r, Pair *p, int h) { return spliced_in_flight(r, p, h) == 0; }

/* fd[s] passes its segments to its own queue from now on. Retried until the state reads PASS:
 * a verdict that read RESUMING before the store may flip it to REDIRECT after. */
static void switch_to_pass(Relay *r, Pair *p, int s) {
    SockCtl *ctl = ctl_of(r, p->fd[s]);
    do {
        __atomic_store_n(&ctl->state, SOCKMAP_PASS, __ATOMIC_SEQ_CST);
        sockmap_barrier(p->fd[s]); /* a verdict running now has counted its bytes when this returns */
    } while (__atomic_load_n(&ctl->state, __ATOMIC_SEQ_CST) != SOCKMAP_PASS);
    Half *half = &p->half[s];
    half->spliced = __atomic_load_n(&ctl->redirected, __ATOMIC_ACQUIRE);
    if (half->spliced > 0 && !half->gated) {
        if (r->gated_halves + r->leaving_pairs == 0)
            r->gated_since = now_ns();
        half->gated = 1;
        r->gated_halves++;
    }
    half->readable = 1;
    p->switched[s] = 1;
}

static void finish_leaving(Relay *r, Pair *p) {
    if (!p->kernel)
        return;
    sockmap_forget(&r->sockmap, &p->key[0], &p->key[1]);
    p->kernel = 0;
    r->kernel_pairs--;
    if (p->leaving) {
        p->leaving = 0;
        r->leaving_pairs--;
    }
}

/* A socket switches to PASS only once every byte spliced into it has been sent: a segment it
 * passes would otherwise queue behind them (the kernel keeps one backlog per socket, and what
 * waits there is charged to nobody), and a peer that writes before it reads would wait forever.
 * Until then it keeps splicing. Two busy directions may never both be empty at one look, so
 * past the patience (or at once when `hurry`: a release, whose toxic should shape what comes
 * next) a socket whose reader is taking what was spliced to it switches too: its passed
 * segments wait behind little. One whose reader stopped waits, or is stopped as a flood source
 * (limit_in_flight). */
static void advance_leave(Relay *r, Pair *p, int hurry) {
    int patient = !hurry && now_ns() - p->leaving_since < LEAVE_PATIENCE_NS;
    for (int s = 0; s < 2; s++) {
        if (p->switched[s])
            continue;
        uint64_t inbound = spliced_in_flight(r, p, 1 - s);
        if (inbound == 0 || (!patient && inbound <= FLOWING_BYTES))
            switch_to_pass(r, p, s);
    }
    if (p->switched[0] && p->switched[1])
        finish_leaving(r, p);
}

/* Leave the splice for good (an end, an error, bulk, a release); each half then writes again
 * only once its destination has taken every byte the kernel spliced. */
static void leave_kernel(Relay *r, size_t slot, Pair *p) {
    if (!p->kernel || p->leaving)
        return;
    if (r->gated_halves + r->leaving_pairs == 0)
        r->gated_since = now_ns();
    p->leaving = 1;
    p->leaving_since = now_ns();
    r->leaving_pairs++;
    if (p->quiet) {
        p->quiet = 0;
        for (int side = 0; side < 2; side++) {
            struct epoll_event ev = {.events = FULL_EVENTS, .data.u64 = token(slot, p->gen, side)};
            epoll_ctl(r->epfd, EPOLL_CTL_MOD, p->fd[side], &ev);
        }
    }
    advance_leave(r, p, 0);
}

/* A source whose spliced bytes pile up in the kernel (its destination reads slower, or not at
 * all) stops splicing: what it passes instead is held by its own socket, whose receive window
 * then closes as TCP's does. */
static void limit_in_flight(Relay *r, size_t slot, Pair *p) {
    for (int h = 0; h < 2; h++)
        if (p->kernel && !p->switched[h] && spliced_in_flight(r, p, h) > IN_FLIGHT_LIMIT) {
            leave_kernel(r, slot, p);
            if (p->kernel && !p->switched[h])
                switch_to_pass(r, p, h);
            if (p->switched[0] && p->switched[1])
                finish_leaving(r, p);
        }
}

/* Out of the splice at once, order no longer mattering: the pair is ending or being forced out. */
static void drop_kernel(Relay *r, Pair *p) {
    if (!p->kernel)
        return;
    for (int s = 0; s < 2; s++)
        if (!p->switched[s])
            switch_to_pass(r, p, s);
    finish_leaving(r, p);
}

/* Half h may write: nothing it spliced is still on its way to the destination. */
static int gate_open(Relay *r, Pair *p, int h) {
    Half *half = &p->half[h];
    if (!half->gated)
        return 1;
    if (!spliced_delivered(r, p, h))
        return 0;
    half->gated = 0;
    r->gated_halves--;
    return 1;
}

/* Both directions spliced and nothing held: stop waking for every segment. */
static void maybe_quiet(Relay *r, size_t slot, Pair *p) {
    if (!p->kernel || p->leaving || p->quiet || p->half[0].pending_len || p->half[1].pending_len)
        return;
    for (int s = 0; s < 2; s++)
        if (__atomic_load_n(&ctl_of(r, p->fd[s])->state, __ATOMIC_ACQUIRE) != SOCKMAP_REDIRECT)
            return;
    for (int side = 0; side < 2; side++) {
        struct epoll_event ev = {.events = QUIET_EVENTS, .data.u64 = token(slot, p->gen, side)};
        epoll_ctl(r->epfd, EPOLL_CTL_MOD, p->fd[side], &ev);
    }
    p->quiet = 1;
}

/* ---- the relay thread (holds r->lock while it works, never the GIL) ------------------- */
/*
 * Sockets are registered once, edge-triggered, for both directions, so the relay never makes
 * an epoll_ctl call per message: each half remembers whether its source may have more to read
 * (`readable`) and whether its destination refused bytes (`pending_len`).
 */

static void release_slot(Relay *r, size_t slot, Pair *p) {
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->fd[0], NULL);
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->fd[1], NULL);
    drop_kernel(r, p);
    for (int h = 0; h < 2; h++) {
        if (p->half[h].gated)
            r->gated_halves--;
        p->half[h].gated = 0;
        free(p->half[h].pending);
        p->half[h].pending = NULL;
        p->half[h].pending_len = p->half[h].pending_off = 0;
    }
    p->gen++; /* even: free; stale events no longer match */
    r->free_slots[r->nfree++] = slot;
    r->active--;
}

/* Room for every active pair to finish, reserved by adopt, so finish() never fails. */
static int reserve_finished(Relay *r, size_t wanted) {
    if (wanted <= r->capfinished)
        return 0;
    size_t cap = r->capfinished ? r->capfinished : 64;
    while (cap < wanted)
        cap *= 2;
    Finished *grown = realloc(r->finished, cap * sizeof(Finished));
    if (grown == NULL)
        return -1;
    r->finished = grown;
    r->capfinished = cap;
    return 0;
}

static void finish(Relay *r, size_t slot, Pair *p, int reset) {
    r->finished[r->nfinished++] = (Finished){
        .handle = handle_of(slot, p->gen),
        .reset = reset,
        .up = p->half[0].bytes + spliced_bytes(r, p, 0),
        .down = p->half[1].bytes + spliced_bytes(r, p, 1),
    };
    release_slot(r, slot, p);
    uint64_t one = 1;
    (void)!write(r->notifyfd, &one, sizeof one);
}

/* Write what half `h` holds to its destination. 0: fine (maybe still pending), -1: failed. */
static int flush_half(Pair *p, int h) {
    Half *half = &p->half[h];
    int dst = p->fd[1 - h];
    while (half->pending_len > 0) {
        ssize_t n = send(dst, half->pending + half->pending_off, half->pending_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        half->bytes += (uint64_t)n;
        half->pending_off += (size_t)n;
        half->pending_len -= (size_t)n;
    }
    free(half->pending);
    half->pending = NULL;
    half->pending_off = 0;
    if (half->eof && !half->done) {
        shutdown(dst, SHUT_WR);
        half->done = 1;
    }
    return 0;
}

/* Read once from the source of half `h` and pass it on. 1: bytes moved, 0: nothing, -1: failed. */
static int pump_half(Relay *r, size_t slot, Pair *p, int h) {
    Half *half = &p->half[h];
    int src = p->fd[h], dst = p->fd[1 - h];
    ssize_t n;
    do {
        n = recv(src, r->scratch, SCRATCH_SIZE, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        half->readable = 0;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
    if (n == 0) {
        half->readable = 0;
        if (p->kernel && !p->switched[h]) {
            /* Bytes spliced before the end may still be on their way: the end is read again
             * once this source has left the splice and the gate has opened. */
            leave_kernel(r, slot, p);
            return 0;
        }
        half->eof = 1;
        return flush_half(p, h);
    }
    half->read += (uint64_t)n;
    /* A short read emptied the receive queue; anything arriving later raises a new edge. Once
     * the peer has shut its side no edge will follow, so then read on until end of stream. */
    if ((size_t)n < SCRATCH_SIZE && !half->peer_shut)
        half->readable = 0;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(dst, r->scratch + off, (size_t)n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        off += (size_t)w;
        half->bytes += (uint64_t)w;
    }
    if (off < (size_t)n) {
        half->pending = malloc((size_t)n - off);
        if (half->pending == NULL)
            return -1;
        memcpy(half->pending, r->scratch + off, (size_t)n - off);
        half->pending_len = (size_t)n - off;
        half->pending_off = 0;
    }
    return 1;
}

/* Move what half `h` can move now. 1: bytes moved, 0: nothing, -1: failed. */
static int drive_half(Relay *r, size_t slot, Pair *p, int h) {
    Half *half = &p->half[h];
    int moved = 0;
    if (p->releasing || !gate_open(r, p, h))
        return 0; /* retried by the relay loop, or the bytes are Python's to move */
    if (half->pending_len > 0) {
        size_t before = half->pending_len;
        if (flush_half(p, h) < 0)
            return -1;
        moved = half->pending_len < before;
        if (half->pending_len > 0)
            return moved;
    }
    while (half->readable && !half->eof && half->pending_len == 0 && gate_open(r, p, h)) {
        int result = pump_half(r, slot, p, h);
        if (result < 0)
            return -1;
        moved |= result;
    }
    report_consumed(r, p, h);
    return moved;
}

static int handle_event(Relay *r, uint64_t tok, uint32_t events) {
    size_t slot = (size_t)((tok & 0xffffffffu) >> 1);
    int side = (int)(tok & 1);
    uint32_t gen = (uint32_t)(tok >> 32);
    if (slot >= r->npairs || r->pairs[slot].gen != gen)
        return 0; /* the pair was released or finished after the event was queued */
    Pair *p = &r->pairs[slot];
    if (p->kernel && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        leave_kernel(r, slot, p); /* ends and errors are handled on the epoll path */
    else if (p->quiet)
        return 0; /* queued before the pair went quiet */
    if (events & EPOLLERR) {
        finish(r, slot, p, 1);
        return 0;
    }
    /* fd `side` is the source of half `side` and the destination of half `1 - side`. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
        p->half[side].readable = 1;
    if (events & (EPOLLRDHUP | EPOLLHUP))
        p->half[side].peer_shut = 1;
    int up = drive_half(r, slot, p, side);
    int down = up < 0 ? -1 : drive_half(r, slot, p, 1 - side);
    if (up < 0 || down < 0) {
        finish(r, slot, p, 1);
        return 0;
    }
    if (p->half[0].done && p->half[1].done)
        finish(r, slot, p, 0);
    else
        maybe_quiet(r, slot, p);
    return up | down;
}

/* Drive both halves of a pair from the loop rather than from an event. */
static void drive_pair(Relay *r, size_t slot, Pair *p) {
    int up = drive_half(r, slot, p, 0);
    int down = up < 0 ? -1 : drive_half(r, slot, p, 1);
    if (up < 0 || down < 0)
        finish(r, slot, p, 1);
    else if (p->half[0].done && p->half[1].done)
        finish(r, slot, p, 0);
}

/* Pairs on their way out of the splice advanced and gated halves retried; spliced pairs moving
 * bulk taken back to epoll, which moves bulk faster; spliced pairs quietened. */
static void housekeeping(Relay *r, long now) {
    int tick = r->kernel_pairs > 0 && now >= r->next_tick;
    if (tick)
        r->next_tick = now + TICK_NS;
    if (!tick && r->gated_halves == 0 && r->leaving_pairs == 0)
        return;
    for (size_t slot = 0; slot < r->npairs; slot++) {
        Pair *p = &r->pairs[slot];
        if (!(p->gen & 1))
            continue;
        if (p->leaving) {
            limit_in_flight(r, slot, p);
            if (p->leaving)
                advance_leave(r, p, 0);
            drive_pair(r, slot, p);
            continue;
        }
        if (tick && p->kernel) {
            int bulk = 0, moved = 0;
            for (int h = 0; h < 2; h++) {
                uint64_t now_spliced = spliced_bytes(r, p, h);
                bulk |= now_spliced - p->sampled[h] > BULK_BYTES;
                moved |= now_spliced != p->sampled[h];
                p->sampled[h] = now_spliced;
            }
            if (moved) /* an idle pair's backlog can only shrink: no system calls for it */
                limit_in_flight(r, slot, p);
            if (p->leaving || !p->kernel) {
                drive_pair(r, slot, p);
                continue;
            }
            if (bulk) {
                leave_kernel(r, slot, p);
                drive_pair(r, slot, p);
                continue;
            }
            /* Segments the kernel spliced raise no event this thread sees (the socket is never
             * readable), so a pair whose last event came before both directions spliced is
             * quietened here. */
            maybe_quiet(r, slot, p);
        }
        if (p->half[0].gated || p->half[1].gated)
            drive_pair(r, slot, p);
    }
}

static int wait_events(Relay *r, struct epoll_event *events, long timeout_ns) {
    if (timeout_ns < 0)
        return epoll_wait(r->epfd, events, MAX_EVENTS, -1);
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L};
    return (int)syscall(SYS_epoll_pwait2, r->epfd, events, MAX_EVENTS, &ts, NULL, 0);
}

static void *relay_main(void *arg) {
    Relay *r = arg;
    struct epoll_event events[MAX_EVENTS];
    long spin_until = 0;
    for (;;) {
        long now = now_ns(), timeout = -1;
        if (r->spin_ns > 0 && now < spin_until)
            timeout = 0;
        else if (r->gated_halves > 0 || r->leaving_pairs > 0)
            timeout = now - r->gated_since < GATE_SLOW_AFTER_NS ? GATE_POLL_NS : GATE_SLOW_POLL_NS;
        else if (r->kernel_pairs > 0)
            timeout = r->next_tick > now ? r->next_tick - now : 0;
        int n = wait_events(r, events, timeout);
        if (n < 0 && errno != EINTR)
            break;
        pthread_mutex_lock(&r->lock);
        if (r->stopping) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        int moved = 0;
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == WAKE_TOKEN) {
                uint64_t drained;
                (void)!read(r->wakefd, &drained, sizeof drained);
                continue;
            }
            moved |= handle_event(r, events[i].data.u64, events[i].events);
        }
        if (r->gated_halves > 0 || r->kernel_pairs > 0)
            housekeeping(r, now_ns()); /* leaving pairs are kernel pairs */
        pthread_mutex_unlock(&r->lock);
        if (moved && r->spin_ns > 0)
            spin_until = now_ns() + r->spin_ns;
        else if (n == 0 && timeout == 0 && r->spin_ns > 0)
            sched_yield();
    }
    return NULL;
}

/* ---- the Python type ------------------------------------------------------------------ */

static void lock_without_gil(Relay *r) {
    if (pthread_mutex_trylock(&r->lock) == 0)
        return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&r->lock);
    Py_END_ALLOW_THREADS
}

static void relay_stop(Relay *r) {
    if (!r->thread_started)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_mutex_unlock(&r->lock);
    uint64_t one = 1;
    (void)!write(r->wakefd, &one, sizeof one);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(r->thread, NULL);
    Py_END_ALLOW_THREADS
    r->thread_started = 0;
}

static PyObject *Relay_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Relay *self = (Relay *)PyType_GenericNew(type, args, kwds);
    if (self != NULL) {
        self->epfd = self->wakefd = self->notifyfd = -1;
        self->sockmap = (Sockmap){.sockhash_fd = -1, .index_fd = -1, .ctl_fd = -1, .prog_fd = -1};
        pthread_mutex_init(&self->lock, NULL);
    }
    return (PyObject *)self;
}

static int Relay_init(Relay *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"spin_us", "kernel", NULL};
    double spin_us = 0;
    int kernel = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|dp", kwlist, &spin_us, &kernel))
        return -1;
    if (spin_us < 0) {
        PyErr_SetString(PyExc_ValueError, "spin_us must be >= 0 (0 turns spinning off)");
        return -1;
    }
    if (self->epfd >= 0) {
        PyErr_SetString(PyExc_RuntimeError, "a Relay is initialised once; make a new one");
        return -1;
    }
    self->spin_ns = (long)(spin_us * 1000.0);
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    self->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->notifyfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    self->scratch = malloc(SCRATCH_SIZE);
    if (self->epfd < 0 || self->wakefd < 0 || self->notifyfd < 0 || self->scratch == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->kernel = kernel && sockmap_open(&self->sockmap) == 0;
    if (self->kernel)
        find_loop_epolls(self);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TOKEN};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, self->wakefd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    int err = pthread_create(&self->thread, NULL, relay_main, self);
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->thread_started = 1;
    return 0;
}

static void Relay_dealloc(Relay *self) {
    relay_stop(self);
    if (self->epfd >= 0) close(self->epfd);
    if (self->wakefd >= 0) close(self->wakefd);
    if (self->notifyfd >= 0) close(self->notifyfd);
    sockmap_close(&self->sockmap);
    free(self->loop_epolls);
    for (size_t i = 0; i < self->npairs; i++)
        for (int h = 0; h < 2; h++)
            free(self->pairs[i].half[h].pending);
    free(self->pairs);
    free(self->free_slots);
    free(self->finished);
    free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Relay_adopt(Relay *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"client_fd", "upstream_fd", "kernel", NULL};
    int fd_client, fd_upstream, kernel = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii|p", kwlist, &fd_client, &fd_upstream, &kernel))
        return NULL;
    lock_without_gil(self);
    if (!self->thread_started || self->stopping) {
        pthread_mutex_unlock(&self->lock);
        PyErr_SetString(PyExc_RuntimeError, "the relay is stopped");
        return NULL;
    }
    if (self->nfree == 0) {
        size_t grown_n = self->npairs ? self->npairs * 2 : 256;
        Pair *pairs = realloc(self->pairs, grown_n * sizeof(Pair));
        size_t *slots = pairs ? realloc(self->free_slots, grown_n * sizeof(size_t)) : NULL;
        if (pairs) self->pairs = pairs;
        if (slots) self->free_slots = slots;
        if (pairs == NULL || slots == NULL) {
            pthread_mutex_unlock(&self->lock);
            return PyErr_NoMemory();
        }
        memset(&self->pairs[self->npairs], 0, (grown_n - self->npairs) * sizeof(Pair));
        for (size_t i = grown_n; i > self->npairs; i--)
            self->free_slots[self->nfree++] = i - 1;
        self->npairs = grown_n;
    }
    if (reserve_finished(self, self->active + self->nfinished + 1) < 0) {
        pthread_mutex_unlock(&self->lock);
        return PyErr_NoMemory();
    }
    size_t slot = self->free_slots[--self->nfree];
    Pair *p = &self->pairs[slot];
    uint32_t gen = p->gen + 1;
    memset(p, 0, sizeof *p);
    p->gen = gen;
    p->fd[0] = fd_client;
    p->fd[1] = fd_upstream;
    int failed_errno = 0, added = 0;
    for (int side = 0; side < 2 && !failed_errno; side++) {
        struct epoll_event ev = {.events = FULL_EVENTS, .data.u64 = token(slot, gen, side)};
        if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, p->fd[side], &ev) < 0)
            failed_errno = errno;
        else
            added++;
    }
    if (failed_errno) {
        if (added)
            epoll_ctl(self->epfd, EPOLL_CTL_DEL, p->fd[0], NULL);
        p->gen++;
        self->free_slots[self->nfree++] = slot;
        pthread_mutex_unlock(&self->lock);
        errno = failed_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    /* The relay thread sees the pair's events only after the lock is released, when it has joined. */
    self->active++;
    if (kernel && self->kernel)
        join_kernel(self, slot, p); /* a pair that failed meanwhile is reported as finished */
    pthread_mutex_unlock(&self->lock);
    return PyLong_FromUnsignedLongLong(handle_of(slot, gen));
}

typedef struct {
    char *leftover;
    size_t len;
    int eof, shut;
    uint64_t bytes;
} HalfCopy;

/* Taken under the lock; turned into Python objects after it is released (allocating may run
 * arbitrary finalizers, which must not find the relay's lock held). */
static int copy_half(Half *half, HalfCopy *out) {
    *out = (HalfCopy){
        .len = half->pending_len, .eof = half->eof, .shut = half->done, .bytes = half->bytes + half->spliced};
    if (half->pending_len == 0)
        return 0;
    out->leftover = malloc(half->pending_len);
    if (out->leftover == NULL)
        return -1;
    memcpy(out->leftover, half->pending + half->pending_off, half->pending_len);
    return 0;
}

static PyObject *half_state(HalfCopy *half) {
    return Py_BuildValue("(y#OOK)", half->leftover ? half->leftover : "", (Py_ssize_t)half->len,
                         half->eof ? Py_True : Py_False, half->shut ? Py_True : Py_False,
                         (unsigned long long)half->bytes);
}

/* Left the splice, and every spliced byte reached its destination. */
static int out_of_kernel(Relay *r, Pair *p) {
    if (p->leaving)
        advance_leave(r, p, 0);
    return !p->kernel && (gate_open(r, p, 0) & gate_open(r, p, 1));
}

static void sleep_without_gil(long ns) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
    Py_BEGIN_ALLOW_THREADS
    nanosleep(&ts, NULL);
    Py_END_ALLOW_THREADS
}

static PyObject *Relay_release(Relay *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"handle", "force", "wait_us", NULL};
    unsigned long long handle_arg;
    int force = 0;
    double wait_us = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "K|pd", kwlist, &handle_arg, &force, &wait_us))
        return NULL;
    long wait_ns = wait_us > 0 ? (long)(wait_us * 1000.0) : 0;
    uint64_t handle = handle_arg;
    size_t slot = (size_t)(handle & 0xffffffffu);
    lock_without_gil(self);
    Pair *p = pair_of(self, handle);
    if (p != NULL) {
        leave_kernel(self, slot, p);
        p->releasing = 1; /* from now on the bytes are Python's: the relay moves none */
        if (force)
            drop_kernel(self, p);
        else if (p->leaving)
            advance_leave(self, p, 1);
    }
    /* Bytes the kernel spliced are usually on their way for microseconds; a destination that
     * stopped reading can hold them much longer, and then the caller is told to try again (it
     * holds the event loop while this waits, so it asks for a short wait or none). */
    for (long waited = 0; p != NULL && !force && !out_of_kernel(self, p); waited += GATE_POLL_NS) {
        if (waited >= wait_ns) {
            pthread_mutex_unlock(&self->lock);
            Py_RETURN_FALSE;
        }
        pthread_mutex_unlock(&self->lock);
        sleep_without_gil(GATE_POLL_NS);
        lock_without_gil(self);
        p = pair_of(self, handle);
    }
    if (p == NULL) {
        pthread_mutex_unlock(&self->lock);
        Py_RETURN_NONE;
    }
    HalfCopy halves[2] = {{0}};
    if (copy_half(&p->half[0], &halves[0]) < 0 || copy_half(&p->half[1], &halves[1]) < 0) {
        pthread_mutex_unlock(&self->lock);
        free(halves[0].leftover);
        return PyErr_NoMemory(); /* the pair stays with the relay: nothing was lost */
    }
    release_slot(self, slot, p);
    pthread_mutex_unlock(&self->lock);
    PyObject *result = NULL, *up = half_state(&halves[0]);
    PyObject *down = up ? half_state(&halves[1]) : NULL;
    if (down != NULL)
        result = Py_BuildValue("(NN)", up, down);
    else
        Py_XDECREF(up);
    free(halves[0].leftover);
    free(halves[1].leftover);
    return result;
}

static PyObject *Relay_counters(Relay *self, PyObject *arg) {
    uint64_t handle = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred())
        return NULL;
    lock_without_gil(self);
    Pair *p = pair_of(self, handle);
    unsigned long long up = p ? p->half[0].bytes + spliced_bytes(self, p, 0) : 0;
    unsigned long long down = p ? p->half[1].bytes + spliced_bytes(self, p, 1) : 0;
    pthread_mutex_unlock(&self->lock);
    if (p == NULL)
        Py_RETURN_NONE;
    return Py_BuildValue("(KK)", up, down);
}

static PyObject *Relay_finished(Relay *self, PyObject *Py_UNUSED(ignored)) {
    uint64_t drained;
    (void)!read(self->notifyfd, &drained, sizeof drained);
    lock_without_gil(self);
    size_t n = self->nfinished;
    Finished *items = n ? malloc(n * sizeof(Finished)) : NULL;
    if (n && items == NULL) {
        pthread_mutex_unlock(&self->lock);
        uint64_t one = 1;
        (void)!write(self->notifyfd, &one, sizeof one); /* still pending: keep the descriptor readable */
        return PyErr_NoMemory();
    }
    if (n)
        memcpy(items, self->finished, n * sizeof(Finished));
    self->nfinished = 0;
    pthread_mutex_unlock(&self->lock);
    PyObject *result = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; result != NULL && i < n; i++) {
        PyObject *item = Py_BuildValue("(KOKK)", (unsigned long long)items[i].handle,
                                       items[i].reset ? Py_True : Py_False,
                                       (unsigned long long)items[i].up, (unsigned long long)items[i].down);
        if (item == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)i, item);
    }
    free(items);
    return result;
}

static PyObject *Relay_fileno(Relay *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromLong(self->notifyfd);
}

static PyObject *Relay_active(Relay *self, PyObject *Py_UNUSED(ignored)) {
    lock_without_gil(self);
    size_t active = self->active;
    pthread_mutex_unlock(&self->lock);
    return PyLong_FromSize_t(active);
}

static PyObject *Relay_kernel(Relay *self, PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(self->kernel);
}

static PyObject *Relay_spliced(Relay *self, PyObject *Py_UNUSED(ignored)) {
    lock_without_gil(self);
    size_t spliced = self->kernel_pairs;
    pthread_mutex_unlock(&self->lock);
    return PyLong_FromSize_t(spliced);
}

static PyObject *Relay_splicing(Relay *self, PyObject *arg) {
    uint64_t handle = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred())
        return NULL;
    lock_without_gil(self);
    Pair *p = pair_of(self, handle);
    int kernel = p != NULL && p->kernel;
    pthread_mutex_unlock(&self->lock);
    return PyBool_FromLong(kernel);
}

static PyObject *Relay_close(Relay *self, PyObject *Py_UNUSED(ignored)) {
    relay_stop(self);
    Py_RETURN_NONE;
}

static PyMethodDef Relay_methods[] = {
    {"adopt", (PyCFunction)(void (*)(void))Relay_adopt, METH_VARARGS | METH_KEYWORDS,
     "adopt(client_fd, upstream_fd, kernel=False) -> handle: relay between the two sockets until "
     "finished or released; kernel: also splice in the kernel (only for sockets never adopted before)."},
    {"release", (PyCFunction)(void (*)(void))Relay_release, METH_VARARGS | METH_KEYWORDS,
     "release(handle, force=False, wait_us=0) -> (up, down), None if the pair already finished, or "
     "False if bytes the kernel spliced have not reached their destination within wait_us (try again; "
     "force: release anyway). "
     "Each direction is (leftover, eof, shut, bytes): bytes read but not written, end of stream seen on "
     "its source, its destination already shut for writing, bytes written. The relay no longer touches "
     "either socket when this returns a state."},
    {"counters", (PyCFunction)Relay_counters, METH_O, "counters(handle) -> (up_bytes, down_bytes) or None."},
    {"finished", (PyCFunction)Relay_finished, METH_NOARGS,
     "finished() -> [(handle, reset, up_bytes, down_bytes)]: pairs that ended since the last call."},
    {"fileno", (PyCFunction)Relay_fileno, METH_NOARGS, "A descriptor that is readable when finished() has news."},
    {"active", (PyCFunction)Relay_active, METH_NOARGS, "How many pairs the relay is moving bytes for."},
    {"kernel", (PyCFunction)Relay_kernel, METH_NOARGS, "Whether the in-kernel splice is available."},
    {"spliced", (PyCFunction)Relay_spliced, METH_NOARGS, "How many pairs the kernel splices now."},
    {"splicing", (PyCFunction)Relay_splicing, METH_O, "splicing(handle) -> whether the kernel splices the pair now."},
    {"close", (PyCFunction)Relay_close, METH_NOARGS, "Stop the relay thread (sockets are left as they are)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RelayType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "chaos_mcp.faults.proxy._relay.Relay",
    .tp_doc = "A native thread relaying bytes between adopted socket pairs.",
    .tp_basicsize = sizeof(Relay),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Relay_new,
    .tp_init = (initproc)Relay_init,
    .tp_dealloc = (destructor)Relay_dealloc,
    .tp_methods = Relay_methods,
};

static PyObject *splice_available(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored)) {
    Sockmap probe;
    if (sockmap_open(&probe) < 0)
        Py_RETURN_FALSE;
    sockmap_close(&probe);
    Py_RETURN_TRUE;
}

static PyMethodDef module_methods[] = {
    {"splice_available", splice_available, METH_NOARGS,
     "Whether this process may set up the in-kernel splice (BPF sockmap)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef relay_module = {
    PyModuleDef_HEAD_INIT, "_relay", "The proxy's native fast path (see Relay).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__relay(void) {
    if (PyType_Ready(&RelayType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&relay_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&RelayType);
    if (PyModule_AddObject(module, "Relay", (PyObject *)&RelayType) < 0) {
        Py_DECREF(&RelayType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
