#include "crm_harness.h"
#include "crm_h_bench.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>
#include <dirent.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define S_HAVE_CALLGRIND 1
#endif
#endif

#include "crm_clock.h"
#include "crm_keys.h"

/* Ports come from a range below the kernel's ephemeral ports (so no
   outgoing connection takes one between the moment it is chosen and the
   moment a service binds it), handed out in turn by a counter that every
   test process shares through a locked file (so tests running side by side
   never get the same one), each checked free by binding it. */
#define S_PORT_FIRST 20000
#define S_PORT_COUNT 12000

static bool s_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(fd, (struct sockaddr *) &a, sizeof a) == 0;
    close(fd);
    return ok;
}

int crm_h_free_port(void)
{
    int fd = open("/tmp/crm-test-ports", O_RDWR | O_CREAT, 0666);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long next = n > 0 ? atol(buf) : (long) (getpid() % S_PORT_COUNT);
    int port = -1;
    for (int tries = 0; tries < S_PORT_COUNT && port < 0; tries++) {
        int candidate = S_PORT_FIRST + (int) (next++ % S_PORT_COUNT);
        if (s_port_free(candidate))
            port = candidate;
    }
    int len = snprintf(buf, sizeof buf, "%ld\n", next % S_PORT_COUNT);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t) len, 0) != len)
        fprintf(stderr, "crm_h_free_port: cannot write /tmp/crm-test-ports\n");
    flock(fd, LOCK_UN);
    close(fd);
    assert_true(port > 0);
    return port;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *crm_h_callgrind(void)
{
    const char *dir = getenv("CRM_H_CALLGRIND");
    return dir && *dir ? dir : NULL;
}

/* How much longer a wait for a program to come up is when profiling. */
static int s_slow(void)
{
    return crm_h_callgrind() ? 10 : 1;
}

static const char *s_basename(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* In a child about to exec `path` with `argv` (argv[0] is path; room for
   five more in front): when profiling, execs valgrind with it instead;
   returns only when not profiling or exec failed. */
static void s_exec_profiled(const char *path, const char **argv, int argc, char *const *envp)
{
    const char *dir = crm_h_callgrind();
    if (!dir)
        return;
    const char *name = s_basename(path), *atstart = getenv("CRM_H_CALLGRIND_ATSTART");
    bool on = false;
    size_t n = strlen(name);
    for (const char *p = atstart; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p))
        on |= !strncmp(p, name, n) && (p[n] == ',' || p[n] == 0);
    static char out[600];
    snprintf(out, sizeof out, "--callgrind-out-file=%s/%s.%%p", dir, name);
    const char *vg[40] = {"valgrind", "-q", "--tool=callgrind", on ? "--instr-atstart=yes" : "--instr-atstart=no", out};
    int k = 5;
    for (int i = 0; i < argc && k < 39; i++)
        vg[k++] = argv[i];
    vg[k] = NULL;
    if (envp)
        execvpe("valgrind", (char *const *) vg, envp);
    else
        execvp("valgrind", (char *const *) vg);
}

/* As deploy/ runs Redis (deploy/README.md, "Redis"). */
#define CRM_H_LISTPACK_VALUE "256"

int crm_h_redis_start(crm_h_redis_t *r, bool appendonly)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/crm-test-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    r->port = crm_h_free_port();
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    char port[16], log[300];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    pid_t parent = getpid();
    r->pid = fork();
    if (r->pid == 0) {
        crm_h_die_with_parent(parent);
        const char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", r->dir, "--save", "",
                              "--appendonly", appendonly ? "yes" : "no", "--appendfsync", "everysec", "--logfile", log,
                              "--daemonize", "no", "--hash-max-listpack-value", CRM_H_LISTPACK_VALUE};
        s_exec_profiled("redis-server", argv, (int) (sizeof argv / sizeof argv[0]), NULL);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir",
               r->dir, "--save", "", "--appendonly", appendonly ? "yes" : "no", "--appendfsync",
               "everysec", "--logfile", log, "--daemonize", "no", "--hash-max-listpack-value",
               CRM_H_LISTPACK_VALUE, (char *) NULL);
        _exit(127);
    }
    if (r->pid < 0)
        return -1;
    for (int i = 0; i < 250 * s_slow(); i++) {
        /* Wait for the port to answer before a client (which would say
           "connection refused" on stderr) tries it. */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) r->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int up = fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        crm_store_t *s = up ? crm_store_new(r->url, 500) : NULL;
        if (s) {
            crm_store_destroy(&s);
            return 0;
        }
        s_sleep_ms(20);
    }
    return -1;
}

void crm_h_redis_stop(crm_h_redis_t *r)
{
    if (r->pid > 0)
        crm_h_stop(r->pid, SIGTERM, 5000);
    r->pid = 0;
    if (r->dir[0] && !getenv("CRM_TEST_KEEP")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", r->dir);
    }
}

crm_store_t *crm_h_store(const crm_h_redis_t *r)
{
    crm_store_t *s = crm_store_new(r->url, 5000);
    assert_non_null(s);
    return s;
}

/* Whether "NAME=value" `a` is in `list` under its name (an entry of the
   same NAME=). */
static bool s_env_named(const char *a, const char *const *list)
{
    size_t name = strcspn(a, "=");
    for (const char *const *e = list; e && *e; e++)
        if (!strncmp(*e, a, name + 1))
            return true;
    return false;
}

/* This process's environment with the entries of `env` ("NAME=value")
   in place of those of the same name; one allocation, freed by the caller
   (the strings are borrowed). */
static char **s_env_with(const char *const *env)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    for (const char *const *e = env; e && *e; e++)
        k++;
    char **out = calloc(n + k + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!s_env_named(environ[i], env))
            out[m++] = environ[i];
    for (const char *const *e = env; e && *e; e++)
        if (!s_env_named(*e, e + 1)) /* as putenv one after another: the last of a name wins */
            out[m++] = (char *) *e;
    out[m] = NULL;
    return out;
}

pid_t crm_h_spawn_path(const char *path, const char *const *args, const char *const *env, const char *log)
{
    const char *argv[32] = {path};
    int n = 1;
    for (const char *const *a = args; a && *a && n < 31; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    /* The child's environment is made here, before the fork: between fork
       and exec the child of a process with threads (ZeroMQ's) may only make
       async-signal-safe calls. putenv there allocates, and an allocator
       whose lock another thread held at the fork (AddressSanitizer's) never
       lets it go: the child hung before exec and the test with it. */
    char **envv = s_env_with(env);
    assert_non_null(envv);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crm_h_die_with_parent(parent);
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        s_exec_profiled(path, argv, n, envv);
        execve(path, (char *const *) argv, envv);
        _exit(127);
    }
    free(envv);
    return pid;
}

pid_t crm_h_spawn(const char *bin, const char *const *args, const char *const *env, const char *log)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CRM_BIN_DIR, bin);
    return crm_h_spawn_path(path, args, env, log);
}

#define S_RUN_LIMIT_MS 120000 /* a client run by a test; the slowest (an import under ASan) takes ~20 s */

int crm_h_run(const char *bin, const char *const *args, const char *const *env, const char *log)
{
    pid_t pid = crm_h_spawn(bin, args, env, log);
    /* A client that never ends fails its test here, named, rather than the
       whole test binary at ctest's timeout with nothing said. */
    int status, limit_ms = S_RUN_LIMIT_MS * s_slow();
    for (int64_t deadline = crm_mono_ms() + limit_ms;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            break;
        if (got < 0)
            return -1;
        if (crm_mono_ms() >= deadline) {
            fprintf(stderr, "harness: %s", bin);
            for (const char *const *a = args; a && *a; a++)
                fprintf(stderr, " %s", *a);
            fprintf(stderr, " did not end in %d s; stopped (output in %s)\n", limit_ms / 1000, log ? log : "-");
            crm_h_stop(pid, SIGABRT, 5000);
            return -1;
        }
        s_sleep_ms(10);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

double crm_h_redis_benchmark(const crm_h_redis_t *r)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "redis-benchmark -p %d -P 16 -t set -n 400000 -q 2>/dev/null", r->port);
    FILE *p = popen(cmd, "r");
    double rps = 0;
    char line[512];
    /* The -q output rewrites its line with \r; the last figure wins. */
    while (p && fgets(line, sizeof line, p))
        for (char *s = strstr(line, "SET: "); s; s = strstr(s + 5, "SET: "))
            rps = atof(s + 5);
    if (p)
        pclose(p);
    return rps;
}

const char *crm_h_share(double rate, double yardstick, char *out, size_t size)
{
    if (yardstick > 0)
        snprintf(out, size, "%.2f%% of the yardstick", 100.0 * rate / yardstick);
    else
        snprintf(out, size, "%s", "no yardstick");
    return out;
}

static int s_callgrind_control(const char *what, pid_t pid)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "callgrind_control %s %d >/dev/null 2>&1", what, (int) pid);
    return system(cmd) == 0 ? 0 : -1;
}

int crm_h_cg_on(pid_t pid)
{
    return crm_h_callgrind() ? s_callgrind_control("-i on", pid) : -1;
}

/* The Ir of a callgrind profile part: its "totals:" line, the part's own
   cost, else its "summary:". Not "summary:" first: after the first part it
   is this part's cost less the one before (callgrind's "-i off" zeroes the
   counters, not what the last dump saw), and below zero it wraps. */
static long long s_cg_file_ir(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    long long totals = -1, summary = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "totals:", 7))
            totals = atoll(line + 7);
        else if (!strncmp(line, "summary:", 8))
            summary = atoll(line + 8);
    }
    if (f)
        fclose(f);
    return totals >= 0 ? totals : summary;
}

long long crm_h_cg_ir(const char *name, pid_t pid)
{
    const char *dir = crm_h_callgrind();
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return -1;
    char prefix[300], best[600] = "";
    snprintf(prefix, sizeof prefix, "%s.%d", name, (int) pid);
    size_t pl = strlen(prefix);
    long newest = -1; /* 0: the profile at exit, n: dump n */
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, pl) != 0 || (e->d_name[pl] != 0 && e->d_name[pl] != '.'))
            continue;
        long n = e->d_name[pl] ? atol(e->d_name + pl + 1) : 0;
        if (n > newest || (n == 0 && newest < 0)) {
            newest = n;
            snprintf(best, sizeof best, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return best[0] ? s_cg_file_ir(best) : -1;
}

long long crm_h_cg_off(pid_t pid, const char *name)
{
    if (!crm_h_callgrind() || s_callgrind_control("-d", pid) != 0)
        return -1;
    s_callgrind_control("-i off", pid);
    return crm_h_cg_ir(name, pid);
}

void crm_h_cg_self_on(void)
{
#ifdef S_HAVE_CALLGRIND
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
#endif
}

long long crm_h_cg_self_off(const char *name)
{
#ifdef S_HAVE_CALLGRIND
    if (!RUNNING_ON_VALGRIND)
        return -1;
    CALLGRIND_DUMP_STATS;
    CALLGRIND_STOP_INSTRUMENTATION;
    return crm_h_cg_ir(name, getpid());
#else
    (void) name;
    return -1;
#endif
}

bool crm_h_alive(pid_t pid)
{
    int status;
    return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

int crm_h_stop(pid_t pid, int sig, int timeout_ms)
{
    int status;
    kill(pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return status;
        if (got < 0)
            return -1;
        s_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

bool crm_h_wait(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = crm_mono_ms() + timeout_ms;
    do {
        if (cond(arg))
            return true;
        s_sleep_ms(20);
    } while (crm_mono_ms() < deadline);
    return cond(arg);
}

static long long s_vint(crm_store_t *s, const char *fmt, va_list ap)
{
    char cmd[512];
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    /* Split on spaces: test commands have no spaces inside arguments. */
    const char *argv[16];
    size_t lens[16];
    int argc = 0;
    for (char *save = NULL, *p = strtok_r(cmd, " ", &save); p && argc < 16; p = strtok_r(NULL, " ", &save)) {
        argv[argc] = p;
        lens[argc++] = strlen(p);
    }
    redisReply *r = crm_store_cmdargv(s, argc, argv, lens);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

long long crm_h_int(crm_store_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    long long v = s_vint(s, fmt, ap);
    va_end(ap);
    return v;
}

long long crm_h_wait_int(crm_store_t *s, long long want, int timeout_ms, const char *fmt, ...)
{
    int64_t deadline = crm_mono_ms() + timeout_ms;
    long long v;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        v = s_vint(s, fmt, ap);
        va_end(ap);
        if (v >= want || crm_mono_ms() >= deadline)
            return v;
        s_sleep_ms(20);
    }
}

bool crm_h_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int crm_h_file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[16384];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

void crm_h_die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(126);
}

char *crm_h_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    char *buf = calloc(1, n > 0 ? (size_t) n + 1 : 1);
    assert_non_null(buf);
    if (n > 0 && (fseek(f, 0, SEEK_SET) != 0 || fread(buf, 1, (size_t) n, f) != (size_t) n))
        buf[0] = 0;
    if (f)
        fclose(f);
    return buf;
}

void crm_h_path(const crm_h_redis_t *r, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", r->dir, name);
}

/* ------------------------------------------------------------ a system */

static const char *const s_services[] = {
#define S_NAME(name, port, control) #name,
    CRM_SERVICES(S_NAME)
#undef S_NAME
};

int crm_h_service_index(const char *svc)
{
    for (int i = 0; i < CRM_H_SERVICES; i++)
        if (!strcmp(s_services[i], svc))
            return i;
    return -1;
}

void crm_h_sys_env(crm_h_sys_t *s, const char *fmt, ...)
{
    assert_true(s->nenv < 40);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->env[s->nenv], sizeof s->env[0], fmt, ap);
    va_end(ap);
    s->envp[s->nenv] = s->env[s->nenv];
    s->nenv++;
    s->envp[s->nenv] = NULL;
}

void crm_h_sys_set_clock(crm_h_sys_t *s, int64_t ms)
{
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->clock);
    FILE *c = fopen(tmp, "w");
    assert_non_null(c);
    fprintf(c, "%lld\n", (long long) ms);
    fclose(c);
    assert_int_equal(rename(tmp, s->clock), 0);
}

int crm_h_sys_start(crm_h_sys_t *s, bool aof, bool clock)
{
    memset(s, 0, sizeof *s);
    if (crm_h_redis_start(&s->redis, aof) != 0)
        return -1;
    s->store = crm_h_store(&s->redis);
    char peers[400] = "";
    size_t used = 0;
    for (int i = 0; i < CRM_H_SERVICES; i++) {
        s->pub[i] = crm_h_free_port();
        s->control[i] = crm_h_free_port();
        used += (size_t) snprintf(peers + used, sizeof peers - used, "tcp://127.0.0.1:%d,", s->pub[i]);
    }
    s->test_pub = crm_h_free_port();
    snprintf(peers + used, sizeof peers - used, "tcp://127.0.0.1:%d", s->test_pub);
    s->intake = crm_h_free_port();
    s->gw_pub = crm_h_free_port();
    s->gw_router = crm_h_free_port();
    crm_h_path(&s->redis, "certs", s->certs, sizeof s->certs);
    crm_h_path(&s->redis, "gateway.cert", s->server_cert, sizeof s->server_cert);
    crm_h_path(&s->redis, "crmctl.out", s->out, sizeof s->out);
    crm_h_sys_env(s, "CRM_REDIS_URL=%s", s->redis.url);
    crm_h_sys_env(s, "CRM_PEERS=%s", peers);
    crm_h_sys_env(s, "CRM_INTAKE_ENDPOINT=tcp://127.0.0.1:%d", s->intake);
    crm_h_sys_env(s, "CRM_GATEWAY_PUB=tcp://127.0.0.1:%d", s->gw_pub);
    crm_h_sys_env(s, "CRM_GATEWAY_ROUTER=tcp://127.0.0.1:%d", s->gw_router);
    crm_h_sys_env(s, "CRM_CERT_DIR=%s", s->certs);
    crm_h_sys_env(s, "CRM_SERVER_CERT=%s", s->server_cert);
    for (int i = 0; i < CRM_H_SERVICES; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s", s_services[i]);
        for (char *p = name; *p; p++)
            *p = (char) (*p - 'a' + 'A');
        crm_h_sys_env(s, "CRM_%s_CONTROL=tcp://127.0.0.1:%d", name, s->control[i]);
    }
    if (clock) {
        crm_h_path(&s->redis, "clock", s->clock, sizeof s->clock);
        crm_h_sys_set_clock(s, crm_now_ms());
        crm_h_sys_env(s, "CRM_CLOCK_FILE=%s", s->clock);
    }
    zsock_t *pub = zsock_new(ZMQ_PUB);
    assert_non_null(pub);
    zsock_set_sndhwm(pub, 0);
    assert_true(zsock_bind(pub, "tcp://127.0.0.1:%d", s->test_pub) >= 0);
    s->pub_sock = pub;
    return 0;
}

pid_t crm_h_sys_spawn(crm_h_sys_t *s, const char *svc, const char *const *extra)
{
    int i = crm_h_service_index(svc);
    assert_true(i >= 0);
    const char *env[64];
    int n = 0;
    for (int k = 0; k < s->nenv; k++) {
        /* an entry of `extra` replaces the system's of the same name */
        if (!s_env_named(s->envp[k], extra))
            env[n++] = s->envp[k];
    }
    char pub[64], control[64];
    snprintf(pub, sizeof pub, "CRM_PUB=tcp://127.0.0.1:%d", s->pub[i]);
    snprintf(control, sizeof control, "CRM_CONTROL=tcp://127.0.0.1:%d", s->control[i]);
    env[n++] = pub;
    env[n++] = control;
    for (const char *const *e = extra; e && *e && n < 63; e++)
        env[n++] = *e;
    env[n] = NULL;
    char bin[64], log[400], key[64];
    snprintf(bin, sizeof bin, "crm-%s", svc);
    crm_h_sys_log(s, svc, log, sizeof log);
    /* What the previous instance reported must not count as this one up. */
    snprintf(key, sizeof key, "crm:svc:%s", svc);
    redisReply *r = crm_store_cmd(s->store, "DEL %s", key);
    freeReplyObject(r);
    s->pids[i] = crm_h_spawn(bin, NULL, env, log);
    if (crm_h_wait_int(s->store, 1, 15000 * s_slow(), "EXISTS %s", key) != 1)
        fail_msg("crm-%s did not start (see %s)", svc, log);
    return s->pids[i];
}

int crm_h_sys_kill(crm_h_sys_t *s, const char *svc, int sig)
{
    int i = crm_h_service_index(svc);
    assert_true(i >= 0);
    int status = s->pids[i] > 0 ? crm_h_stop(s->pids[i], sig, 5000) : -1;
    s->pids[i] = 0;
    return status;
}

int crm_h_sys_crmctl(crm_h_sys_t *s, ...)
{
    const char *args[32];
    int n = 0;
    va_list ap;
    va_start(ap, s);
    for (const char *a; n < 31 && (a = va_arg(ap, const char *));)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return crm_h_run("crmctl", args, s->envp, s->out);
}

void crm_h_sys_commit(crm_h_sys_t *s, crm_tx_t *tx)
{
    assert_int_equal(crm_store_commit(s->store, tx), 0);
    for (size_t i = 0; i < crm_tx_emit_count(tx); i++) {
        const crm_emit_t *e = crm_tx_emit_at(tx, i);
        char topic[CRM_NAME_MAX + 2];
        snprintf(topic, sizeof topic, "%s:", e->stream);
        zsock_send(s->pub_sock, "sb", topic, e->frame, e->len);
    }
}

void crm_h_sys_testdrives(crm_h_sys_t *s, const char *dealer, int first, int n, int per_tx, int64_t at)
{
    redisReply *r = crm_store_cmd(s->store, "HSET crm:cust:{C1} name 王先生 mobile 13812345678 city 深圳");
    freeReplyObject(r);
    for (int i = 0; i < n; i += per_tx) {
        crm_tx_t *tx = crm_tx_new("intake", 1000000);
        for (int k = i; k < i + per_tx && k < n; k++) {
            char tid[32];
            snprintf(tid, sizeof tid, "T%d", first + k);
            crm_h_bench_testdrive(tx, tid, dealer, at);
        }
        crm_h_sys_commit(s, tx);
        crm_tx_destroy(&tx);
    }
}

const char *crm_h_sys_log(crm_h_sys_t *s, const char *svc, char *out, size_t size)
{
    char name[40];
    snprintf(name, sizeof name, "%.30s.log", svc);
    crm_h_path(&s->redis, name, out, size);
    return out;
}

void crm_h_sys_stop(crm_h_sys_t *s)
{
    for (int i = 0; i < CRM_H_SERVICES; i++)
        if (s->pids[i] > 0)
            crm_h_stop(s->pids[i], SIGTERM, 5000);
    zsock_t *pub = s->pub_sock;
    zsock_destroy(&pub);
    s->pub_sock = NULL;
    crm_store_destroy(&s->store);
    crm_h_redis_stop(&s->redis);
}

char *crm_h_sys_td(crm_h_sys_t *s, const char *tid, const char *field)
{
    redisReply *r = crm_store_cmd(s->store, "HGET crm:td:%s %s", tid, field);
    char *v = strdup(r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    assert_non_null(v);
    return v;
}

bool crm_h_sys_td_is(crm_h_sys_t *s, const char *tid, const char *status)
{
    char *now = crm_h_sys_td(s, tid, "status");
    bool ok = !strcmp(now, status);
    free(now);
    return ok;
}

void crm_h_sys_wait_td(crm_h_sys_t *s, const char *tid, const char *status, int ms)
{
    int64_t end = crm_mono_ms() + ms;
    while (!crm_h_sys_td_is(s, tid, status) && crm_mono_ms() < end)
        usleep(20 * 1000);
    if (!crm_h_sys_td_is(s, tid, status)) {
        char *now = crm_h_sys_td(s, tid, "status"), got[64];
        snprintf(got, sizeof got, "%s", now);
        free(now);
        fail_msg("test drive %s is '%s' after %d ms, expected '%s'", tid, got, ms, status);
    }
}

const char *crm_h_hostile_id(int i)
{
    static const char *const v[] = {"Hx:open", "{Hx}", "Hx}", "Hx open", "Hx*", "Hx\nopen"};
    static char big[10241];
    if (i >= 0 && i < 6)
        return v[i];
    if (!big[0]) {
        memcpy(big, "Hx", 2);
        memset(big + 2, 'x', sizeof big - 3);
    }
    return big;
}

/* ------------------------------------------------------------ dealers' clients */

void *crm_h_dealer_socket(crm_h_sys_t *s, const char *secret, const char *server_key)
{
    zcert_t *cert = zcert_load(secret);
    if (!cert)
        return NULL;
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock) {
        zcert_destroy(&cert);
        return NULL;
    }
    zcert_apply(cert, sock);
    zcert_destroy(&cert);
    zsock_set_curve_serverkey(sock, server_key);
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, 100000);
    zsock_set_rcvhwm(sock, 100000);
    if (zsock_connect(sock, "tcp://127.0.0.1:%d", s->gw_router) != 0)
        zsock_destroy(&sock);
    return sock;
}

int crm_h_send_all(void *sockp, void *const *frames, const size_t *lens, char (*ids)[CRM_ID_MAX], int n, int window,
                   int resend_ms, int give_up_ms, void (*tick)(void *arg, int answered), void *arg, int *ok)
{
    zsock_t *sock = sockp;
    int64_t *sent = calloc((size_t) n + 1, sizeof *sent); /* 0 not sent, -1 answered, else when */
    zhashx_t *index = zhashx_new();
    if (!sent || !index) {
        free(sent);
        zhashx_destroy(&index);
        return 0;
    }
    for (int i = 0; i < n; i++)
        zhashx_insert(index, ids[i], (void *) (intptr_t) (i + 1));
    int answered = 0, oks = 0, next = 0, inflight = 0;
    int64_t last_answer = crm_mono_ms();
    while (answered < n && crm_mono_ms() - last_answer < give_up_ms) {
        int64_t now = crm_mono_ms();
        while (inflight < window && next < n) {
            zmq_send(zsock_resolve(sock), frames[next], lens[next], ZMQ_DONTWAIT);
            sent[next++] = now;
            inflight++;
        }
        /* resend what waited too long (the oldest first, a window's worth) */
        for (int i = 0, k = 0; i < next && k < window; i++)
            if (sent[i] > 0 && now - sent[i] > resend_ms) {
                zmq_send(zsock_resolve(sock), frames[i], lens[i], ZMQ_DONTWAIT);
                sent[i] = now;
                k++;
            }
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        while (zsock_events(sock) & ZMQ_POLLIN) {
            zframe_t *fr = zframe_recv(sock);
            if (!fr)
                break;
            crm_msg_t m;
            crm_err_t err;
            if (crm_msg_decode(zframe_data(fr), zframe_size(fr), &m, &err) == 0) {
                intptr_t i = (intptr_t) zhashx_lookup(index, m.corr) - 1;
                if (i >= 0 && sent[i] != -1) {
                    sent[i] = -1;
                    answered++;
                    inflight--;
                    last_answer = crm_mono_ms();
                    bool good = m.type == CRM_T_dealer_reply ? m.body.dealer_reply.ok
                                                             : m.type == CRM_T_reply && m.body.reply.ok;
                    oks += good;
                    if (tick)
                        tick(arg, answered);
                }
                crm_msg_clear(&m);
            }
            zframe_destroy(&fr);
        }
    }
    free(sent);
    zhashx_destroy(&index);
    if (ok)
        *ok = oks;
    return answered;
}

/* Walks the events of `type` on `stream` whose JSON holds `needle`: their
   count, and the body of the newest in *last (when asked; caller decrefs). */
static int s_events_walk(crm_store_t *store, const char *stream, const char *type, const char *needle, json_t **last)
{
    redisReply *r = crm_store_cmd(store, "XRANGE crm:{%s}:events - +", stream);
    assert_non_null(r);
    int n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *fr = crm_reply_field_reply(r->element[i]->element[1], "m");
        crm_msg_t m;
        crm_err_t err;
        if (!fr || crm_msg_decode(fr->str, fr->len, &m, &err) != 0)
            continue;
        char *json = crm_msg_to_json(&m);
        if (!strcmp(crm_type_name(m.type), type) && json && (!needle || strstr(json, needle))) {
            n++;
            json_error_t e;
            json_t *o = last ? json_loads(json, 0, &e) : NULL;
            if (o) {
                json_decref(*last);
                *last = json_incref(json_object_get(o, "body"));
                json_decref(o);
            }
        }
        free(json);
        crm_msg_clear(&m);
    }
    freeReplyObject(r);
    return n;
}

int crm_h_events(crm_store_t *store, const char *stream, const char *type, const char *needle)
{
    return s_events_walk(store, stream, type, needle, NULL);
}

json_t *crm_h_event_body(crm_store_t *store, const char *stream, const char *type, const char *needle)
{
    json_t *last = NULL;
    s_events_walk(store, stream, type, needle, &last);
    return last;
}

/* ------------------------------------------------------------ crm-auditor */

int crm_h_audit_system(crm_h_sys_t *s)
{
    crm_h_sys_spawn(s, "intake", NULL);
    crm_h_sys_spawn(s, "dispatcher", NULL);
    static const char *const aud[] = {"CRM_AUDIT_SCHEDULE=none", NULL};
    crm_h_sys_spawn(s, "auditor", aud);
    /* the carmaker's sales regions of the seed (Q1 2007), every province in one */
    char path[400];
    crm_h_path(&s->redis, "regions.txt", path, sizeof path);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    fputs("北京区=北京,天津,河北,山西,内蒙古,辽宁,吉林,黑龙江,山东,河南\n"
          "南京区=上海,江苏,浙江,安徽,福建,江西,湖北,湖南\n"
          "成都区=四川,重庆,贵州,云南,西藏,陕西,甘肃,青海,宁夏,新疆\n"
          "广州区=广东,广西,海南,香港,澳门,台湾\n",
          fp);
    fclose(fp);
    if (crm_h_sys_crmctl(s, "regions", "load", path, NULL) != 0) {
        char *out = crm_h_slurp(s->out);
        fprintf(stderr, "regions load: %s\n", out ? out : "?");
        free(out);
        return -1;
    }
    return 0;
}

int crm_h_ask(crm_h_sys_t *s, const char *svc, crm_msg_t *req, crm_msg_t *answer)
{
    zsock_t *sock = zsock_new(ZMQ_REQ);
    assert_non_null(sock);
    assert_int_equal(zsock_connect(sock, "tcp://127.0.0.1:%d", s->control[crm_h_service_index(svc)]), 0);
    crm_new_id(req->id, sizeof req->id);
    req->ts = crm_now_ms();
    snprintf(req->producer, sizeof req->producer, "test");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(crm_msg_encode(req, &buf, NULL), 0);
    zframe_t *fr = zframe_new(buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    assert_int_equal(zframe_send(&fr, sock, 0), 0);
    zsock_set_rcvtimeo(sock, 10000);
    zframe_t *ans = zframe_recv(sock);
    zsock_destroy(&sock);
    if (!ans)
        return -1;
    crm_err_t err;
    int rc = crm_msg_decode(zframe_data(ans), zframe_size(ans), answer, &err);
    zframe_destroy(&ans);
    return rc;
}

void crm_h_audit_ask(crm_h_sys_t *s, const char *kind, const char *period, const char *dealer, const char *region,
                     char *id, size_t size)
{
    crm_msg_t m;
    crm_msg_init(&m, CRM_T_audit_run);
    CRM_SET_STR(&m, audit_run, kind, kind);
    CRM_SET_STR(&m, audit_run, period, period);
    CRM_SET_STR(&m, audit_run, dealer_id, dealer);
    CRM_SET_STR(&m, audit_run, region, region);
    crm_msg_t a;
    assert_int_equal(crm_h_ask(s, "auditor", &m, &a), 0);
    crm_msg_clear(&m);
    if (a.type != CRM_T_reply || !a.body.reply.ok)
        fail_msg("audit.run refused: %s", a.type == CRM_T_reply && a.body.reply.message ? a.body.reply.message : "?");
    snprintf(id, size, "%s", a.body.reply.id);
    crm_msg_clear(&a);
}

void crm_h_audit_wait(crm_h_sys_t *s, const char *run)
{
    for (int i = 0; i < 600; i++) {
        redisReply *r = crm_store_cmd(s->store, "HGET crm:audit:run:%s state", run);
        assert_non_null(r);
        bool done = r->type == REDIS_REPLY_STRING && !strcmp(r->str, "done");
        freeReplyObject(r);
        if (done)
            return;
        s_sleep_ms(50);
    }
    fail_msg("run %s did not finish", run);
}

void *crm_h_audit_figures(crm_h_sys_t *s, const char *run, const char *dealer)
{
    redisReply *r = crm_store_cmd(s->store, "HGET crm:audit:run:%s:dealers %s", run, dealer);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING)
        fail_msg("run %s has no figures for %s", run, dealer);
    json_error_t e;
    json_t *j = json_loads(r->str, 0, &e);
    freeReplyObject(r);
    assert_non_null(j);
    return j;
}

long long crm_h_json_num(const void *json, const char *path)
{
    const json_t *v = json;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *p = strtok_r(buf, ".", &save); p && v; p = strtok_r(NULL, ".", &save))
        v = json_object_get(v, p);
    if (!json_is_integer(v))
        fail_msg("no number at %s", path);
    return (long long) json_integer_value(v);
}
