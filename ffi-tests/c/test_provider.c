/*
 * A provider written in C against include/vif-plug-provider.h, used by the
 * tests. Built as is, it is a correct provider with two classes:
 *
 *   "c-test"     system interface named "<prefix><lport>" (cut to 15 bytes),
 *                prefix from the configuration key "prefix" (default "c-"),
 *                or named by the logical port option "vif-plug:c-test:name",
 *                options c-test-lport=<lport> and c-test-datapath=<type>;
 *                maintains both. Declines ports whose "vif-plug:c-test:ready"
 *                option is "false", or until run was called N times if
 *                the configuration says "ready-after-runs=N". Its run
 *                returns true when the configuration says
 *                "run-reports-change=true", and at the Nth call. With
 *                "errors-per-run=N", each run logs N error lines (for the
 *                agent's memory benchmark). With "needs=mac", "needs=dpdk"
 *                or "needs=iface", it declines a CREATE unless the port
 *                has a MAC, DPDK is initialised, or the interface exists
 *                (a provider that only adopts interfaces made elsewhere).
 *                With "update-name=NAME", it answers NAME for a port whose
 *                interface exists (a rename).
 *   "c-test-alt" internal interface named after the lport, no options.
 *
 * It records every call in a journal that tests read through the exported
 * function c_test_journal(), to check the call order the host follows.
 *
 * Built against the ABI 1.1 header, it journals the first of the logical
 * port's MACs ("mac:MAC") after a CREATE's prepare; built against the 1.0
 * header (ffi-tests/c/abi-1.0), it cannot. Its 1.1 build also describes
 * itself (two lines: its prefix and how often run was called).
 *
 * Built with LOG_AFTER_DESTROY, its destroy leaves a thread behind that
 * logs through the host context every millisecond. Built with
 * THREAD_NOT_JOINED, init starts a thread that destroy tells to stop
 * without joining it.
 *
 * Built with LEAK_PER_CREATE, each CREATE leaks 64 bytes (for the
 * valgrind and ASan recipes of docs/writing-a-provider.md).
 *
 * Built with LOG_CALLS, it also logs every call through the host ("call
 * event:lport"), so that a test can read the order of calls in the agent's
 * log.
 *
 * Each BAD_* macro turns it into one kind of broken provider, for the tests
 * of the host's refusals and of `vif-plug-host check`.
 */
/* fork, sleep and nanosleep, under -std=c99. */
#define _POSIX_C_SOURCE 200809L

#include "vif-plug-provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>

#define IFNAME_MAX 15

static const struct vif_plug_host *host;
static char prefix[16] = "c-";
static bool run_reports_change;
/* With "ready-after-runs=N": declines every port until run has been called
 * N times, and run reports a change exactly then. */
static long ready_after_runs;
static long runs;
static long errors_per_run;
static char needs[16];
static char update_name[16];
static char journal[65536];

static void say(uint32_t level, const char *message);

/* Appends "event:lport " to the journal (dropped when full). */
static void
note(const char *event, const char *lport)
{
    size_t used = strlen(journal);
    snprintf(journal + used, sizeof journal - used, "%s:%s ", event, lport);
#ifdef LOG_CALLS
    {
        char line[300];
        snprintf(line, sizeof line, "call %s:%s", event, lport);
        say(VIF_PLUG_LOG_INFO, line);
    }
#endif
}

const char *c_test_journal(void);
const char *
c_test_journal(void)
{
    return journal;
}

static void
say(uint32_t level, const char *message)
{
    if (host && level <= host->log_max_level) {
        host->log(host, level, message);
    }
}

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

#ifdef THREAD_NOT_JOINED
/* A thread started in init that destroy tells to stop, without joining
 * it: it ends within a few milliseconds. */
static volatile int stop_worker;

static void *
polling_worker(void *arg)
{
    struct timespec ms = { 0, 1000000 };
    (void) arg;
    while (!stop_worker) {
        nanosleep(&ms, NULL);
    }
    return NULL;
}
#endif

static int
c_test_init(const struct vif_plug_host *h)
{
    const char *p;
    char line[128];

    host = h;
    /* What init returns, to test the host's reading of it (a vendor's
     * negative errno, say). */
    p = lookup(&h->config, "init-returns");
    if (p) {
        host = NULL;
        return (int) strtol(p, NULL, 10);
    }
    /* An error line that is not UTF-8, and a failure, to test how the
     * host shows such bytes. */
    p = lookup(&h->config, "say-bytes");
    if (p && !strcmp(p, "true")) {
        say(VIF_PLUG_LOG_ERROR, "not UTF-8: \xff\xfe end");
        host = NULL;
        return EINVAL;
    }
    /* Two lines at a level the ABI does not have, to test the host. */
    p = lookup(&h->config, "log-at-level");
    if (p) {
        h->log(h, (uint32_t) strtoul(p, NULL, 10), "a line at an odd level");
        h->log(h, (uint32_t) strtoul(p, NULL, 10), "another line at an odd level");
    }
    p = lookup(&h->config, "prefix");
    if (p) {
        if (strlen(p) >= sizeof prefix) {
            say(VIF_PLUG_LOG_ERROR, "configuration prefix is longer than 15 bytes");
            host = NULL;
            return EINVAL;
        }
        strcpy(prefix, p);
    }
    p = lookup(&h->config, "run-reports-change");
    run_reports_change = p && !strcmp(p, "true");
    p = lookup(&h->config, "ready-after-runs");
    ready_after_runs = p ? strtol(p, NULL, 10) : 0;
    p = lookup(&h->config, "errors-per-run");
    errors_per_run = p ? strtol(p, NULL, 10) : 0;
    /* A child process left behind, its pid written to the file named. */
    p = lookup(&h->config, "fork-sleeper");
    if (p) {
        pid_t child = fork();
        if (child == 0) {
            sleep(60);
            _exit(0);
        } else if (child > 0) {
            FILE *f = fopen(p, "w");
            if (f) {
                fprintf(f, "%ld\n", (long) child);
                fclose(f);
            }
        }
    }
    p = lookup(&h->config, "update-name");
    snprintf(update_name, sizeof update_name, "%s", p ? p : "");
    p = lookup(&h->config, "needs");
    snprintf(needs, sizeof needs, "%s", p ? p : "");
    runs = 0;
    snprintf(line, sizeof line, "c-test initialised with prefix \"%s\"", prefix);
    say(VIF_PLUG_LOG_INFO, line);
    note("init", h->provider_type);
#ifdef THREAD_NOT_JOINED
    {
        pthread_t t;
        stop_worker = 0;
        if (pthread_create(&t, NULL, polling_worker, NULL) == 0) {
            pthread_detach(t);
        }
    }
#endif
#ifdef BAD_INIT_FAIL
    say(VIF_PLUG_LOG_ERROR, "no such device here");
    return ENODEV;
#else
    return 0;
#endif
}



#ifdef LOG_AFTER_DESTROY

/* A thread the provider forgot: it keeps logging through the host context
 * after destroy returned, which the contract forbids. */
static void *
late_logger(void *arg)
{
    const struct vif_plug_host *h = (const struct vif_plug_host *) arg;
    struct timespec ms = { 0, 1000000 };
    for (;;) {
        nanosleep(&ms, NULL);
        h->log(h, VIF_PLUG_LOG_INFO, "still here");
    }
    return NULL;
}
#endif

static int
c_test_destroy(void)
{
    note("destroy", "c-test");
#ifdef THREAD_NOT_JOINED
    stop_worker = 1;
#endif
#ifdef LOG_AFTER_DESTROY
    {
        pthread_t t;
        if (pthread_create(&t, NULL, late_logger, (void *) host) == 0) {
            pthread_detach(t);
        }
    }
#endif
    host = NULL;
#ifdef BAD_DESTROY_FAIL
    return EIO;
#else
    return 0;
#endif
}

static bool
c_test_run(const struct vif_plug_class *cls)
{
    long i;

    (void) cls;
    runs++;
    for (i = 0; i < errors_per_run; i++) {
        char line[64];
        snprintf(line, sizeof line, "error %ld of run %ld", i + 1, runs);
        say(VIF_PLUG_LOG_ERROR, line);
    }
    if (ready_after_runs && runs == ready_after_runs) {
        say(VIF_PLUG_LOG_INFO, "ready now");
        return true;
    }
    return run_reports_change;
}

#ifdef BAD_MAINTAINED_KEY
static const char *const maintained[] = {
    "c-test-lport", "c-test-datapath", "forged\nPASS", "tab\there",
    /* U+202E RIGHT-TO-LEFT OVERRIDE, then "SSAP": shown raw, reads PASS. */
    "\xe2\x80\xaeSSAP", NULL
};
#else
static const char *const maintained[] = { "c-test-lport", "c-test-datapath", NULL };
#endif

static const char *const *
c_test_maintained(void)
{
    return maintained;
}

/* Everything one CREATE answer owns, in one allocation. */
struct answer {
    char name[IFNAME_MAX + 1];
    char lport[256];
    char datapath[64];
    struct vif_plug_kv options[2];
};

static bool
c_test_prepare(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    const char *ready = lookup(&in->lport_options, "vif-plug:c-test:ready");
    struct answer *a;

    note(in->op_type == VIF_PLUG_OP_CREATE ? "prepare" : "prepare-remove", in->lport_name);
#if VIF_PLUG_ABI_MINOR >= 1
    /* ABI 1.1: the logical port's MACs (built against the 1.0 header, the
     * provider knows nothing of them, and the host passes none). */
    if (in->n_lport_macs > 0 && in->lport_macs) {
        note("mac", in->lport_macs[0]);
    }
#endif
    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        return out == NULL;
    }
    if ((ready && !strcmp(ready, "false")) || runs < ready_after_runs) {
        say(VIF_PLUG_LOG_DEBUG, "not ready; declining");
        return false;
    }
    if ((!strcmp(needs, "dpdk") && !in->dpdk_initialized)
        || (!strcmp(needs, "iface") && !in->iface_name)
#if VIF_PLUG_ABI_MINOR >= 1
        || (!strcmp(needs, "mac") && in->n_lport_macs == 0)
#endif
        ) {
        char line[64];
        snprintf(line, sizeof line, "%s: no %s; declining", in->lport_name, needs);
        say(VIF_PLUG_LOG_WARN, line);
        return false;
    }
#ifdef LEAK_PER_CREATE
    {
        /* volatile: the compiler may not drop the allocation. */
        char *volatile lost = (char *) malloc(64);
        if (lost) {
            snprintf(lost, 64, "leaked by %s", in->lport_name);
        }
        lost = NULL;
    }
#endif
    a = (struct answer *) calloc(1, sizeof *a);
    if (!a) {
        return false;
    }
#ifdef BAD_LONG_NAME
    snprintf(a->name, sizeof a->name, "%s", "x");
    out->name = "a-name-far-longer-than-fifteen-bytes";
#else
    if (in->iface_name && update_name[0]) {
        snprintf(a->name, sizeof a->name, "%s", update_name);
    } else if (lookup(&in->lport_options, "vif-plug:c-test:name")) {
        snprintf(a->name, sizeof a->name, "%s", lookup(&in->lport_options, "vif-plug:c-test:name"));
    } else {
        snprintf(a->name, sizeof a->name, "%s%s", prefix, in->lport_name);
    }
    out->name = a->name;
#endif
#ifdef BAD_NULL_NAME
    out->name = NULL;
#endif
    snprintf(a->lport, sizeof a->lport, "%s", in->lport_name);
    snprintf(a->datapath, sizeof a->datapath, "%s", in->bridge_datapath_type);
#ifdef BAD_OPTION_KEY
    a->options[0].key = "";
#else
    a->options[0].key = "c-test-lport";
#endif
    a->options[0].value = a->lport;
    a->options[1].key = "c-test-datapath";
    a->options[1].value = a->datapath;
    out->type = NULL;
    out->iface_options.entries = a->options;
    out->iface_options.n_entries = 2;
    out->provider_data = a;
    return true;
}

static void
c_test_finish(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    note(in->op_type == VIF_PLUG_OP_CREATE && out ? "finish" : "finish-remove", in->lport_name);
}

static void
c_test_ctx_destroy(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    note("ctx-destroy", in->lport_name);
    free(out->provider_data);
    out->provider_data = NULL;
}

#if VIF_PLUG_ABI_MINOR >= 1
/* ABI 1.1: the provider's inventory, two lines. */
static void
c_test_describe(const struct vif_plug_class *cls, const struct vif_plug_describe_out *out)
{
    char line[64];
    (void) cls;
    snprintf(line, sizeof line, "prefix \"%s\"", prefix);
    out->line(out, line);
    snprintf(line, sizeof line, "run called %ld time(s)", runs);
    out->line(out, line);
}
#endif

static const struct vif_plug_class c_test_class = {
#if defined(BAD_NULL_TYPE)
    NULL,
#elif defined(BAD_EMPTY_TYPE)
    "",
#elif defined(BAD_TYPE_BYTES)
    "c-test\xff",
#elif defined(BAD_TYPE_BIDI)
    /* U+202E RIGHT-TO-LEFT OVERRIDE, then a tab. */
    "c-test\xe2\x80\xae\t",
#else
    "c-test",
#endif
    c_test_init,
    c_test_destroy,
    c_test_run,
    c_test_maintained,
    c_test_prepare,
#ifdef BAD_NO_FINISH
    NULL,
#else
    c_test_finish,
#endif
    c_test_ctx_destroy,
#if VIF_PLUG_ABI_MINOR >= 1
    c_test_describe,
#endif
};

/* The second class: no init, destroy, run or maintained options. */
static bool
alt_prepare(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    char *name;

    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        return true;
    }
    name = (char *) calloc(1, IFNAME_MAX + 1);
    if (!name) {
        return false;
    }
    strncpy(name, in->lport_name, IFNAME_MAX);
    out->name = name;
    out->type = "internal";
    out->provider_data = name;
    return true;
}

#ifndef BAD_NO_FINISH
static void
alt_finish(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    (void) in;
    (void) out;
}
#endif

static void
alt_ctx_destroy(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    (void) in;
    free(out->provider_data);
}

/* The describe member of ABI 1.1, absent from the 1.0 header. */
#if VIF_PLUG_ABI_MINOR >= 1
#define DESCRIBE_NULL NULL,
#else
#define DESCRIBE_NULL
#endif

static const struct vif_plug_class c_test_alt_class = {
#if defined(BAD_DUP_TYPE)
    "c-test", NULL, NULL, NULL, NULL, alt_prepare, alt_finish, alt_ctx_destroy, DESCRIBE_NULL
#elif defined(BAD_NO_FINISH)
    /* (keeps c_test_finish referenced while c-test lacks it) */
    "c-test-alt", NULL, NULL, NULL, NULL, alt_prepare, c_test_finish, alt_ctx_destroy, DESCRIBE_NULL
#else
    "c-test-alt", NULL, NULL, NULL, NULL, alt_prepare, alt_finish, alt_ctx_destroy, DESCRIBE_NULL
#endif
};

#ifdef BAD_NO_CLASSES
/* The mistake this simulates: the array exported under another name. */
const struct vif_plug_class *vif_plug_classes[] = {
#else
const struct vif_plug_class *vif_plug_provider_classes[] = {
#endif
    &c_test_class,
    &c_test_alt_class,
    NULL,
};

#if defined(BAD_MAJOR)
const struct vif_plug_abi_info vif_plug_provider_abi = {
    VIF_PLUG_ABI_MAJOR + 1, 0,
    sizeof(struct vif_plug_class), sizeof(struct vif_plug_port_ctx_in),
    sizeof(struct vif_plug_port_ctx_out), sizeof(struct vif_plug_host),
    sizeof(struct vif_plug_kv),
};
#elif defined(BAD_NEWER_MINOR)
/* A library of the next minor version, as a 1.1 library is to a 1.0 host. */
const struct vif_plug_abi_info vif_plug_provider_abi = {
    VIF_PLUG_ABI_MAJOR, VIF_PLUG_ABI_MINOR + 1,
    sizeof(struct vif_plug_class), sizeof(struct vif_plug_port_ctx_in),
    sizeof(struct vif_plug_port_ctx_out), sizeof(struct vif_plug_host),
    sizeof(struct vif_plug_kv),
};
#elif defined(BAD_SIZE)
const struct vif_plug_abi_info vif_plug_provider_abi = {
    VIF_PLUG_ABI_MAJOR, VIF_PLUG_ABI_MINOR,
    sizeof(struct vif_plug_class) + 8, sizeof(struct vif_plug_port_ctx_in),
    sizeof(struct vif_plug_port_ctx_out), sizeof(struct vif_plug_host),
    sizeof(struct vif_plug_kv),
};
#elif !defined(BAD_NO_ABI)
VIF_PLUG_DEFINE_ABI_INFO;
#endif
