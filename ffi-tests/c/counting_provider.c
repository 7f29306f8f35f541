/*
 * The counting provider of the fault and load suite: type "counting".
 *
 * It plugs every logical port as an interface named after it (its first 15
 * bytes, as the dummy does), and journals every callback, one line per call
 * written with a single write(2) to a file opened O_APPEND, so that a host
 * killed with SIGKILL loses no line and several processes (an agent and the
 * agent restarted after it) share one journal:
 *
 *     <pid> <event> <logical port> <context id>
 *
 * Events: init, destroy, create (port_prepare of a CREATE that answered
 * true), decline, remove (port_prepare of a REMOVE, answered true), finish,
 * finish-remove, ctx-destroy. Context ids count per process from 1.
 *
 * It also checks, as the calls come, the contract of docs/abi.md ("Call
 * order"), and journals each breach as a line "<pid> VIOLATION <what>":
 *
 * - port_finish at most once per CREATE context, never after its
 *   port_ctx_destroy, and with a NULL ctx_out exactly for REMOVE;
 * - port_ctx_destroy exactly once per CREATE context that prepare answered
 *   true, never for a REMOVE;
 * - no callback before init or after destroy;
 * - at destroy, every context destroyed.
 *
 * Whether each finish was for a committed operation is checked by the
 * suite against the database (testkit's contract module).
 *
 * Configuration: journal=PATH (required).
 */
#define _POSIX_C_SOURCE 200809L
#include "vif-plug-provider.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IFNAME_MAX 15
#define MAGIC 0x636f756e74696e67ull /* "counting" */

static const struct vif_plug_host *host;
static int journal_fd = -1;
static int live; /* between init and destroy */
static unsigned long next_ctx = 1;
static long outstanding; /* contexts prepared and not yet destroyed */

/* One CREATE context. Never freed, so that a second destroy of it is seen
 * rather than being a use after free; the suite's runs are short. */
struct context {
    uint64_t magic;
    unsigned long id;
    int finished;
    int destroyed;
    char name[IFNAME_MAX + 1];
};

static void
journal(const char *event, const char *lport, unsigned long ctx)
{
    char line[512];
    int n;

    if (journal_fd < 0) {
        return;
    }
    n = snprintf(line, sizeof line, "%ld %s %s %lu\n", (long) getpid(), event,
                 lport && *lport ? lport : "-", ctx);
    if (n > 0) {
        if ((size_t) n >= sizeof line) {
            n = sizeof line - 1;
            line[n - 1] = '\n';
        }
        (void) !write(journal_fd, line, (size_t) n);
    }
}

static void
violation(const char *what, const char *lport)
{
    char line[512];
    int n;

    if (host && host->log_max_level >= VIF_PLUG_LOG_ERROR) {
        snprintf(line, sizeof line, "contract violation: %s (logical port %s)", what,
                 lport ? lport : "-");
        host->log(host, VIF_PLUG_LOG_ERROR, line);
    }
    if (journal_fd < 0) {
        return;
    }
    n = snprintf(line, sizeof line, "%ld VIOLATION %s %s\n", (long) getpid(), what,
                 lport && *lport ? lport : "-");
    if (n > 0 && (size_t) n < sizeof line) {
        (void) !write(journal_fd, line, (size_t) n);
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

static struct context *
context_of(const struct vif_plug_port_ctx_out *out)
{
    struct context *c = out ? out->provider_data : NULL;
    return c && c->magic == MAGIC ? c : NULL;
}

static int
counting_init(const struct vif_plug_host *h)
{
    const char *path = lookup(&h->config, "journal");

    if (!path) {
        if (h->log_max_level >= VIF_PLUG_LOG_ERROR) {
            h->log(h, VIF_PLUG_LOG_ERROR, "set --provider-config counting:journal=PATH");
        }
        return EINVAL;
    }
    journal_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (journal_fd < 0) {
        return errno;
    }
    if (live) {
        violation("init while initialised", NULL);
    }
    host = h;
    live = 1;
    next_ctx = 1;
    outstanding = 0;
    journal("init", NULL, 0);
    return 0;
}

static int
counting_destroy(void)
{
    char what[96];

    if (!live) {
        violation("destroy without init", NULL);
    }
    if (outstanding) {
        snprintf(what, sizeof what, "%ld context(s) never destroyed", outstanding);
        violation(what, NULL);
    }
    journal("destroy", NULL, 0);
    live = 0;
    host = NULL;
    return 0;
}

static bool
counting_run(const struct vif_plug_class *cls)
{
    (void) cls;
    if (!live) {
        violation("run outside init..destroy", NULL);
    }
    return false;
}

static const char *const maintained[] = { NULL };

static const char *const *
counting_maintained(void)
{
    return maintained;
}

static bool
counting_prepare(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    struct context *c;

    if (!live) {
        violation("port_prepare outside init..destroy", in->lport_name);
    }
    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        if (out) {
            violation("port_prepare of a REMOVE with a ctx_out", in->lport_name);
        }
        journal("remove", in->lport_name, 0);
        return true;
    }
    if (!out) {
        violation("port_prepare of a CREATE without a ctx_out", in->lport_name);
        return false;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        journal("decline", in->lport_name, 0);
        return false;
    }
    c->magic = MAGIC;
    c->id = next_ctx++;
    snprintf(c->name, sizeof c->name, "%s", in->lport_name);
    out->name = c->name;
    out->type = "internal";
    out->provider_data = c;
    outstanding++;
    journal("create", in->lport_name, c->id);
    return true;
}

static void
counting_finish(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    struct context *c;

    if (!live) {
        violation("port_finish outside init..destroy", in->lport_name);
    }
    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        if (out) {
            violation("port_finish of a REMOVE with a ctx_out", in->lport_name);
        }
        journal("finish-remove", in->lport_name, 0);
        return;
    }
    c = context_of(out);
    if (!c) {
        violation("port_finish of a CREATE without its context", in->lport_name);
        return;
    }
    if (c->destroyed) {
        violation("port_finish after port_ctx_destroy", in->lport_name);
    } else if (c->finished) {
        violation("port_finish twice", in->lport_name);
    }
    c->finished = 1;
    journal("finish", in->lport_name, c->id);
}

static void
counting_ctx_destroy(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    struct context *c;

    if (!live) {
        violation("port_ctx_destroy outside init..destroy", in->lport_name);
    }
    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        violation("port_ctx_destroy of a REMOVE", in->lport_name);
        return;
    }
    c = context_of(out);
    if (!c) {
        violation("port_ctx_destroy without a context", in->lport_name);
        return;
    }
    if (c->destroyed) {
        violation("port_ctx_destroy twice", in->lport_name);
        return;
    }
    c->destroyed = 1;
    outstanding--;
    journal("ctx-destroy", in->lport_name, c->id);
}

static const struct vif_plug_class counting_class = {
    "counting",
    counting_init,
    counting_destroy,
    counting_run,
    counting_maintained,
    counting_prepare,
    counting_finish,
    counting_ctx_destroy,
    NULL, /* describe (ABI 1.1) */
};

const struct vif_plug_class *vif_plug_provider_classes[] = {
    &counting_class,
    NULL,
};

VIF_PLUG_DEFINE_ABI_INFO;
