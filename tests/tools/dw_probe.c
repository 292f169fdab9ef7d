/*
 * dw_probe.c - a test tool driving the DICOMweb client (src/gateway/dicomweb.h, issue 13)
 * for tests/integration/test_dicomweb_hostile.py and the Orthanc test there; the real
 * command is `sr2fhir pull`. Usage:
 *   dw_probe search URL [OPTION...]                 one line per SR instance found:
 *                                                   "INSTANCE study series sop class",
 *                                                   then "FOUND n"
 *   dw_probe retrieve URL DIR STUDY SERIES SOP [OPTION...]
 *                                                   into DIR/incoming: "RETRIEVED path size"
 *   dw_probe pull URL DIR [OPTION...]               search, then retrieve each
 * OPTION: --study UID --since D --until D --page N --max-results N --max-qido BYTES
 *   --max-instance BYTES --timeout S --connect-timeout S --retries N --retry-delay MS
 *   --deadline S --token T --user U --password P --stop-after N (search: stop after N)
 * --retries follows s2f_client_options: 0 means the default 4, -1 none.
 * A failure prints one line "ERROR <code> <name>: message" on stderr and exits with the
 * s2f_code (2 for usage). At exit "VMHWM <kB>" (the peak resident set) goes to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/dicomweb.h"
#include "gateway/store.h"

typedef struct probe {
    s2f_dw_options opt;
    s2f_dw_query q;
    long stop_after;
    long found;
    s2f_dw *dw;
    s2f_store *st;
    s2f_code rc;
    s2f_error err;
} probe;

static void print_hwm(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            fprintf(stderr, "VMHWM %ld\n", strtol(line + 6, NULL, 10));
    if (f)
        fclose(f);
}

static int finish(s2f_code rc, const s2f_error *err)
{
    if (rc)
        fprintf(stderr, "ERROR %d %s: %s\n", (int)rc, s2f_code_name(rc), err->message);
    print_hwm();
    return (int)rc;
}

static int option(probe *p, const char *name, const char *v)
{
    s2f_dw_options *o = &p->opt;
    if (!strcmp(name, "--study")) p->q.study = v;
    else if (!strcmp(name, "--since")) p->q.since = v;
    else if (!strcmp(name, "--until")) p->q.until = v;
    else if (!strcmp(name, "--page")) o->page_size = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(name, "--max-results")) o->max_results = strtoull(v, NULL, 10);
    else if (!strcmp(name, "--max-qido")) o->max_qido = strtoull(v, NULL, 10);
    else if (!strcmp(name, "--max-instance")) o->max_instance = strtoull(v, NULL, 10);
    else if (!strcmp(name, "--timeout")) o->client.timeout = strtol(v, NULL, 10);
    else if (!strcmp(name, "--connect-timeout")) o->client.connect_timeout = strtol(v, NULL, 10);
    else if (!strcmp(name, "--retries")) o->client.retries = (int)strtol(v, NULL, 10);
    else if (!strcmp(name, "--retry-delay")) o->client.retry_delay_ms = strtol(v, NULL, 10);
    else if (!strcmp(name, "--deadline")) o->client.deadline = strtol(v, NULL, 10);
    else if (!strcmp(name, "--token")) o->client.bearer_token = v;
    else if (!strcmp(name, "--user")) o->client.user = v;
    else if (!strcmp(name, "--password")) o->client.password = v;
    else if (!strcmp(name, "--stop-after")) p->stop_after = strtol(v, NULL, 10);
    else return 0;
    return 1;
}

static int print_instance(void *ctx, const s2f_dw_instance *inst)
{
    probe *p = ctx;
    printf("INSTANCE %s %s %s %s\n", inst->study, inst->series, inst->sop_instance,
           inst->sop_class[0] ? inst->sop_class : "-");
    p->found++;
    return p->stop_after > 0 && p->found >= p->stop_after;
}

static s2f_code retrieve_one(probe *p, const s2f_dw_instance *inst)
{
    s2f_store_file f;
    char path[4096];
    s2f_code rc = s2f_dw_retrieve(p->dw, inst, p->st, &f, &p->err);
    if (!rc)
        rc = s2f_store_commit(p->st, &f, &p->err);
    if (!rc)
        rc = s2f_store_sync(p->st, &p->err);
    if (!rc)
        rc = s2f_store_path(p->st, &f, path, sizeof path, &p->err);
    if (rc) {
        s2f_store_abort(p->st, &f);
        return rc;
    }
    printf("RETRIEVED %s %s %llu\n", inst->sop_instance, path, (unsigned long long)f.size);
    return S2F_OK;
}

static int pull_instance(void *ctx, const s2f_dw_instance *inst)
{
    probe *p = ctx;
    p->found++;
    p->rc = retrieve_one(p, inst);
    return p->rc != S2F_OK;
}

int main(int argc, char **argv)
{
    probe p;
    memset(&p, 0, sizeof p);
    if (argc < 3)
        return fprintf(stderr, "usage: dw_probe search|retrieve|pull URL ...\n"), 2;
    const char *cmd = argv[1], *url = argv[2];
    int npos = !strcmp(cmd, "retrieve") ? 4 : !strcmp(cmd, "pull") ? 1 : 0;
    if (strcmp(cmd, "search") && !npos)
        return fprintf(stderr, "dw_probe: unknown command %s\n", cmd), 2;
    if (argc < 3 + npos)
        return fprintf(stderr, "dw_probe: %s needs %d more arguments\n", cmd, npos), 2;
    for (int i = 3 + npos; i < argc; i += 2)
        if (i + 1 >= argc || !option(&p, argv[i], argv[i + 1]))
            return fprintf(stderr, "dw_probe: bad option %s\n", argv[i]), 2;
    s2f_code rc = s2f_dw_new(url, &p.opt, &p.dw, &p.err);
    if (!rc && npos)
        rc = s2f_store_open(argv[3], &p.st, &p.err);
    if (!rc && !strcmp(cmd, "search")) {
        rc = s2f_dw_search(p.dw, &p.q, print_instance, &p, &p.err);
        if (!rc)
            printf("FOUND %ld\n", p.found);
    } else if (!rc && !strcmp(cmd, "retrieve")) {
        s2f_dw_instance inst;
        memset(&inst, 0, sizeof inst);
        snprintf(inst.study, sizeof inst.study, "%s", argv[4]);
        snprintf(inst.series, sizeof inst.series, "%s", argv[5]);
        snprintf(inst.sop_instance, sizeof inst.sop_instance, "%s", argv[6]);
        rc = retrieve_one(&p, &inst);
    } else if (!rc) {
        rc = s2f_dw_search(p.dw, &p.q, pull_instance, &p, &p.err);
        if (!rc)
            rc = p.rc;
        if (!rc)
            printf("FOUND %ld\n", p.found);
    }
    fflush(stdout);
    s2f_dw_free(p.dw);
    s2f_store_close(p.st);
    return finish(rc, &p.err);
}
