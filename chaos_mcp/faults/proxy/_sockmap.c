/* The in-kernel splice (see _sockmap.h): maps, the verdict program, and the socket queries. */
#include "_sockmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sys_bpf(int cmd, union bpf_attr *attr) {
    return (int)syscall(__NR_bpf, cmd, attr, sizeof *attr);
}

static int map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t flags) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = type;
    attr.key_size = key_size;
    attr.value_size = value_size;
    attr.max_entries = SOCKMAP_SLOTS;
    attr.map_flags = flags;
    return sys_bpf(BPF_MAP_CREATE, &attr);
}

static int map_update(int map_fd, const void *key, const void *value) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)map_fd;
    attr.key = (uint64_t)(uintptr_t)key;
    attr.value = (uint64_t)(uintptr_t)value;
    attr.flags = BPF_ANY;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr);
}

static void map_delete(int map_fd, const void *key) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)map_fd;
    attr.key = (uint64_t)(uintptr_t)key;
    (void)sys_bpf(BPF_MAP_DELETE_ELEM, &attr);
}

/* ---- the verdict program ------------------------------------------------------------------ */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define LDX_DW(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define STX_W(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define ST_W(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define ATOMIC_ADD_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define JNE_REG(d, s, o) INSN(BPF_JMP | BPF_JNE | BPF_X, d, s, o, 0)
#define LD_MAP(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define SKB(field) ((int16_t)offsetof(struct __sk_buff, field))
#define CTL(field) ((int16_t)offsetof(SockCtl, field))

static int load_program(const Sockmap *m) {
    /* r6 skb, r7 control record, r8 skb->len; the key at fp-16, the slot at fp-20. A jump's
     * offset counts instructions after it (LD_MAP takes two). */
    struct bpf_insn prog[] = {
        /* 0 */ MOV64_REG(BPF_REG_6, BPF_REG_1),
        /* 1 */ LDX_W(BPF_REG_2, BPF_REG_6, SKB(remote_ip4)),
        /* 2 */ STX_W(BPF_REG_10, BPF_REG_2, -16),
        /* 3 */ LDX_W(BPF_REG_2, BPF_REG_6, SKB(local_ip4)),
        /* 4 */ STX_W(BPF_REG_10, BPF_REG_2, -12),
        /* 5 */ LDX_W(BPF_REG_2, BPF_REG_6, SKB(remote_port)),
        /* 6 */ STX_W(BPF_REG_10, BPF_REG_2, -8),
        /* 7 */ LDX_W(BPF_REG_2, BPF_REG_6, SKB(local_port)),
        /* 8 */ STX_W(BPF_REG_10, BPF_REG_2, -4),
        /* 9 */ LD_MAP(BPF_REG_1, m->index_fd),
        /* 11 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
        /* 12 */ ADD64_IMM(BPF_REG_2, -16),
        /* 13 */ CALL(BPF_FUNC_map_lookup_elem),
        /* 14 */ JEQ_IMM(BPF_REG_0, 0, 43 - 15), /* not ours: plain pass */
        /* 15 */ LDX_W(BPF_REG_1, BPF_REG_0, 0),
        /* 16 */ STX_W(BPF_REG_10, BPF_REG_1, -20),
        /* 17 */ LD_MAP(BPF_REG_1, m->ctl_fd),
        /* 19 */ MOV64_REG(BPF_REG_2, BPF_REG_10),
        /* 20 */ ADD64_IMM(BPF_REG_2, -20),
        /* 21 */ CALL(BPF_FUNC_map_lookup_elem),
        /* 22 */ JEQ_IMM(BPF_REG_0, 0, 43 - 23),
        /* 23 */ MOV64_REG(BPF_REG_7, BPF_REG_0),
        /* 24 */ LDX_W(BPF_REG_8, BPF_REG_6, SKB(len)),
        /* 25 */ LDX_W(BPF_REG_1, BPF_REG_7, CTL(state)),
        /* 26 */ JEQ_IMM(BPF_REG_1, SOCKMAP_REDIRECT, 32 - 27),
        /* 27 */ JNE_IMM(BPF_REG_1, SOCKMAP_RESUMING, 42 - 28),
        /* 28 */ LDX_DW(BPF_REG_2, BPF_REG_7, CTL(passed)),
        /* 29 */ LDX_DW(BPF_REG_3, BPF_REG_7, CTL(consumed)),
        /* 30 */ JNE_REG(BPF_REG_2, BPF_REG_3, 42 - 31), /* the relay still holds passed bytes */
        /* 31 */ ST_W(BPF_REG_7, CTL(state), SOCKMAP_REDIRECT),
        /* A bare FIN stays with its socket: the kernel would fail sending zero bytes to the
         * peer and break the peer's pipe (EPIPE). The relay passes the end on itself. */
        /* 32 */ JEQ_IMM(BPF_REG_8, 0, 42 - 33),
        /* 33 */ ATOMIC_ADD_DW(BPF_REG_7, BPF_REG_8, CTL(redirected)),
        /* 34 */ MOV64_REG(BPF_REG_1, BPF_REG_6),
        /* 35 */ LD_MAP(BPF_REG_2, m->sockhash_fd),
        /* 37 */ MOV64_REG(BPF_REG_3, BPF_REG_10),
        /* 38 */ ADD64_IMM(BPF_REG_3, -16),
        /* 39 */ MOV64_IMM(BPF_REG_4, 0),
        /* 40 */ CALL(BPF_FUNC_sk_redirect_hash),
        /* 41 */ EXIT(),
        /* 42 */ ATOMIC_ADD_DW(BPF_REG_7, BPF_REG_8, CTL(passed)),
        /* 43 */ MOV64_IMM(BPF_REG_0, SK_PASS),
        /* 44 */ EXIT(),
    };
    static const char license[] = "GPL";
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SK_SKB;
    attr.insns = (uint64_t)(uintptr_t)prog;
    attr.insn_cnt = sizeof prog / sizeof prog[0];
    attr.license = (uint64_t)(uintptr_t)license;
    memcpy(attr.prog_name, "chaos_splice", sizeof "chaos_splice");
    return sys_bpf(BPF_PROG_LOAD, &attr);
}

int sockmap_open(Sockmap *m) {
    *m = (Sockmap){.sockhash_fd = -1, .index_fd = -1, .ctl_fd = -1, .prog_fd = -1, .ctl = NULL};
    m->sockhash_fd = map_create(BPF_MAP_TYPE_SOCKHASH, sizeof(SockKey), sizeof(uint32_t), 0);
    m->index_fd = map_create(BPF_MAP_TYPE_HASH, sizeof(SockKey), sizeof(uint32_t), 0);
    m->ctl_fd = map_create(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(SockCtl), BPF_F_MMAPABLE);
    if (m->sockhash_fd < 0 || m->index_fd < 0 || m->ctl_fd < 0)
        goto failed;
    void *ctl = mmap(NULL, sizeof(SockCtl) * SOCKMAP_SLOTS, PROT_READ | PROT_WRITE, MAP_SHARED, m->ctl_fd, 0);
    if (ctl == MAP_FAILED)
        goto failed;
    m->ctl = ctl;
    m->prog_fd = load_program(m);
    if (m->prog_fd < 0)
        goto failed;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)m->sockhash_fd;
    attr.attach_bpf_fd = (uint32_t)m->prog_fd;
    attr.attach_type = BPF_SK_SKB_STREAM_VERDICT;
    if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
        goto failed;
    return 0;
failed: {
    int saved = errno;
    sockmap_close(m);
    errno = saved;
    return -1;
}
}

void sockmap_close(Sockmap *m) {
    if (m->ctl != NULL)
        munmap(m->ctl, sizeof(SockCtl) * SOCKMAP_SLOTS);
    int *fds[] = {&m->prog_fd, &m->sockhash_fd, &m->index_fd, &m->ctl_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    m->ctl = NULL;
}

int sockmap_key(int fd, SockKey *key) {
    struct sockaddr_in local, remote;
    socklen_t local_len = sizeof local, remote_len = sizeof remote;
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0 ||
        getpeername(fd, (struct sockaddr *)&remote, &remote_len) < 0 || local.sin_family != AF_INET ||
        remote.sin_family != AF_INET)
        return -1;
    /* As __sk_buff shows them: addresses in network order, the remote port in network order in
     * the upper half, the local port in host order. */
    uint32_t remote_port = (uint32_t)remote.sin_port << 16, local_port = ntohs(local.sin_port);
    memcpy(key->bytes, &remote.sin_addr.s_addr, 4);
    memcpy(key->bytes + 4, &local.sin_addr.s_addr, 4);
    memcpy(key->bytes + 8, &remote_port, 4);
    memcpy(key->bytes + 12, &local_port, 4);
    return 0;
}

int sockmap_join(Sockmap *m, int fd_a, const SockKey *key_a, int fd_b, const SockKey *key_b) {
    uint32_t slot_a = (uint32_t)fd_a, slot_b = (uint32_t)fd_b;
    uint32_t value_a = (uint32_t)fd_a, value_b = (uint32_t)fd_b;
    memset(&m->ctl[slot_a], 0, sizeof(SockCtl));
    memset(&m->ctl[slot_b], 0, sizeof(SockCtl));
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Control records first, so every segment the verdict sees from now on is counted; each
     * socket is filed under its own key with its peer as the value. */
    if (map_update(m->index_fd, key_a, &slot_a) < 0 || map_update(m->index_fd, key_b, &slot_b) < 0 ||
        map_update(m->sockhash_fd, key_a, &value_b) < 0 || map_update(m->sockhash_fd, key_b, &value_a) < 0) {
        int saved = errno;
        sockmap_forget(m, key_a, key_b);
        errno = saved;
        return -1;
    }
    return 0;
}

void sockmap_forget(Sockmap *m, const SockKey *key_a, const SockKey *key_b) {
    /* Only the index: taking a socket out of the sockhash would drop the bytes queued for its
     * reader; it leaves the sockhash by itself when it is closed. */
    map_delete(m->index_fd, key_a);
    map_delete(m->index_fd, key_b);
}

void sockmap_barrier(int fd) {
    struct tcp_info info;
    socklen_t len = sizeof info;
    (void)getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
}

static int read_queue(int fd, uint64_t *acked, int *outq) {
    struct tcp_info info;
    socklen_t len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
        return -1;
    *acked = info.tcpi_bytes_acked;
    return outq == NULL ? 0 : ioctl(fd, SIOCOUTQ, outq);
}

int64_t sockmap_queued(int fd) {
    /* acked + unacked-or-unsent, read until no ack moved between the two halves. */
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t before, after;
        int outq = 0;
        if (read_queue(fd, &before, &outq) < 0 || read_queue(fd, &after, NULL) < 0)
            return -1;
        if (before == after)
            return (int64_t)before + outq;
    }
    errno = EAGAIN;
    return -1;
}

int64_t sockmap_queued_at_least(int fd) {
    /* The ack count is read before the queue: an ack in between shrinks the queue, never grows it. */
    uint64_t acked;
    int outq = 0;
    if (read_queue(fd, &acked, &outq) < 0)
        return -1;
    return (int64_t)acked + outq;
}

void sockmap_kick(int fd) {
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
}
