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
 * The relay never opens or closes a socket: Python's transports own them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_SIZE (256 * 1024)
#define MAX_EVENTS 256
#define WAKE_TOKEN UINT64_MAX

typedef struct {
    char *pending;       /* bytes read from src that dst did not take yet */
    size_t pending_len;
    size_t pending_off;
    int readable;        /* src may have bytes to read (edge seen, not yet read to empty) */
    int peer_shut;       /* src's peer shut its side: read on to end of stream */
    int eof;             /* src reached end of stream */
    int done;            /* eof seen and everything flushed; dst shut for writing */
    uint64_t bytes;      /* bytes written to dst */
} Half;

typedef struct {
    uint32_t gen;        /* odd while in use */
    int fd[2];           /* 0: client side, 1: upstream side */
    Half half[2];        /* 0: up (fd 0 -> fd 1), 1: down (fd 1 -> fd 0) */
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

/* ---- the relay thread (holds r->lock while it works, never the GIL) ------------------- */
/*
 * Sockets are registered once, edge-triggered, for both directions, so the relay never makes
 * an epoll_ctl call per message: each half remembers whether its source may have more to read
 * (`readable`) and whether its destination refused bytes (`pending_len`).
 */

static void release_slot(Relay *r, size_t slot, Pair *p) {
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->fd[0], NULL);
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, p->fd[1], NULL);
    for (int h = 0; h < 2; h++) {
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
        .up = p->half[0].bytes,
        .down = p->half[1].bytes,
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
static int pump_half(Relay *r, Pair *p, int h) {
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
        half->eof = 1;
        half->readable = 0;
        return flush_half(p, h);
    }
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
static int drive_half(Relay *r, Pair *p, int h) {
    Half *half = &p->half[h];
    int moved = 0;
    if (half->pending_len > 0) {
        size_t before = half->pending_len;
        if (flush_half(p, h) < 0)
            return -1;
        moved = half->pending_len < before;
        if (half->pending_len > 0)
            return moved;
    }
    while (half->readable && !half->eof && half->pending_len == 0) {
        int result = pump_half(r, p, h);
        if (result < 0)
            return -1;
        moved |= result;
    }
    return moved;
}

static int handle_event(Relay *r, uint64_t tok, uint32_t events) {
    size_t slot = (size_t)((tok & 0xffffffffu) >> 1);
    int side = (int)(tok & 1);
    uint32_t gen = (uint32_t)(tok >> 32);
    if (slot >= r->npairs || r->pairs[slot].gen != gen)
        return 0; /* the pair was released or finished after the event was queued */
    Pair *p = &r->pairs[slot];
    if (events & EPOLLERR) {
        finish(r, slot, p, 1);
        return 0;
    }
    /* fd `side` is the source of half `side` and the destination of half `1 - side`. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
        p->half[side].readable = 1;
    if (events & (EPOLLRDHUP | EPOLLHUP))
        p->half[side].peer_shut = 1;
    int up = drive_half(r, p, side);
    int down = up < 0 ? -1 : drive_half(r, p, 1 - side);
    if (up < 0 || down < 0) {
        finish(r, slot, p, 1);
        return 0;
    }
    if (p->half[0].done && p->half[1].done)
        finish(r, slot, p, 0);
    return up | down;
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *relay_main(void *arg) {
    Relay *r = arg;
    struct epoll_event events[MAX_EVENTS];
    long spin_until = 0;
    for (;;) {
        int timeout = (r->spin_ns > 0 && now_ns() < spin_until) ? 0 : -1;
        int n = epoll_wait(r->epfd, events, MAX_EVENTS, timeout);
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
        pthread_mutex_unlock(&r->lock);
        if (moved && r->spin_ns > 0)
            spin_until = now_ns() + r->spin_ns;
        else if (n == 0 && timeout == 0)
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
        pthread_mutex_init(&self->lock, NULL);
    }
    return (PyObject *)self;
}

static int Relay_init(Relay *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"spin_us", NULL};
    double spin_us = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|d", kwlist, &spin_us))
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
    for (size_t i = 0; i < self->npairs; i++)
        for (int h = 0; h < 2; h++)
            free(self->pairs[i].half[h].pending);
    free(self->pairs);
    free(self->free_slots);
    free(self->finished);
    free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Relay_adopt(Relay *self, PyObject *args) {
    int fd_client, fd_upstream;
    if (!PyArg_ParseTuple(args, "ii", &fd_client, &fd_upstream))
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
        struct epoll_event ev = {
            .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
            .data.u64 = token(slot, gen, side),
        };
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
    self->active++;
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
    *out = (HalfCopy){.len = half->pending_len, .eof = half->eof, .shut = half->done, .bytes = half->bytes};
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

static PyObject *Relay_release(Relay *self, PyObject *arg) {
    uint64_t handle = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred())
        return NULL;
    lock_without_gil(self);
    Pair *p = pair_of(self, handle);
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
    release_slot(self, (size_t)(handle & 0xffffffffu), p);
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
    unsigned long long up = p ? p->half[0].bytes : 0, down = p ? p->half[1].bytes : 0;
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

static PyObject *Relay_close(Relay *self, PyObject *Py_UNUSED(ignored)) {
    relay_stop(self);
    Py_RETURN_NONE;
}

static PyMethodDef Relay_methods[] = {
    {"adopt", (PyCFunction)Relay_adopt, METH_VARARGS,
     "adopt(client_fd, upstream_fd) -> handle: relay between the two sockets until finished or released."},
    {"release", (PyCFunction)Relay_release, METH_O,
     "release(handle) -> (up, down) or None if the pair already finished; each direction is "
     "(leftover, eof, shut, bytes): bytes read but not written, end of stream seen on its source, its "
     "destination already shut for writing, bytes written. The relay no longer touches either socket "
     "when this returns."},
    {"counters", (PyCFunction)Relay_counters, METH_O, "counters(handle) -> (up_bytes, down_bytes) or None."},
    {"finished", (PyCFunction)Relay_finished, METH_NOARGS,
     "finished() -> [(handle, reset, up_bytes, down_bytes)]: pairs that ended since the last call."},
    {"fileno", (PyCFunction)Relay_fileno, METH_NOARGS, "A descriptor that is readable when finished() has news."},
    {"active", (PyCFunction)Relay_active, METH_NOARGS, "How many pairs the relay is moving bytes for."},
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

static struct PyModuleDef relay_module = {
    PyModuleDef_HEAD_INIT, "_relay", "The proxy's native fast path (see Relay).", -1, NULL,
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
