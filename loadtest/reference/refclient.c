/*
 * refclient: the latency floor's yardstick for helios-loadgen (issue 20).
 *
 * A deliberately small open-loop HTTP/1.1 POST client: one epoll instance
 * per thread, one CLOCK_MONOTONIC timerfd per connection armed with
 * TFD_TIMER_ABSTIME at the connection's next intended send time, one
 * request in flight per connection, latency from the intended send time
 * (the coordinated-omission correction). No spinning, no pipelining, no
 * chunked responses: whatever it measures is the machine's floor plus a
 * plain timerfd wake-up, the reference helios-loadgen is compared with in
 * loadtest/latency.sh. Every latency sample is kept (exact percentiles).
 *
 *   gcc -O2 -Wall -Wextra -pthread -o refclient refclient.c -lm
 *   refclient -u 127.0.0.1:18204/v1/events -b event.json -c 64 -t 2 \
 *             -r 2000 -d 8 [-a poisson|constant] [-s SEED]
 *
 * Prints one JSON object on stdout (fields named as helios-loadgen's).
 * A bench tool, not part of the product: Linux only, IPv4 only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_CONNS 4096
#define READ_BUF_BYTES 16384
#define MAX_EVENTS 256
/* Time for every thread to connect before the schedule starts. */
#define START_DELAY_NS 200000000ull
/* How long in-flight requests may still be answered after the run. */
#define DRAIN_NS 1000000000ull
/* Percentiles of the printed spectrum (as helios-loadgen's). */
static const double SPECTRUM[] = {0,    10,    20,    30,     40,     50,    60,
                                  70,   75,    80,    90,     95,     97.5,  99,
                                  99.5, 99.75, 99.9,  99.95,  99.99,  99.995, 99.999,
                                  100};

struct conn {
    int fd, tfd;
    uint64_t rng;
    uint64_t intended_ns; /* of the next request to send */
    uint64_t inflight_ns; /* intended time of the request in flight; 0 = idle */
    int due;              /* the timer fired while a request was in flight */
    size_t rlen;
    char rbuf[READ_BUF_BYTES];
};

struct samples {
    uint64_t *v;
    size_t len, cap;
};

struct thread {
    pthread_t th;
    int index;
    struct conn *conns[MAX_CONNS];
    int nconns;
    struct samples latency, lateness;
    uint64_t sent, answered, errors, backlog;
};

static struct sockaddr_in g_addr;
static char *g_req;
static size_t g_req_len;
static double g_rate, g_secs;
static int g_conns = 64, g_threads = 2, g_poisson = 1;
static uint64_t g_seed = 1, g_start_ns, g_end_ns;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* xorshift64*: one independent stream per connection. */
static double uniform(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static uint64_t gap_ns(struct conn *c) {
    double mean = 1e9 * g_conns / g_rate;
    if (!g_poisson) return (uint64_t)mean;
    return (uint64_t)(-log(1.0 - uniform(&c->rng)) * mean);
}

static void push(struct samples *s, uint64_t v) {
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) die("realloc");
    }
    s->v[s->len++] = v;
}

static void arm(struct conn *c) {
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(c->intended_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(c->intended_ns % 1000000000ull);
    if (timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
}

static void disarm(struct conn *c) {
    struct itimerspec its = {0};
    timerfd_settime(c->tfd, 0, &its, NULL);
}

/* Sends the request intended at c->intended_ns and schedules the next. */
static void send_one(struct thread *t, struct conn *c) {
    uint64_t now = now_ns();
    push(&t->lateness, now - c->intended_ns);
    size_t off = 0;
    while (off < g_req_len) {
        ssize_t n = send(c->fd, g_req + off, g_req_len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) continue; /* a 400-byte request: never in practice */
        if (n <= 0) {
            t->errors++;
            c->inflight_ns = 0;
            close(c->fd);
            c->fd = -1;
            return;
        }
        off += (size_t)n;
    }
    t->sent++;
    c->inflight_ns = c->intended_ns;
    c->intended_ns += gap_ns(c);
    if (c->intended_ns < g_end_ns)
        arm(c);
    else
        disarm(c);
}

/* Consumes complete responses in rbuf; returns -1 on a malformed one. */
static int on_readable(struct thread *t, struct conn *c) {
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
        if (n < 0 && errno == EAGAIN) return 0;
        if (n <= 0) return -1;
        c->rlen += (size_t)n;
        for (;;) {
            char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            if (!end) break;
            size_t head = (size_t)(end - c->rbuf) + 4, body = 0;
            for (char *p = c->rbuf; p < end; p++) {
                if ((p == c->rbuf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                    body = strtoul(p + 15, NULL, 10);
                if ((p == c->rbuf || p[-1] == '\n') && strncasecmp(p, "transfer-encoding:", 18) == 0)
                    return -1;
            }
            if (head + body > sizeof c->rbuf) return -1;
            if (c->rlen < head + body) break;
            if (!c->inflight_ns) return -1; /* an answer nobody asked for */
            push(&t->latency, now_ns() - c->inflight_ns);
            t->answered++;
            c->inflight_ns = 0;
            memmove(c->rbuf, c->rbuf + head + body, c->rlen - head - body);
            c->rlen -= head + body;
            if (c->due) {
                c->due = 0;
                send_one(t, c);
            }
        }
        if ((size_t)n < sizeof c->rbuf) return 0;
    }
}

static void *thread_main(void *arg) {
    struct thread *t = arg;
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < t->nconns; i++) {
        struct conn *c = t->conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0) die("connect");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
        c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
        if (c->tfd < 0) die("timerfd_create");
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i << 1};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
        ev.data.u64 = ((uint64_t)i << 1) | 1;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->tfd, &ev) < 0) die("epoll_ctl");
        arm(c);
    }
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        uint64_t now = now_ns();
        int busy = 0;
        for (int i = 0; i < t->nconns; i++) busy |= t->conns[i]->inflight_ns != 0 && t->conns[i]->fd >= 0;
        if (now >= g_end_ns && (!busy || now >= g_end_ns + DRAIN_NS)) break;
        int n = epoll_wait(ep, evs, MAX_EVENTS, 100);
        for (int k = 0; k < n; k++) {
            struct conn *c = t->conns[evs[k].data.u64 >> 1];
            if (evs[k].data.u64 & 1) {
                uint64_t ticks;
                if (read(c->tfd, &ticks, sizeof ticks) < 0) continue;
                if (c->fd < 0) continue;
                if (c->inflight_ns)
                    c->due = 1;
                else
                    send_one(t, c);
            } else if (c->fd >= 0 && on_readable(t, c) < 0) {
                t->errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                c->inflight_ns = 0;
            }
        }
    }
    for (int i = 0; i < t->nconns; i++) {
        struct conn *c = t->conns[i];
        /* Requests intended before the end but never sent: the backlog. */
        while (c->intended_ns < g_end_ns) {
            t->backlog++;
            c->intended_ns += gap_ns(c);
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least pct % of them at or below it. */
static double pct_us(struct samples *s, double pct) {
    if (!s->len) return 0;
    size_t rank = (size_t)ceil(pct / 100.0 * (double)s->len);
    if (rank < 1) rank = 1;
    return s->v[rank - 1] / 1000.0;
}

static void merge(struct samples *into, struct samples *from) {
    for (size_t i = 0; i < from->len; i++) push(into, from->v[i]);
}

static void print_stats(const char *name, struct samples *s) {
    qsort(s->v, s->len, sizeof *s->v, cmp_u64);
    printf("\"%s\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"p9999\":%.1f,\"max\":%.1f}",
           name, pct_us(s, 50), pct_us(s, 90), pct_us(s, 99), pct_us(s, 99.9), pct_us(s, 99.99),
           pct_us(s, 100));
}

int main(int argc, char **argv) {
    const char *url = NULL, *body_file = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "u:b:c:t:r:d:a:s:")) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'b': body_file = optarg; break;
        case 'c': g_conns = atoi(optarg); break;
        case 't': g_threads = atoi(optarg); break;
        case 'r': g_rate = atof(optarg); break;
        case 'd': g_secs = atof(optarg); break;
        case 'a': g_poisson = strcmp(optarg, "constant") != 0; break;
        case 's': g_seed = strtoull(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (!url || !body_file || g_rate <= 0 || g_secs <= 0 || g_conns < 1 || g_conns > MAX_CONNS ||
        g_threads < 1 || g_threads > MAX_THREADS || g_threads > g_conns) {
    usage:
        fprintf(stderr, "usage: refclient -u HOST:PORT/PATH -b BODY -r RATE -d SECS "
                        "[-c CONNS] [-t THREADS] [-a poisson|constant] [-s SEED]\n");
        return 2;
    }
    char host[64] = {0}, path[256] = "/";
    int port = 80;
    const char *slash = strchr(url, '/');
    if (slash) snprintf(path, sizeof path, "%s", slash);
    size_t hlen = slash ? (size_t)(slash - url) : strlen(url);
    if (hlen >= sizeof host) goto usage;
    memcpy(host, url, hlen);
    char *colon = strchr(host, ':');
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &g_addr.sin_addr) != 1) goto usage;

    FILE *f = fopen(body_file, "rb");
    if (!f) die(body_file);
    static char body[1 << 20];
    size_t blen = fread(body, 1, sizeof body, f);
    fclose(f);
    g_req = malloc(blen + 512);
    g_req_len = (size_t)sprintf(g_req,
                                "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\n\r\n",
                                path, host, port, blen);
    memcpy(g_req + g_req_len, body, blen);
    g_req_len += blen;

    static struct thread threads[MAX_THREADS];
    g_start_ns = now_ns() + START_DELAY_NS;
    g_end_ns = g_start_ns + (uint64_t)(g_secs * 1e9);
    for (int g = 0; g < g_conns; g++) {
        struct conn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->rng = (g_seed * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)g + 1) * 0xBF58476D1CE4E5B9ull;
        if (!c->rng) c->rng = 1;
        /* Constant: staggered by 1/rate; Poisson: one exponential gap in. */
        c->intended_ns = g_start_ns + (g_poisson ? gap_ns(c) : (uint64_t)(1e9 * g / g_rate));
        struct thread *t = &threads[g % g_threads];
        t->conns[t->nconns++] = c;
    }
    for (int i = 0; i < g_threads; i++) {
        threads[i].index = i;
        if (pthread_create(&threads[i].th, NULL, thread_main, &threads[i])) die("pthread_create");
    }
    struct samples latency = {0}, lateness = {0};
    uint64_t sent = 0, answered = 0, errors = 0, backlog = 0;
    for (int i = 0; i < g_threads; i++) {
        pthread_join(threads[i].th, NULL);
        merge(&latency, &threads[i].latency);
        merge(&lateness, &threads[i].lateness);
        sent += threads[i].sent;
        answered += threads[i].answered;
        errors += threads[i].errors;
        backlog += threads[i].backlog;
    }
    printf("{\"client\":\"refclient\",\"arrivals\":\"%s\",\"rate_target\":%.1f,\"connections\":%d,"
           "\"threads\":%d,\"duration_s\":%.3f,\"requests_sent\":%llu,\"responses\":%llu,"
           "\"errors\":%llu,\"backlog\":%llu,\"rate_achieved\":%.1f,",
           g_poisson ? "poisson" : "constant", g_rate, g_conns, g_threads, g_secs,
           (unsigned long long)sent, (unsigned long long)answered, (unsigned long long)errors,
           (unsigned long long)backlog, (double)sent / g_secs);
    print_stats("latency_us", &latency);
    putchar(',');
    print_stats("send_lateness_us", &lateness);
    printf(",\"spectrum\":[");
    for (size_t i = 0; i < sizeof SPECTRUM / sizeof *SPECTRUM; i++)
        printf("%s{\"percentile\":%g,\"corrected_us\":%.1f}", i ? "," : "", SPECTRUM[i],
               pct_us(&latency, SPECTRUM[i] == 0 ? 1e-9 : SPECTRUM[i]));
    printf("]}\n");
    return 0;
}
