/* WebSocket echo load client of the ws-echo benchmark (benchmarks/wsload.py builds
 * it with gcc -O2 into benchmarks/build/): epoll, one thread, C connections.
 * Each connection sends a pre-masked text frame of SIZE bytes, waits for the
 * echo (counted by its exact length), and sends again; with DEPTH > 1 it keeps
 * DEPTH messages in flight per connection, and sends as many frames in one
 * write as one read brought whole echoes.
 * usage: wsload HOST PORT CONNS SIZE SECONDS [PATH [DEPTH]] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct { int fd; int upgraded; size_t head_len; char head[4096]; long pending; long count; } conn_t;
static unsigned char *frame; static size_t frame_len, reply_len;
static unsigned char *frames; /* DEPTH copies of frame, for one write of several */

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void send_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) { ssize_t n = write(fd, p, len); if (n < 0) { if (errno == EAGAIN) continue; perror("write"); exit(1); } p += n; len -= n; }
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: wsload HOST PORT CONNS SIZE SECONDS [PATH [DEPTH]]\n"); return 2; }
    const char *host = argv[1]; int port = atoi(argv[2]), conns = atoi(argv[3]); size_t size = atol(argv[4]);
    double seconds = atof(argv[5]); const char *path = argc > 6 ? argv[6] : "/";
    long depth = argc > 7 ? atol(argv[7]) : 1;
    if (depth < 1) { fprintf(stderr, "DEPTH must be at least 1\n"); return 2; }
    size_t hl = size < 126 ? 2 : size < 65536 ? 4 : 10;
    frame_len = hl + 4 + size; reply_len = hl + size;
    frame = malloc(frame_len);
    frame[0] = 0x81;
    if (size < 126) frame[1] = 0x80 | size;
    else if (size < 65536) { frame[1] = 0x80 | 126; frame[2] = size >> 8; frame[3] = size & 0xff; }
    else { frame[1] = 0x80 | 127; for (int i = 0; i < 8; i++) frame[2 + i] = (size >> (56 - 8 * i)) & 0xff; }
    unsigned char key[4] = {0x12, 0x34, 0x56, 0x78}; memcpy(frame + hl, key, 4);
    for (size_t i = 0; i < size; i++) frame[hl + 4 + i] = 'x' ^ key[i % 4];
    frames = malloc(frame_len * depth);
    for (long i = 0; i < depth; i++) memcpy(frames + i * frame_len, frame, frame_len);
    char req[512];
    int req_len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host);
    int ep = epoll_create1(0);
    conn_t *cs = calloc(conns, sizeof(conn_t));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)}; inet_pton(AF_INET, host, &addr.sin_addr);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0); int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 1; }
        send_all(fd, req, req_len);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]}; epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    static char buf[1 << 20]; struct epoll_event evs[256];
    double start = now(), measure_from = -1, end = -1; long base = 0, total = 0; int upgraded = 0;
    for (;;) {
        double t = now();
        if (measure_from < 0 && upgraded == conns) { measure_from = t + 1.0; end = measure_from + seconds; }
        if (measure_from > 0 && base == 0 && t >= measure_from) { for (int i = 0; i < conns; i++) base += cs[i].count; base = base ? base : -1; }
        if (end > 0 && t >= end) break;
        if (t - start > seconds + 30) { fprintf(stderr, "timeout: %d/%d upgraded\n", upgraded, conns); return 1; }
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r <= 0) { if (r < 0 && errno == EAGAIN) continue; fprintf(stderr, "connection closed by server\n"); return 1; }
            if (!c->upgraded) {
                size_t take = (size_t)r < sizeof c->head - c->head_len ? (size_t)r : sizeof c->head - c->head_len;
                memcpy(c->head + c->head_len, buf, take); c->head_len += take; c->head[c->head_len < sizeof c->head ? c->head_len : sizeof c->head - 1] = 0;
                char *e = strstr(c->head, "\r\n\r\n");
                if (!e) continue;
                if (strncmp(c->head, "HTTP/1.1 101", 12)) { fprintf(stderr, "handshake refused: %.60s\n", c->head); return 1; }
                c->upgraded = 1; upgraded++;
                c->pending = c->head_len - (e + 4 - c->head);
                send_all(c->fd, frames, frame_len * depth);
                continue;
            }
            c->pending += r;
            long whole = c->pending / (long)reply_len;
            if (whole > depth) { fprintf(stderr, "more echoes than messages sent\n"); return 1; }
            if (whole) { c->pending -= whole * reply_len; c->count += whole; send_all(c->fd, frames, frame_len * whole); }
        }
    }
    for (int i = 0; i < conns; i++) total += cs[i].count;
    if (base < 0) base = 0;
    printf("%.0f msg/s  (%d connections, %zu-byte text messages, %.0fs) total %ld\n", (total - base) / seconds, conns, size, seconds, total);
    return 0;
}
