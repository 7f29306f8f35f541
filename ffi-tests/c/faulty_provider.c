/*
 * A provider with bugs on demand, for the tests of worker processes: it
 * plugs an internal interface named after each logical port (cut to 15
 * bytes), except where its configuration (from --provider-config) asks it
 * to fail:
 *
 *   crash-lport=NAME        writes through NULL in port_prepare for NAME
 *   hang-lport=NAME         sleeps 30 s in port_prepare for NAME
 *   slow-lport=NAME         sleeps 60 ms in port_prepare for NAME
 *   throw-lport=NAME        throws a C++ exception out of port_prepare for
 *                           NAME (built as C++; as C it aborts instead)
 *   double-free-lport=NAME  frees its answer twice in port_ctx_destroy
 *   crash-finish-lport=NAME writes through NULL in port_finish for NAME
 *   close-sockets-lport=NAME  shuts down every socket it has, then sleeps
 *                           30 s, in port_prepare for NAME
 *   forge-lport=NAME        writes forged "entering a callback" frames to
 *                           every socket it has, then sleeps 30 s
 *   fork-crash-lport=NAME   forks a child that sleeps 30 s, then writes
 *                           through NULL
 *   big-option-lport=NAME   answers with a 100 kB interface option
 *   abort-in-init=true      calls abort() in init
 *   abort-in-init-if=PATH   calls abort() in init when PATH exists (a
 *                           provider that starts once, then never again)
 *   hang-in-run=true        sleeps 30 s in run
 *   crash-in-maintained=true  writes through NULL in
 *                           get_maintained_iface_options
 *
 * It logs "faulty provider ready (pid N)" through the host at init, so a
 * test can see C host logging pass through a worker.
 *
 * Builds as C99 and as C++17 (g++ -x c++).
 */
#define _POSIX_C_SOURCE 200809L
#include "vif-plug-provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef __cplusplus
#include <stdexcept>
#endif

static const struct vif_plug_host *host;

static const char *
lookup(const struct vif_plug_map *map, const char *key)
{
    size_t i;
    for (i = 0; i < map->n_entries; i++) {
        if (!strcmp(map->entries[i].key, key)) {
            return map->entries[i].value;
        }
    }
    return NULL;
}

/* True when configuration key `key` names logical port `lport`. */
static bool
named(const char *key, const char *lport)
{
    const char *v = host ? lookup(&host->config, key) : NULL;
    return v && lport && !strcmp(v, lport);
}

static bool
flag(const char *key)
{
    const char *v = host ? lookup(&host->config, key) : NULL;
    return v && !strcmp(v, "true");
}

static void
say(uint32_t level, const char *message)
{
    if (host && level <= host->log_max_level) {
        host->log(host, level, message);
    }
}

static void
crash(void)
{
    *(volatile int *)NULL = 1;
}

static int
faulty_init(const struct vif_plug_host *h)
{
    char line[64];
    host = h;
    if (flag("abort-in-init")) {
        abort();
    }
    if (lookup(&h->config, "abort-in-init-if") &&
        access(lookup(&h->config, "abort-in-init-if"), F_OK) == 0) {
        abort();
    }
    snprintf(line, sizeof line, "faulty provider ready (pid %ld)", (long)getpid());
    say(VIF_PLUG_LOG_INFO, line);
    return 0;
}

static int
faulty_destroy(void)
{
    host = NULL;
    return 0;
}

static bool
faulty_run(const struct vif_plug_class *cls)
{
    (void)cls;
    if (flag("hang-in-run")) {
        sleep(30);
    }
    return false;
}

static const char *const *
faulty_maintained(void)
{
    static const char *const none[] = { NULL };
    if (flag("crash-in-maintained")) {
        crash();
    }
    return none;
}

/* What a CREATE's ctx_out holds: the name, allocated, freed at destroy. */
struct answer {
    char name[16];
    char lport[64];
    struct vif_plug_kv option;
    char *big;
};

static bool
is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Writes `body` as one frame of the worker protocol to every socket. */
static void
frame(const char *body)
{
    unsigned char len[4];
    int fd;
    size_t n = strlen(body);
    len[0] = (unsigned char)(n >> 24);
    len[1] = (unsigned char)(n >> 16);
    len[2] = (unsigned char)(n >> 8);
    len[3] = (unsigned char)n;
    for (fd = 0; fd < 64; fd++) {
        if (is_socket(fd)) {
            if (write(fd, len, 4) < 0 || write(fd, body, n) < 0) {
                continue;
            }
        }
    }
}

/* A log record claiming to be the agent's, then frames the worker
 * protocol would take as "entering port_prepare", once a second. */
static void
forge(void)
{
    int i;
    frame("{\"Log\":{\"level\":1,\"target\":\"vif_plug_host::agent\","
          "\"text\":\"forged: unplugging everything\"}}");
    for (i = 0; i < 20; i++) {
        frame("{\"Entering\":{\"provider\":\"faulty\",\"callback\":\"PortPrepare\",\"id\":1}}");
        sleep(1);
    }
}

static bool
faulty_prepare(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    struct answer *a;
    if (named("crash-lport", in->lport_name)) {
        crash();
    }
    if (named("hang-lport", in->lport_name)) {
        sleep(30);
    }
    if (named("slow-lport", in->lport_name)) {
        struct timespec t = { 0, 60 * 1000 * 1000 };
        nanosleep(&t, NULL);
    }
    if (named("close-sockets-lport", in->lport_name)) {
        int fd;
        for (fd = 0; fd < 1024; fd++) {
            if (is_socket(fd)) {
                shutdown(fd, SHUT_RDWR);
            }
        }
        sleep(30);
    }
    if (named("forge-lport", in->lport_name)) {
        forge();
    }
    if (named("fork-crash-lport", in->lport_name)) {
        if (fork() == 0) {
            sleep(30);
            _exit(0);
        }
        crash();
    }
    if (named("throw-lport", in->lport_name)) {
#ifdef __cplusplus
        throw std::runtime_error("faulty provider: thrown out of port_prepare");
#else
        abort();
#endif
    }
    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        return true;
    }
    a = (struct answer *)calloc(1, sizeof *a);
    if (!a) {
        return false;
    }
    snprintf(a->name, sizeof a->name, "%s", in->lport_name);
    snprintf(a->lport, sizeof a->lport, "%s", in->lport_name);
    out->name = a->name;
    out->type = "internal";
    out->iface_options.entries = NULL;
    out->iface_options.n_entries = 0;
    if (named("big-option-lport", in->lport_name)) {
        a->big = (char *)malloc(100 * 1000 + 1);
        if (a->big) {
            memset(a->big, 'x', 100 * 1000);
            a->big[100 * 1000] = '\0';
            a->option.key = "faulty-big";
            a->option.value = a->big;
            out->iface_options.entries = &a->option;
            out->iface_options.n_entries = 1;
        }
    }
    out->provider_data = a;
    return true;
}

static void
faulty_finish(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    (void)out;
    if (named("crash-finish-lport", in->lport_name)) {
        crash();
    }
}

static void
faulty_ctx_destroy(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    /* volatile: the double free below is the bug asked for, not one for
     * the compiler to warn about. */
    struct answer *volatile a = (struct answer *)out->provider_data;
    if (a) {
        free(a->big);
    }
    free(a);
    if (named("double-free-lport", in->lport_name)) {
        free(a);
    }
    out->provider_data = NULL;
}

static const struct vif_plug_class faulty_class = {
    "faulty",
    faulty_init,
    faulty_destroy,
    faulty_run,
    faulty_maintained,
    faulty_prepare,
    faulty_finish,
    faulty_ctx_destroy,
    NULL, /* describe (ABI 1.1) */
};

const struct vif_plug_class *vif_plug_provider_classes[] = {
    &faulty_class,
    NULL,
};

VIF_PLUG_DEFINE_ABI_INFO;
