/*
 * hybi's WebSocket load generator: one thread, epoll, written for `make bench`.
 *
 * Modes (--mode):
 *   echo  N connections (--conns), W messages in flight on each (--inflight) of --size bytes,
 *         text (--text) or binary, for --duration seconds after --warmup seconds. Every echo is
 *         checked: opcode, length, the 8-digit sequence number at its start and a sample of its
 *         content (one byte in 13, and the last). --raw speaks plain TCP (no handshake, no
 *         frames) to a TCP echo server. --deflate negotiates permessage-deflate: messages are
 *         compressed with zlib and every echo is inflated and compared in full.
 *   hs    --conns loops of connect, upgrade (101 and Sec-WebSocket-Accept checked), close
 *         handshake, until the server closes TCP; counts completed loops per second.
 *   idle  opens --conns connections (with --deflate, each exchanges one compressed message),
 *         prints one JSON line, then holds them until its standard input closes.
 *
 * Client frames are masked, with one random key per run (the server's unmasking cost does not
 * depend on the key, and pre-masked payloads keep the load generator's CPU low).
 * With --server-pid, the server's CPU time (all its threads, from /proc) over the
 * measured interval is reported too. Output: one JSON object on standard output.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define CTR 8            /* digits of the sequence number at the start of each message */
#define STRIDE 13        /* one byte in STRIDE is compared */
#define MAX_BATCH 64     /* frames per writev */
#define LAT_FINE 100000    /* latency histogram: 1 µs buckets up to 100 ms, */
#define LAT_BUCKETS (LAT_FINE + 99000) /* then 100 µs buckets up to 10 s */

enum { S_CONNECTING, S_HS_SENT, S_OPEN, S_CLOSING, S_DONE };
enum { M_ECHO, M_HS, M_IDLE };

/* ---------------------------------------------------------------- options */
static const char *opt_host = "127.0.0.1";
static int opt_port = 8765, opt_mode = M_ECHO, opt_conns = 1, opt_inflight = 1, opt_text = 0;
static int opt_raw = 0, opt_deflate = 0, opt_spin = 0, opt_server_pid = 0;
static size_t opt_size = 32;
static double opt_duration = 2.0, opt_warmup = 0.5;

/* ---------------------------------------------------------------- run state */
static unsigned char mask_key[4];
static unsigned char *tmpl;        /* the message as the application sees it */
static unsigned char *wire_tail;   /* payload on the wire from offset CTR (or 0), masked */
static size_t wire_len;            /* payload length on the wire */
static size_t hdr_len;             /* frame header length, mask key included */
static unsigned char hdr[14];
static size_t ctr_len = CTR;
static int deflate_ready = 0, inflate_reset = 0;
static int send_window = 15;
static uint64_t messages, wire_in, compressed_echoes, handshakes, errors;
static char first_error[200];
static uint32_t *lat_hist;
static uint64_t lat_over;
static int measuring = 0, stopping = 0;
static uint64_t retried;
static int epfd;

struct conn {
    int fd, state, want_out;
    char key[32];
    double t_state;
    /* handshake / header accumulation */
    unsigned char *hbuf;
    size_t hlen;
    /* frame parser */
    unsigned char fh[14];
    size_t fhlen;
    uint64_t remain;
    int control, frame_fin, frame_rsv1;
    int msg_active, msg_opcode, msg_rsv1;
    uint64_t msg_off;
    /* deflate: compressed message accumulation and this connection's inflater */
    unsigned char *zin;
    size_t zlen, zcap;
    z_stream inf;
    int inf_ready;
    /* sending */
    uint64_t next_seq, write_seq, stamped, recv_seq;
    size_t woff;
    double *sent_ts;
    unsigned char pfx[MAX_BATCH][14 + CTR];
    int failed_early, retries; /* kept across start_conn */
};
static struct conn *conns;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(struct conn *c, const char *what) {
    errors++;
    if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", what);
    if (c && c->state < S_OPEN) c->failed_early = 1;
    if (c && c->hbuf) { free(c->hbuf); c->hbuf = NULL; }
    if (c && c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = S_DONE;
    }
}

static void fail_errno(struct conn *c, const char *what) {
    char message[160];
    snprintf(message, sizeof message, "%s: %s", what, strerror(errno));
    fail(c, message);
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* ---------------------------------------------------------------- SHA-1, base64 (for the Accept check) */
static uint32_t rol(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

static void sha1(const unsigned char *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(total, 1);
    memcpy(m, data, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

/* ---------------------------------------------------------------- CPU accounting */
/* The server's CPU time in seconds: the sum over its threads of /proc/PID/task/TID/schedstat
 * (nanoseconds), or /proc/PID/stat (clock ticks) where schedstat is missing. */
static double server_cpu(void) {
    if (!opt_server_pid) return 0;
    char path[300], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task", opt_server_pid);
    DIR *dir = opendir(path);
    if (dir) {
        double total = 0;
        int ok = 1;
        struct dirent *e;
        while ((e = readdir(dir)) && ok) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", opt_server_pid, e->d_name);
            FILE *f = fopen(path, "r");
            unsigned long long ns = 0;
            if (!f) { ok = 0; break; }
            if (fscanf(f, "%llu", &ns) != 1) ok = 0;
            fclose(f);
            total += (double)ns / 1e9;
        }
        closedir(dir);
        if (ok) return total;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", opt_server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    /* after ')': state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- payloads */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void make_template(void) {
    tmpl = malloc(opt_size + 1);
    if (opt_deflate) {
        /* English-like text from a small vocabulary: compresses about 3-4 times */
        static const char *words[] = {"the", "socket", "frame", "message", "server", "client", "of", "and",
                                      "mask", "opcode", "payload", "deflate", "window", "close", "a", "to"};
        size_t i = 0;
        while (i < opt_size) {
            const char *w = words[rng() % 16];
            for (size_t j = 0; w[j] && i < opt_size; j++) tmpl[i++] = (unsigned char)w[j];
            if (i < opt_size) tmpl[i++] = (rng() % 11 == 0) ? '\n' : ' ';
        }
    } else {
        static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.-";
        for (size_t i = 0; i < opt_size; i++)
            tmpl[i] = opt_text ? (unsigned char)alpha[rng() % 66] : (unsigned char)rng();
    }
}

static void set_header(size_t plen, int rsv1) {
    unsigned char b0 = 0x80 | (opt_text || opt_deflate ? 1 : 2) | (rsv1 ? 0x40 : 0);
    size_t n = 0;
    hdr[n++] = b0;
    if (plen < 126) {
        hdr[n++] = 0x80 | (unsigned char)plen;
    } else if (plen < 65536) {
        hdr[n++] = 0x80 | 126;
        hdr[n++] = (unsigned char)(plen >> 8);
        hdr[n++] = (unsigned char)plen;
    } else {
        hdr[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) hdr[n++] = (unsigned char)(plen >> (8 * i));
    }
    memcpy(hdr + n, mask_key, 4);
    hdr_len = n + 4;
}

/* Frames of the echo and raw modes: a per-message prefix (header and masked counter), then a
 * shared tail. */
static void prepare_plain(void) {
    if (opt_size < CTR) { fprintf(stderr, "loadgen: --size must be at least %d\n", CTR); exit(2); }
    wire_len = opt_size;
    wire_tail = malloc(opt_size);
    for (size_t i = CTR; i < opt_size; i++) wire_tail[i] = opt_raw ? tmpl[i] : tmpl[i] ^ mask_key[i & 3];
    if (opt_raw) hdr_len = 0;
    else set_header(opt_size, 0);
}

/* The deflate modes send one message compressed once (the client offers
 * client_no_context_takeover, so every message compresses to the same bytes) with the window
 * the server allowed. */
static void prepare_deflate(void) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, -(send_window < 9 ? 9 : send_window), 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    size_t cap = deflateBound(&z, opt_size) + 16;
    unsigned char *out = malloc(cap);
    z.next_in = tmpl;
    z.avail_in = (uInt)opt_size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK) die("deflate");
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    if (len >= 4 && memcmp(out + len - 4, "\x00\x00\xff\xff", 4) == 0) len -= 4; /* RFC 7692 7.2.1 */
    ctr_len = 0;
    wire_len = len;
    wire_tail = out;
    for (size_t i = 0; i < len; i++) wire_tail[i] ^= mask_key[i & 3];
    set_header(len, 1);
    deflate_ready = 1;
}

/* ---------------------------------------------------------------- connections */
static void watch(struct conn *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (c->want_out != out) {
        c->want_out = out;
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void start_conn(struct conn *c) {
    memset(c, 0, offsetof(struct conn, sent_ts));
    c->failed_early = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
    inet_pton(AF_INET, opt_host, &sa.sin_addr);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) die("connect");
    c->state = S_CONNECTING;
    c->t_state = now();
    c->want_out = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void send_request(struct conn *c) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) { errno = err; fail_errno(c, "connect failed"); return; }
    if (opt_raw) { c->state = S_OPEN; watch(c, 0); return; }
    unsigned char nonce[16];
    for (int i = 0; i < 16; i++) nonce[i] = (unsigned char)rng();
    base64(nonce, 16, c->key);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     opt_host, opt_port, c->key,
                     opt_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
                                   "client_max_window_bits\r\n" : "");
    if (write(c->fd, req, (size_t)n) != n) { fail(c, "request write"); return; }
    c->state = S_HS_SENT;
    c->hbuf = malloc(4096);
    c->hlen = 0;
    watch(c, 0);
}

/* The value of header `name` in an HTTP head, or NULL; *len gets its length. */
static const char *header_value(const char *head, const char *name, size_t *len) {
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ' || *v == '\t') v++;
            const char *e = strstr(v, "\r\n");
            *len = (size_t)(e - v);
            while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t')) (*len)--;
            return v;
        }
    }
    return NULL;
}

static void process_frames(struct conn *c, const unsigned char *d, size_t n);
static void pump(struct conn *c);

static void handle_response(struct conn *c, const unsigned char *d, size_t n) {
    if (c->hlen + n > 4095) { fail(c, "response head too long"); return; }
    memcpy(c->hbuf + c->hlen, d, n);
    c->hlen += n;
    c->hbuf[c->hlen] = 0;
    char *end = strstr((char *)c->hbuf, "\r\n\r\n");
    if (!end) return;
    size_t head_len = (size_t)(end + 4 - (char *)c->hbuf);
    end[2] = 0; /* keep one CRLF after the last header for header_value */
    if (strncmp((char *)c->hbuf, "HTTP/1.1 101", 12) != 0) { fail(c, "no 101 answer"); return; }
    char src[80], expect[40];
    unsigned char digest[20];
    snprintf(src, sizeof src, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
    sha1((unsigned char *)src, strlen(src), digest);
    base64(digest, 20, expect);
    size_t vl;
    const char *v = header_value((char *)c->hbuf, "Sec-WebSocket-Accept", &vl);
    if (!v || vl != strlen(expect) || memcmp(v, expect, vl) != 0) { fail(c, "bad Sec-WebSocket-Accept"); return; }
    if (opt_deflate) {
        v = header_value((char *)c->hbuf, "Sec-WebSocket-Extensions", &vl);
        char ext[256] = "";
        if (v) snprintf(ext, sizeof ext, "%.*s", (int)vl, v);
        if (!v || !strstr(ext, "permessage-deflate")) { fail(c, "server did not accept permessage-deflate"); return; }
        const char *w = strstr(ext, "client_max_window_bits=");
        int bits = w ? atoi(w + 23) : 15;
        inflate_reset = strstr(ext, "server_no_context_takeover") != NULL;
        if (!deflate_ready) { send_window = bits; prepare_deflate(); }
        else if (bits < send_window) { fail(c, "servers asked for different windows"); return; }
        if (inflateInit2(&c->inf, -15) != Z_OK) die("inflateInit2");
        c->inf_ready = 1;
    }
    handshakes++;
    unsigned char rest[4096];
    size_t rn = c->hlen - head_len;
    memcpy(rest, c->hbuf + head_len, rn);
    free(c->hbuf);
    c->hbuf = NULL;
    if (opt_mode == M_HS) {
        /* close at once: masked close frame, status 1000 */
        unsigned char cf[8] = {0x88, 0x82, mask_key[0], mask_key[1], mask_key[2], mask_key[3],
                               0x03 ^ mask_key[0], 0xE8 ^ mask_key[1]};
        if (write(c->fd, cf, 8) != 8) { fail(c, "close write"); return; }
        c->state = S_CLOSING;
        c->t_state = now();
        return;
    }
    c->state = S_OPEN;
    if (rn) process_frames(c, rest, rn);
}

/* ---------------------------------------------------------------- echo checks */
static void put_counter(unsigned char *out, uint64_t seq, int masked) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < CTR; i++) {
        unsigned char ch = (unsigned char)hex[(seq >> (4 * (CTR - 1 - i))) & 15];
        out[i] = masked ? ch ^ mask_key[i & 3] : ch;
    }
}

static void check_plain(struct conn *c, const unsigned char *d, size_t n) {
    uint64_t off = c->msg_off;
    if (off + n > opt_size) { fail(c, "echo longer than the message"); return; }
    if (off < CTR) {
        unsigned char want[CTR];
        put_counter(want, c->recv_seq, 0);
        for (uint64_t p = off; p < CTR && p < off + n; p++)
            if (d[p - off] != want[p]) { fail(c, "echo out of order or altered (sequence number)"); return; }
    }
    uint64_t p = (off + STRIDE - 1) / STRIDE * STRIDE;
    if (p < CTR) p = STRIDE;
    for (; p < off + n; p += STRIDE)
        if (d[p - off] != tmpl[p]) { fail(c, "echo content differs"); return; }
    if (off + n == opt_size && n && opt_size - 1 >= CTR && d[n - 1] != tmpl[opt_size - 1]) {
        fail(c, "echo content differs (last byte)");
        return;
    }
    c->msg_off += n;
}

static void record_latency(struct conn *c) {
    if (!measuring) return;
    double dt = now() - c->sent_ts[c->recv_seq % (uint64_t)opt_inflight];
    long us = (long)(dt * 1e6);
    if (us < 0) us = 0;
    long bucket = us < LAT_FINE ? us : LAT_FINE + (us - LAT_FINE) / 100;
    if (bucket < LAT_BUCKETS) lat_hist[bucket]++;
    else lat_over++;
}

static void message_done(struct conn *c) {
    if (c->msg_off != opt_size) { fail(c, "echo length differs"); return; }
    record_latency(c);
    c->recv_seq++;
    messages++;
    c->msg_off = 0;
    c->msg_active = 0;
}

static void inflate_message(struct conn *c) {
    static unsigned char *out;
    if (!out) out = malloc(opt_size + 1);
    if (!c->msg_rsv1) {
        /* sent as it is: compare directly */
        if (c->zlen != opt_size || memcmp(c->zin, tmpl, opt_size) != 0) { fail(c, "uncompressed echo differs"); return; }
    } else {
        if (c->zlen + 4 > c->zcap) { c->zcap = c->zlen + 4; c->zin = realloc(c->zin, c->zcap); }
        memcpy(c->zin + c->zlen, "\x00\x00\xff\xff", 4);
        c->inf.next_in = c->zin;
        c->inf.avail_in = (uInt)(c->zlen + 4);
        c->inf.next_out = out;
        c->inf.avail_out = (uInt)opt_size + 1;
        int r = inflate(&c->inf, Z_SYNC_FLUSH);
        if (r != Z_OK && r != Z_BUF_ERROR) { fail(c, "inflate failed"); return; }
        size_t got = opt_size + 1 - c->inf.avail_out;
        if (c->inf.avail_in != 0 || got != opt_size || memcmp(out, tmpl, opt_size) != 0) {
            fail(c, "inflated echo differs");
            return;
        }
        if (inflate_reset) inflateReset(&c->inf);
        compressed_echoes++;
    }
    c->zlen = 0;
    c->msg_off = opt_size;
    message_done(c);
}

static void frame_payload(struct conn *c, const unsigned char *d, size_t n) {
    if (c->control) return;
    if (opt_deflate) {
        if (c->zlen + n > c->zcap) {
            c->zcap = (c->zlen + n) * 2 + 64;
            c->zin = realloc(c->zin, c->zcap);
        }
        memcpy(c->zin + c->zlen, d, n);
        c->zlen += n;
        if (c->zlen > opt_size + 1024) fail(c, "compressed echo too long");
    } else {
        check_plain(c, d, n);
    }
}

static void frame_end(struct conn *c) {
    if (c->control || !c->frame_fin) return;
    if (opt_deflate) inflate_message(c);
    else message_done(c);
}

static void frame_begin(struct conn *c) {
    unsigned char b0 = c->fh[0];
    int op = b0 & 15;
    c->frame_fin = b0 >> 7;
    c->control = op >= 8;
    if (op == 8) { fail(c, "server closed the connection"); return; }
    if (c->control) return;
    if (op == 0) {
        if (!c->msg_active) { fail(c, "continuation without a message"); return; }
    } else {
        if (c->msg_active) { fail(c, "new message inside a fragmented one"); return; }
        if (op != (opt_text || opt_deflate ? 1 : 2)) { fail(c, "echo has the wrong opcode"); return; }
        if ((b0 & 0x40) && !opt_deflate) { fail(c, "unexpected RSV1"); return; }
        c->msg_active = 1;
        c->msg_opcode = op;
        c->msg_rsv1 = (b0 & 0x40) != 0;
        c->msg_off = 0;
    }
}

static void process_frames(struct conn *c, const unsigned char *d, size_t n) {
    wire_in += n;
    if (opt_raw) {
        while (n && c->state == S_OPEN) {
            size_t take = opt_size - c->msg_off;
            if (take > n) take = n;
            check_plain(c, d, take);
            if (c->state != S_OPEN) return;
            if (c->msg_off == opt_size) message_done(c);
            d += take;
            n -= take;
        }
        return;
    }
    while (n && c->state == S_OPEN) {
        if (c->remain == 0 && c->fhlen < 2) {
            c->fh[c->fhlen++] = *d++;
            n--;
            if (c->fhlen < 2) continue;
        }
        if (c->fhlen >= 2 && c->remain == 0) {
            if (c->fh[1] & 0x80) { fail(c, "server frame is masked"); return; }
            size_t need = 2 + ((c->fh[1] & 127) == 126 ? 2 : (c->fh[1] & 127) == 127 ? 8 : 0);
            while (c->fhlen < need && n) { c->fh[c->fhlen++] = *d++; n--; }
            if (c->fhlen < need) return;
            uint64_t len = c->fh[1] & 127;
            if (len == 126) len = (uint64_t)c->fh[2] << 8 | c->fh[3];
            else if (len == 127) { len = 0; for (int i = 0; i < 8; i++) len = len << 8 | c->fh[2 + i]; }
            frame_begin(c);
            if (c->state != S_OPEN) return;
            c->fhlen = 0;
            if (len == 0) { frame_end(c); continue; }
            c->remain = len;
        }
        size_t take = c->remain < n ? (size_t)c->remain : n;
        frame_payload(c, d, take);
        if (c->state != S_OPEN) return;
        c->remain -= take;
        d += take;
        n -= take;
        if (c->remain == 0) frame_end(c);
    }
}

/* ---------------------------------------------------------------- sending */
static void pump(struct conn *c) {
    if (c->state != S_OPEN) return;
    if (opt_deflate && !deflate_ready) return;
    uint64_t target = opt_mode == M_IDLE ? (uint64_t)opt_deflate : c->recv_seq + (uint64_t)opt_inflight;
    if (!stopping && c->next_seq < target) c->next_seq = target;
    size_t frame_len = hdr_len + wire_len;
    while (c->write_seq < c->next_seq) {
        struct iovec iov[2 * MAX_BATCH];
        int k = 0;
        uint64_t seq = c->write_seq;
        size_t skip = c->woff;
        double t = now();
        for (int i = 0; i < MAX_BATCH && seq < c->next_seq; i++, seq++) {
            unsigned char *p = c->pfx[i];
            memcpy(p, hdr, hdr_len);
            if (ctr_len) put_counter(p + hdr_len, seq, !opt_raw);
            size_t plen = hdr_len + ctr_len;
            if (seq >= c->stamped) {
                c->sent_ts[seq % (uint64_t)opt_inflight] = t;
                c->stamped = seq + 1;
            }
            if (skip < plen) {
                iov[k].iov_base = p + skip;
                iov[k++].iov_len = plen - skip;
                iov[k].iov_base = wire_tail + ctr_len;
                iov[k++].iov_len = wire_len - ctr_len;
            } else {
                iov[k].iov_base = wire_tail + ctr_len + (skip - plen);
                iov[k++].iov_len = frame_len - skip;
            }
            skip = 0;
        }
        ssize_t w = writev(c->fd, iov, k);
        if (w < 0) {
            if (errno == EAGAIN) { watch(c, 1); return; }
            fail_errno(c, "write failed");
            return;
        }
        size_t done = c->woff + (size_t)w;
        c->write_seq += done / frame_len;
        c->woff = done % frame_len;
    }
    watch(c, 0);
}

/* ---------------------------------------------------------------- event loop */
static unsigned char rbuf[1 << 18];

static void on_event(struct conn *c, uint32_t ev) {
    if (c->state == S_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) send_request(c);
        if (c->state == S_OPEN) pump(c);
        return;
    }
    if (ev & EPOLLIN || ev & (EPOLLERR | EPOLLHUP)) {
        for (;;) {
            ssize_t r = read(c->fd, rbuf, sizeof rbuf);
            if (r > 0) {
                if (c->state == S_HS_SENT) handle_response(c, rbuf, (size_t)r);
                else if (c->state == S_OPEN) process_frames(c, rbuf, (size_t)r);
                if (c->state == S_DONE) return;
                if ((size_t)r < sizeof rbuf) break;
                continue;
            }
            if (r == 0 || errno != EAGAIN) {
                if (c->state == S_CLOSING) {
                    /* the server ended the TCP connection after the close handshake */
                    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    c->fd = -1;
                    c->state = S_DONE;
                    if (measuring) messages++;
                    if (!stopping) start_conn(c);
                    return;
                }
                if (r == 0) fail(c, "server closed the TCP connection");
                else fail_errno(c, "read failed");
                return;
            }
            break;
        }
    }
    if (c->state == S_OPEN) pump(c);
}

static int loop_once(int timeout_ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) return -1; /* standard input (idle mode) */
        on_event(evs[i].data.ptr, evs[i].events);
    }
    return n;
}

static int all_open(int *open) {
    int o = 0, pending = 0;
    for (int i = 0; i < opt_conns; i++) {
        if (conns[i].state == S_OPEN && (!opt_deflate || opt_mode != M_IDLE || conns[i].recv_seq >= 1)) o++;
        else if (conns[i].state != S_DONE) pending++;
    }
    *open = o;
    return pending == 0;
}

/* After the measurement: take the echoes still in flight, then close every connection with a
 * closing handshake (or, for raw TCP, a FIN), so that the servers end their connections as
 * they normally do. Bounded to a few seconds; problems here are not counted. */
static void finish(void) {
    double until = now() + 3;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < opt_conns; i++) {
            struct conn *c = &conns[i];
            if (c->state == S_OPEN && (c->recv_seq < c->write_seq || c->woff)) busy = 1;
        }
        if (!busy || now() > until) break;
        loop_once(5);
    }
    for (int i = 0; i < opt_conns; i++) {
        struct conn *c = &conns[i];
        if (c->state != S_OPEN) continue;
        if (opt_raw) {
            shutdown(c->fd, SHUT_WR);
        } else {
            unsigned char cf[8] = {0x88, 0x82, mask_key[0], mask_key[1], mask_key[2], mask_key[3],
                                   0x03 ^ mask_key[0], 0xE8 ^ mask_key[1]};
            if (write(c->fd, cf, 8) != 8) continue;
        }
        c->state = S_CLOSING;
    }
    until = now() + 3;
    for (;;) {
        int open = 0;
        for (int i = 0; i < opt_conns; i++) open += conns[i].state != S_DONE;
        if (!open || now() > until) break;
        loop_once(5);
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen [--host H] --port P [--mode echo|hs|idle] [--conns N] [--inflight W] [--size B]\n"
            "               [--text] [--raw] [--deflate] [--duration S] [--warmup S] [--spin] [--server-pid PID]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--text")) opt_text = 1;
        else if (!strcmp(a, "--raw")) opt_raw = 1;
        else if (!strcmp(a, "--deflate")) opt_deflate = 1;
        else if (!strcmp(a, "--spin")) opt_spin = 1;
        else if (!v) usage();
        else {
            i++;
            if (!strcmp(a, "--host")) opt_host = v;
            else if (!strcmp(a, "--port")) opt_port = atoi(v);
            else if (!strcmp(a, "--conns")) opt_conns = atoi(v);
            else if (!strcmp(a, "--inflight")) opt_inflight = atoi(v);
            else if (!strcmp(a, "--size")) opt_size = (size_t)atoll(v);
            else if (!strcmp(a, "--duration")) opt_duration = atof(v);
            else if (!strcmp(a, "--warmup")) opt_warmup = atof(v);
            else if (!strcmp(a, "--server-pid")) opt_server_pid = atoi(v);
            else if (!strcmp(a, "--mode")) {
                if (!strcmp(v, "echo")) opt_mode = M_ECHO;
                else if (!strcmp(v, "hs")) opt_mode = M_HS;
                else if (!strcmp(v, "idle")) opt_mode = M_IDLE;
                else usage();
            } else usage();
        }
    }
    if (opt_conns < 1 || opt_inflight < 1 || opt_port <= 0 || (opt_raw && (opt_deflate || opt_mode == M_HS)))
        usage();
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    unsigned char seed[12];
    if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed) die("getrandom");
    memcpy(mask_key, seed, 4);
    memcpy(&rng_state, seed + 4, 8);
    rng_state |= 1;
    if (opt_mode == M_IDLE && opt_deflate && opt_size == 32) opt_size = 4096;
    make_template();
    if (!opt_deflate) prepare_plain();
    lat_hist = calloc(LAT_BUCKETS, sizeof *lat_hist);
    epfd = epoll_create1(0);
    conns = calloc((size_t)opt_conns, sizeof *conns);
    for (int i = 0; i < opt_conns; i++) {
        conns[i].fd = -1;
        conns[i].sent_ts = calloc((size_t)opt_inflight, sizeof(double));
    }

    double t0 = now();
    int open = 0;
    if (opt_mode != M_HS) {
        /* open every connection (at most 64 handshakes at a time) before measuring */
        int started = 0;
        while (!all_open(&open) || started < opt_conns) {
            int inprogress = 0;
            for (int i = 0; i < started; i++) inprogress += conns[i].state == S_CONNECTING || conns[i].state == S_HS_SENT;
            while (started < opt_conns && inprogress < 64) { start_conn(&conns[started++]); inprogress++; }
            loop_once(10);
            /* a busy server may drop a connection before its handshake is done: try it again,
             * three times at most, before giving up */
            for (int i = 0; i < started; i++) {
                struct conn *c = &conns[i];
                if (c->state == S_DONE && c->failed_early && c->retries < 3) {
                    c->retries++;
                    retried++;
                    errors--;
                    start_conn(c);
                }
            }
            if (errors) break;
            if (now() - t0 > 60) { fail(NULL, "timed out opening connections"); break; }
        }
    }
    double t_open = now() - t0;

    if (opt_mode == M_IDLE) {
        printf("{\"mode\": \"idle\", \"conns\": %d, \"open\": %d, \"deflate\": %d, \"open_s\": %.3f, "
               "\"compressed_echoes\": %llu, \"retried\": %llu, \"errors\": %llu, \"error\": \"%s\"}\n",
               opt_conns, open, opt_deflate, t_open, (unsigned long long)compressed_echoes, (unsigned long long)retried,
               (unsigned long long)errors, first_error);
        fflush(stdout);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
        while (loop_once(1000) >= 0) {}
        return 0;
    }

    if (opt_mode == M_ECHO) {
        for (int i = 0; i < opt_conns; i++) pump(&conns[i]);
    } else {
        for (int i = 0; i < opt_conns; i++) start_conn(&conns[i]);
    }
    double t_start = now(), t_meas = t_start + opt_warmup, t_end = t_meas + opt_duration;
    uint64_t m0 = 0, w0 = 0, e0 = 0, ce0 = 0;
    double cpu0 = 0, scpu0 = 0, tm0 = 0;
    for (;;) {
        loop_once(opt_spin ? 0 : 5);
        double t = now();
        if (opt_mode == M_HS) {
            for (int i = 0; i < opt_conns; i++) {
                struct conn *c = &conns[i];
                if (c->state == S_DONE && !stopping) start_conn(c);
                else if (c->state != S_DONE && t - c->t_state > 5) { fail(c, "handshake or close took over 5 s"); start_conn(c); }
            }
        }
        if (!measuring && t >= t_meas) {
            measuring = 1;
            memset(lat_hist, 0, LAT_BUCKETS * sizeof *lat_hist);
            lat_over = 0;
            m0 = messages; w0 = wire_in; e0 = errors; ce0 = compressed_echoes;
            cpu0 = self_cpu(); scpu0 = server_cpu(); tm0 = t;
        }
        if (measuring && t >= t_end) break;
        if (errors > 100 || (opt_mode == M_ECHO && errors)) break;
    }
    double elapsed = now() - tm0;
    double cpu = self_cpu() - cpu0, scpu = server_cpu() - scpu0;
    stopping = 1;
    measuring = 0;
    uint64_t meas_errors = errors;
    if (opt_mode == M_ECHO) finish();
    uint64_t msgs = messages - m0;
    uint64_t lat_n = lat_over, acc = 0;
    for (long i = 0; i < LAT_BUCKETS; i++) lat_n += lat_hist[i];
    long p50 = -1, p99 = -1;
    for (long i = 0; i < LAT_BUCKETS && lat_n; i++) {
        acc += lat_hist[i];
        long us = i < LAT_FINE ? i : LAT_FINE + (i - LAT_FINE) * 100;
        if (p50 < 0 && acc * 2 >= lat_n) p50 = us;
        if (p99 < 0 && acc * 100 >= lat_n * 99) { p99 = us; break; }
    }
    if (tm0 == 0) elapsed = 0;
    double rate = elapsed > 0 ? msgs / elapsed : 0;
    printf("{\"mode\": \"%s\", \"conns\": %d, \"inflight\": %d, \"size\": %zu, \"text\": %d, \"raw\": %d, "
           "\"deflate\": %d, \"seconds\": %.3f, \"messages\": %llu, \"msgs_per_s\": %.1f, \"mb_per_s\": %.2f, "
           "\"wire_in_per_msg\": %.1f, \"compressed_echoes\": %llu, \"verified\": %llu, \"errors\": %llu, "
           "\"error\": \"%s\", \"p50_us\": %ld, \"p99_us\": %ld, \"loadgen_cpu\": %.3f, \"server_cpu_s\": %.3f, "
           "\"server_us_per_msg\": %.3f, \"zlib\": \"%s\"}\n",
           opt_mode == M_HS ? "hs" : "echo", opt_conns, opt_inflight, opt_size, opt_text, opt_raw, opt_deflate,
           elapsed, (unsigned long long)msgs, rate, rate * (double)opt_size / 1e6,
           msgs ? (double)(wire_in - w0) / (double)msgs : 0.0, (unsigned long long)(compressed_echoes - ce0),
           opt_mode == M_ECHO ? (unsigned long long)msgs : 0ull, (unsigned long long)(meas_errors - e0), first_error,
           p50, p99, elapsed > 0 ? cpu / elapsed : 0.0, scpu, msgs && opt_server_pid ? scpu * 1e6 / (double)msgs : 0.0,
           zlibVersion());
    return meas_errors ? 1 : 0;
}
