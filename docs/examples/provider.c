/*
 * example-c: a complete VIF plug provider in C.
 *
 * It plugs an existing system interface whose name the CMS gives in the
 * logical port option "vif-plug:example-c:ifname", and marks it with the
 * interface option "example-c-managed=true", which it maintains.
 *
 * Build:  cc -std=c99 -Wall -Wextra -shared -fPIC -I include \
 *            -o libexample_c.so docs/examples/provider.c
 */
#include "vif-plug-provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Valid from init until destroy returns. */
static const struct vif_plug_host *host;

static void
log_msg(uint32_t level, const char *lport, const char *what)
{
    char line[256];

    if (!host || level > host->log_max_level) {
        return; /* the host would drop it: skip the formatting */
    }
    snprintf(line, sizeof line, "%s: %s", lport, what);
    host->log(host, level, line);
}

static const char *
lport_option(const struct vif_plug_port_ctx_in *in, const char *key)
{
    size_t i;

    for (i = 0; i < in->lport_options.n_entries; i++) {
        if (!strcmp(in->lport_options.entries[i].key, key)) {
            return in->lport_options.entries[i].value;
        }
    }
    return NULL;
}

static int
example_init(const struct vif_plug_host *h)
{
    host = h;
    return 0;
}

static int
example_destroy(void)
{
    host = NULL;
    return 0;
}

static const char *const maintained[] = { "example-c-managed", NULL };

static const char *const *
example_maintained(void)
{
    return maintained;
}

/* What one answer owns: freed as a whole in ctx_destroy. */
struct answer {
    char name[16];
    struct vif_plug_kv option;
};

static bool
example_prepare(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    const char *ifname;
    struct answer *a;

    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        log_msg(VIF_PLUG_LOG_INFO, in->lport_name, "unplugging");
        return true; /* nothing of ours to tear down */
    }

    ifname = lport_option(in, "vif-plug:example-c:ifname");
    if (!ifname || !*ifname || strlen(ifname) > 15) {
        log_msg(VIF_PLUG_LOG_WARN, in->lport_name,
                "vif-plug:example-c:ifname is missing or longer than 15 bytes");
        return false; /* not now; the host retries when the options change */
    }

    a = calloc(1, sizeof *a);
    if (!a) {
        return false;
    }
    strcpy(a->name, ifname);
    a->option.key = "example-c-managed";
    a->option.value = "true";

    out->name = a->name;
    out->type = NULL; /* a system interface */
    out->iface_options.entries = &a->option;
    out->iface_options.n_entries = 1;
    out->provider_data = a;
    return true;
}

static void
example_finish(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    log_msg(VIF_PLUG_LOG_INFO, in->lport_name, out ? "plugged" : "unplugged");
}

static void
example_ctx_destroy(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    (void) in;
    free(out->provider_data);
}

static const struct vif_plug_class example_class = {
    "example-c",           /* type */
    example_init,          /* init */
    example_destroy,       /* destroy */
    NULL,                  /* run: no lookup tables to refresh */
    example_maintained,    /* get_maintained_iface_options */
    example_prepare,       /* port_prepare */
    example_finish,        /* port_finish */
    example_ctx_destroy,   /* port_ctx_destroy */
    NULL,                  /* describe (ABI 1.1): nothing to list */
};

VIF_PLUG_DEFINE_ABI_INFO;

const struct vif_plug_class *vif_plug_provider_classes[] = {
    &example_class,
    NULL,
};
