/*
 * A minimal host written in C against include/vif-plug-provider.h, the way
 * an OVN-style program would drive a provider library:
 *
 *   c_host PROVIDER.so [ITERATIONS]
 *
 * It dlopens the library, checks its ABI record, initialises every class
 * with a host context whose log function counts messages, then runs
 * ITERATIONS port life cycles per class:
 *
 *   CREATE prepare -> finish -> ctx_destroy, then REMOVE prepare -> finish,
 *
 * checking each answer (and, for the "dummy" type, that it is exactly the
 * reference dummy's), and finally destroys the classes and dlcloses the
 * library. Exits 0 only if everything checked out.
 */
#include "vif-plug-provider.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long log_messages;
static int verbose;

static void
host_log(const struct vif_plug_host *host, uint32_t level, const char *message)
{
    log_messages++;
    if (verbose) {
        fprintf(stderr, "[%s] level %u: %s\n", host->provider_type, (unsigned) level, message);
    }
}

static int failures;

static void
expect(int ok, const char *what, const char *lport)
{
    if (!ok) {
        fprintf(stderr, "c_host: FAIL %s (lport %s)\n", what, lport);
        failures++;
    }
}

static const char *
lookup(const struct vif_plug_map *map, const char *key)
{
    size_t i;
    for (i = 0; i < map->n_entries; i++) {
        if (map->entries[i].key && !strcmp(map->entries[i].key, key)) {
            return map->entries[i].value;
        }
    }
    return NULL;
}

static void
life_cycle(const struct vif_plug_class *cls, const char *lport)
{
    struct vif_plug_kv lport_opts[2];
    struct vif_plug_port_ctx_in in;
    struct vif_plug_port_ctx_out out;
    const char *opt;

    lport_opts[0].key = "vif-plug-type";
    lport_opts[0].value = cls->type;
    lport_opts[1].key = "requested-chassis";
    lport_opts[1].value = "c-host";

    memset(&in, 0, sizeof in);
    in.op_type = VIF_PLUG_OP_CREATE;
    in.lport_name = lport;
    in.lport_options.entries = lport_opts;
    in.lport_options.n_entries = 2;
    in.bridge_name = "br-int";
    in.bridge_datapath_type = "netdev";
    in.dpdk_initialized = false;

    memset(&out, 0, sizeof out);
    if (!cls->port_prepare(&in, &out)) {
        expect(0, "CREATE prepare returned false", lport);
        return;
    }
    expect(out.name != NULL && strlen(out.name) > 0 && strlen(out.name) <= 15,
           "interface name is 1 to 15 bytes", lport);
    if (!strcmp(cls->type, "dummy") && out.name) {
        expect(!strncmp(out.name, lport, 15) && strlen(out.name) == (strlen(lport) < 15 ? strlen(lport) : 15),
               "dummy names the interface after the lport, cut to 15 bytes", lport);
        expect(out.type && !strcmp(out.type, "internal"), "dummy type is internal", lport);
        opt = lookup(&out.iface_options, "vif-plug-dummy-option");
        expect(opt && !strcmp(opt, "value"), "dummy sets vif-plug-dummy-option=value", lport);
    }
    cls->port_finish(&in, &out);
    cls->port_ctx_destroy(&in, &out);

    /* The interface now exists: REMOVE passes it, with a NULL ctx_out. */
    in.op_type = VIF_PLUG_OP_REMOVE;
    in.iface_name = lport;
    in.iface_type = "internal";
    expect(cls->port_prepare(&in, NULL), "REMOVE prepare accepted", lport);
    cls->port_finish(&in, NULL);
}

int
main(int argc, char **argv)
{
    const struct vif_plug_abi_info expected = VIF_PLUG_ABI_INFO_INIT;
    const struct vif_plug_abi_info *abi;
    const struct vif_plug_class *const *classes;
    struct vif_plug_host hosts[16];
    long iterations = 1;
    size_t n, i;
    long it;
    void *lib;

    if (argc < 2) {
        fprintf(stderr, "usage: %s PROVIDER.so [ITERATIONS]\n", argv[0]);
        return 2;
    }
    if (argc > 2) {
        iterations = strtol(argv[2], NULL, 10);
    }
    verbose = getenv("C_HOST_VERBOSE") != NULL;

    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "c_host: %s\n", dlerror());
        return 1;
    }
    abi = (const struct vif_plug_abi_info *) dlsym(lib, "vif_plug_provider_abi");
    if (!abi || abi->major != expected.major || abi->class_size != expected.class_size
        || abi->port_ctx_in_size != expected.port_ctx_in_size
        || abi->port_ctx_out_size != expected.port_ctx_out_size
        || abi->host_size != expected.host_size || abi->kv_size != expected.kv_size) {
        fprintf(stderr, "c_host: %s: missing or incompatible vif_plug_provider_abi\n", argv[1]);
        dlclose(lib);
        return 1;
    }
    classes = (const struct vif_plug_class *const *) dlsym(lib, "vif_plug_provider_classes");
    if (!classes) {
        fprintf(stderr, "c_host: %s: no vif_plug_provider_classes\n", argv[1]);
        dlclose(lib);
        return 1;
    }

    for (n = 0; classes[n] && n < 16; n++) {
        const struct vif_plug_class *cls = classes[n];
        const char *const *maintained;

        memset(&hosts[n], 0, sizeof hosts[n]);
        hosts[n].abi_major = VIF_PLUG_ABI_MAJOR;
        hosts[n].abi_minor = VIF_PLUG_ABI_MINOR;
        hosts[n].provider_type = cls->type;
        hosts[n].log_max_level = VIF_PLUG_LOG_TRACE;
        hosts[n].log = host_log;
        if (cls->init && cls->init(&hosts[n]) != 0) {
            fprintf(stderr, "c_host: init of %s failed\n", cls->type);
            return 1;
        }
        if (cls->get_maintained_iface_options) {
            maintained = cls->get_maintained_iface_options();
            if (!strcmp(cls->type, "dummy")) {
                expect(maintained && maintained[0]
                       && !strcmp(maintained[0], "vif-plug-dummy-option") && !maintained[1],
                       "dummy maintains exactly vif-plug-dummy-option", "-");
            }
        }
    }

    for (it = 0; it < iterations; it++) {
        char lport[64];
        snprintf(lport, sizeof lport, it % 2 ? "lsp-%ld" : "a-long-logical-port-name-%ld", it);
        for (i = 0; i < n; i++) {
            life_cycle(classes[i], lport);
            if (classes[i]->run) {
                classes[i]->run(classes[i]);
            }
        }
    }

    for (i = 0; i < n; i++) {
        if (classes[i]->destroy && classes[i]->destroy() != 0) {
            expect(0, "destroy returned 0", classes[i]->type);
        }
    }
    dlclose(lib);

    printf("c_host: %zu class(es), %ld life cycle(s) each, %lu log message(s), %d failure(s)\n",
           n, iterations, log_messages, failures);
    return failures ? 1 : 0;
}
