/*
 * scp.c - the gateway's DICOM receiver (issue 12; scp.h): a listening socket, one accepting
 * thread, one thread per association (dimse.h runs the protocol; this file decides who may
 * associate, which presentation contexts are accepted and what happens to each C-STORE's
 * data set), bounded by max_associations: a connection over the limit gets A-ASSOCIATE-RJ
 * 2/3/2 (transient, local limit exceeded) on a short-lived thread of its own, of which
 * there are at most REJECTERS_MAX at once (further connections are closed at once).
 *
 * Each C-STORE's data set is streamed into a file of the data folder behind a Part 10 meta
 * header built from the command and the context (PS3.10 7.1), read back for its UIDs
 * (s2f_intake_classify) and committed through s2f_intake_commit; C-STORE-RSP 0000 goes out
 * only after that returned S2F_OK. docs/gateway.md "DICOM C-STORE" says what a sender sees,
 * docs/decisions.md "Issue 12: the DICOM receiver" why.
 */
#define _GNU_SOURCE 1 /* accept4, pipe2 */
#include "gateway/scp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway/dicomtls.h"
#include "json/writer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/sink.h"

#define DEFAULT_MAX_ASSOCIATIONS 16
#define REJECTERS_MAX 8               /* reject-now threads at once (over the limit: closed) */
#define REJECT_ARTIM_MS 5000          /* a rejected peer's deadlines (its own short path) */
#define LISTEN_BACKLOG 64
#define ACCEPT_POLL_MS 1000
#define ABORT_WAIT_MS 2000            /* after SHUT_RD, before SHUT_RDWR (a blocked write) */
#define REMOTE_MAX 64

/* Our implementation identification in the meta header (PS3.10 7.1): the one the
 * association announces (dimse.h, PS3.7 D.3.3.2). */
#define SCP_IMPL_CLASS_UID S2F_DIMSE_IMPL_CLASS_UID
#define SCP_IMPL_VERSION S2F_DIMSE_IMPL_VERSION

#define UID_VERIFICATION "1.2.840.10008.1.1"

/* The SR Storage SOP Classes (PS3.4 B.5, PS3.6 Annex A; the reader reads every SR IOD). */
static const char *const sr_classes[] = {
    "1.2.840.10008.5.1.4.1.1.88.11", /* Basic Text SR */
    "1.2.840.10008.5.1.4.1.1.88.22", /* Enhanced SR */
    "1.2.840.10008.5.1.4.1.1.88.33", /* Comprehensive SR */
    "1.2.840.10008.5.1.4.1.1.88.34", /* Comprehensive 3D SR */
    "1.2.840.10008.5.1.4.1.1.88.35", /* Extensible SR */
    "1.2.840.10008.5.1.4.1.1.88.40", /* Procedure Log */
    "1.2.840.10008.5.1.4.1.1.88.50", /* Mammography CAD SR */
    "1.2.840.10008.5.1.4.1.1.88.59", /* Key Object Selection Document */
    "1.2.840.10008.5.1.4.1.1.88.65", /* Chest CAD SR */
    "1.2.840.10008.5.1.4.1.1.88.67", /* X-Ray Radiation Dose SR */
    "1.2.840.10008.5.1.4.1.1.88.68", /* Radiopharmaceutical Radiation Dose SR */
    "1.2.840.10008.5.1.4.1.1.88.69", /* Colon CAD SR */
    "1.2.840.10008.5.1.4.1.1.88.70", /* Implantation Plan SR */
    "1.2.840.10008.5.1.4.1.1.88.71", /* Acquisition Context SR */
    "1.2.840.10008.5.1.4.1.1.88.72", /* Simplified Adult Echo SR */
    "1.2.840.10008.5.1.4.1.1.88.73", /* Patient Radiation Dose SR */
    "1.2.840.10008.5.1.4.1.1.88.74", /* Planned Imaging Agent Administration SR */
    "1.2.840.10008.5.1.4.1.1.88.75", /* Performed Imaging Agent Administration SR */
    "1.2.840.10008.5.1.4.1.1.88.76", /* Enhanced X-Ray Radiation Dose SR */
    "1.2.840.10008.5.1.4.1.1.88.77", /* Waveform Annotation SR */
};

/* The transfer syntaxes src/dicom/part10.c reads, in the order we prefer them when a
 * context proposes several: Explicit LE, Implicit LE, Deflated Explicit LE, Explicit BE. */
static const char *const transfer_syntaxes[] = {
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct conn conn;

struct s2f_scp {
    s2f_scp_options opt;               /* strings below are copies */
    char bind[256], aet[S2F_DIMSE_AET_MAX + 1];
    s2f_scp_peer *peers;
    int max_associations;
    int listen_fd, port;
    int wake[2];                       /* the acceptor's wake-up pipe (non-blocking) */
    s2f_dtls *tls;                     /* DICOM TLS, or NULL: plain TCP */
    pthread_t acceptor;
    int acceptor_started;
    pthread_mutex_t lock;
    pthread_cond_t changed;            /* a connection thread finished */
    conn *conns;                       /* every connection thread not yet joined */
    int active, rejecting, stopping;   /* under lock */
};

/* One accepted connection and its thread; the handler's context for a full association. */
struct conn {
    s2f_scp *scp;
    conn *next;
    pthread_t thread;
    int fd;                            /* -1 once closed (under scp->lock) */
    int reject;                        /* over the limit: A-ASSOCIATE-RJ 2/3/2 */
    int done;                          /* the thread ended (under scp->lock): join it */
    char remote[REMOTE_MAX];
    char calling[S2F_DIMSE_AET_MAX + 1], called[S2F_DIMSE_AET_MAX + 1];
    char tls_subject[256];             /* the TLS client certificate's subject, "" none */
    unsigned stored, refused;
};

/* One C-STORE's data set on its way into the data folder. */
typedef struct store_job {
    s2f_store_file file;
    s2f_dimse_store st;
    uint64_t bytes;                    /* data set bytes received */
} store_job;

/* ---- small helpers ---------------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static void metric_add(atomic_llong *m, long long n)
{
    atomic_fetch_add_explicit(m, n, memory_order_relaxed);
}

#define COUNT_METRIC(s, field)                                                                \
    do {                                                                                      \
        if ((s)->opt.metrics)                                                                 \
            metric_add(&(s)->opt.metrics->field, 1);                                          \
    } while (0)

static int is_sr_class(const char *uid)
{
    for (size_t i = 0; i < COUNT(sr_classes); i++)
        if (!strcmp(uid, sr_classes[i]))
            return 1;
    return 0;
}

static void wake_acceptor(s2f_scp *s)
{
    char b = 1;
    ssize_t r = write(s->wake[1], &b, 1); /* full pipe: it is awake anyway */
    (void)r;
}

static long long mono_ms(void)
{
    return s2f_mono_ns() / 1000000;
}

/* ---- audit lines ------------------------------------------------------------------------ */

/* A JSON audit line built with `fn` into a memory sink, handed to s2f_intake_audit. */
typedef void (*audit_fn)(s2f_json *j, const void *ctx);

static void audit_write(s2f_scp *s, audit_fn fn, const void *ctx)
{
    s2f_sink *sink = malloc(sizeof *sink);
    if (!sink) {
        s2f_gw_logf(s->opt.log, S2F_LOG_ERROR, "dimse: out of memory for an audit line");
        return;
    }
    s2f_sink_init(sink, NULL);
    s2f_json j;
    s2f_json_init(&j, sink, 0);
    fn(&j, ctx);
    s2f_json_finish(&j);
    s2f_sink_putc(sink, '\n');
    if (s2f_json_error(&j) || sink->failed)
        s2f_gw_logf(s->opt.log, S2F_LOG_ERROR, "dimse: cannot format an audit line");
    else
        s2f_intake_audit(s->opt.intake, sink->buf, sink->len);
    free(sink);
}

static void kv_nullable(s2f_json *j, const char *key, const char *v)
{
    if (v && *v) {
        s2f_json_kv_string(j, key, v);
    } else {
        s2f_json_key(j, key);
        s2f_json_null(j);
    }
}

typedef struct instance_rec {
    const conn *c;
    const char *sop_instance, *sop_class, *study, *outcome, *detail;
    int64_t job_id;                    /* < 0: none */
    uint16_t status;
} instance_rec;

static void instance_body(s2f_json *j, const void *ctx)
{
    const instance_rec *r = ctx;
    char now[40], status[8];
    s2f_utc_now(now, sizeof now);
    snprintf(status, sizeof status, "%04X", (unsigned)r->status);
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "time", now);
    s2f_json_kv_string(j, "event", "received");
    s2f_json_kv_string(j, "via", "dimse");
    s2f_json_kv_string(j, "calling_aet", r->c->calling);
    s2f_json_kv_string(j, "remote", r->c->remote);
    kv_nullable(j, "sop_instance_uid", r->sop_instance);
    kv_nullable(j, "sop_class_uid", r->sop_class);
    kv_nullable(j, "study_instance_uid", r->study);
    s2f_json_kv_string(j, "outcome", r->outcome);
    s2f_json_key(j, "job_id");
    if (r->job_id >= 0)
        s2f_json_int(j, r->job_id);
    else
        s2f_json_null(j);
    s2f_json_kv_string(j, "status", status);
    kv_nullable(j, "detail", r->detail);
    s2f_json_end_object(j);
}

static const char *outcome_name(s2f_dimse_outcome o)
{
    switch (o) {
    case S2F_DIMSE_RELEASED: return "released";
    case S2F_DIMSE_REJECTED: return "rejected";
    case S2F_DIMSE_ABORTED_BY_PEER: return "aborted_by_peer";
    case S2F_DIMSE_ABORTED: return "aborted";
    case S2F_DIMSE_TIMED_OUT: return "timed_out";
    case S2F_DIMSE_DROPPED: return "dropped";
    }
    return "dropped";
}

typedef struct assoc_rec {
    const conn *c;
    const s2f_dimse_summary *sum;
} assoc_rec;

static void association_body(s2f_json *j, const void *ctx)
{
    const assoc_rec *a = ctx;
    char now[40];
    s2f_utc_now(now, sizeof now);
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "time", now);
    s2f_json_kv_string(j, "event", "association");
    kv_nullable(j, "calling_aet", a->sum->calling_aet);
    kv_nullable(j, "called_aet", a->sum->called_aet);
    s2f_json_kv_string(j, "remote", a->c->remote);
    s2f_json_kv_string(j, "outcome", outcome_name(a->sum->outcome));
    s2f_json_kv_uint(j, "stores", a->sum->stores);
    s2f_json_kv_uint(j, "stored", a->c->stored);
    s2f_json_kv_uint(j, "echoes", a->sum->echoes);
    if (a->c->scp->tls) {
        s2f_json_kv_bool(j, "tls", 1);
        kv_nullable(j, "tls_subject", a->c->tls_subject);
    }
    kv_nullable(j, "detail", a->sum->detail);
    s2f_json_end_object(j);
}

/* ---- the handler: who may associate, which contexts ---------------------------------- */

static int peer_allowed(const s2f_scp *s, const char *calling, const char *remote)
{
    if (!s->opt.n_peers)
        return 1;
    for (size_t i = 0; i < s->opt.n_peers; i++)
        if (!strcmp(s->peers[i].aet, calling) &&
            (!s->peers[i].address[0] || !strcmp(s->peers[i].address, remote)))
            return 1;
    return 0;
}

static int on_associate(void *ctx, const s2f_dimse_request *rq, s2f_dimse_reject *rj)
{
    conn *c = ctx;
    const s2f_scp *s = c->scp;
    copy_str(c->calling, sizeof c->calling, rq->calling_aet);
    copy_str(c->called, sizeof c->called, rq->called_aet);
    if (strcmp(rq->called_aet, s->aet) != 0) {
        *rj = (s2f_dimse_reject){1, 1, 7}; /* called AE title not recognized */
        return 1;
    }
    if (!peer_allowed(s, rq->calling_aet, c->remote)) {
        *rj = (s2f_dimse_reject){1, 1, 3}; /* calling AE title not recognized */
        return 1;
    }
    return 0;
}

static int on_context(void *ctx, const s2f_dimse_context *pc, size_t *chosen)
{
    (void)ctx;
    if (strcmp(pc->abstract_syntax, UID_VERIFICATION) != 0 && !is_sr_class(pc->abstract_syntax))
        return S2F_DIMSE_CTX_ABSTRACT_NOT_SUPPORTED;
    for (size_t pref = 0; pref < COUNT(transfer_syntaxes); pref++)
        for (size_t i = 0; i < pc->n_ts && i < S2F_DIMSE_TS_MAX; i++)
            if (!strcmp(pc->ts[i], transfer_syntaxes[pref])) {
                *chosen = i;
                return S2F_DIMSE_CTX_ACCEPT;
            }
    return S2F_DIMSE_CTX_TS_NOT_SUPPORTED;
}

/* ---- the handler: C-STORE ------------------------------------------------------------- */

/* A refused instance: audit line, log line, counters; returns status. */
static uint16_t refuse(conn *c, const s2f_dimse_store *st, const char *study, uint16_t status,
                       const char *why)
{
    s2f_scp *s = c->scp;
    c->refused++;
    COUNT_METRIC(s, dimse_refused);
    s2f_gw_logf(s->opt.log, S2F_LOG_WARN, "dimse: C-STORE of %s from %s@%s refused (%04X): %s",
                st->sop_instance, c->calling, c->remote, (unsigned)status, why);
    instance_rec r = {c, st->sop_instance, st->sop_class, study, "refused", why, -1, status};
    audit_write(s, instance_body, &r);
    return status;
}

/* Appends one meta element (Explicit VR Little Endian, PS3.10 7.1) to buf at *n. */
static void meta_elem(uint8_t *buf, size_t *n, uint16_t elem, const char vr[2], const void *v,
                      size_t len, char pad)
{
    size_t even = len + (len & 1);
    uint8_t *p = buf + *n;
    p[0] = 0x02, p[1] = 0x00, p[2] = (uint8_t)elem, p[3] = (uint8_t)(elem >> 8);
    p[4] = (uint8_t)vr[0], p[5] = (uint8_t)vr[1];
    if (vr[0] == 'O' && vr[1] == 'B') {
        p[6] = p[7] = 0;
        for (int i = 0; i < 4; i++)
            p[8 + i] = (uint8_t)(even >> (8 * i));
        p += 12;
    } else {
        p[6] = (uint8_t)even, p[7] = (uint8_t)(even >> 8);
        p += 8;
    }
    memcpy(p, v, len);
    if (len & 1)
        p[len] = (uint8_t)pad;
    *n = (size_t)(p - buf) + even;
}

#define META_MAX (128 + 4 + 12 + 14 + 6 * (8 + S2F_DIMSE_UID_MAX + 2))

/* The preamble, "DICM" and group 0002 for one C-STORE (PS3.10 7.1): meta version 00\01,
 * the command's SOP Class and Instance UIDs, the context's transfer syntax, our
 * implementation, the calling AE title as Source Application Entity Title. */
static size_t build_meta(const conn *c, const s2f_dimse_store *st, uint8_t *buf)
{
    static const uint8_t version[2] = {0, 1};
    memset(buf, 0, 128);
    memcpy(buf + 128, "DICM", 4);
    size_t n = 132 + 12, start = n; /* (0002,0000) UL goes before the rest */
    meta_elem(buf, &n, 0x0001, "OB", version, 2, 0);
    meta_elem(buf, &n, 0x0002, "UI", st->sop_class, strlen(st->sop_class), 0);
    meta_elem(buf, &n, 0x0003, "UI", st->sop_instance, strlen(st->sop_instance), 0);
    meta_elem(buf, &n, 0x0010, "UI", st->transfer_syntax, strlen(st->transfer_syntax), 0);
    meta_elem(buf, &n, 0x0012, "UI", SCP_IMPL_CLASS_UID, strlen(SCP_IMPL_CLASS_UID), 0);
    meta_elem(buf, &n, 0x0013, "SH", SCP_IMPL_VERSION, strlen(SCP_IMPL_VERSION), ' ');
    if (c->calling[0])
        meta_elem(buf, &n, 0x0016, "AE", c->calling, strlen(c->calling), ' ');
    uint32_t group_len = (uint32_t)(n - start);
    uint8_t gl[4] = {(uint8_t)group_len, (uint8_t)(group_len >> 8), (uint8_t)(group_len >> 16),
                     (uint8_t)(group_len >> 24)};
    size_t at = 132;
    meta_elem(buf, &at, 0x0000, "UL", gl, 4, 0);
    return n;
}

static void *store_begin(void *ctx, const s2f_dimse_store *st, uint16_t *status)
{
    conn *c = ctx;
    s2f_scp *s = c->scp;
    char busy[256], why[S2F_ERROR_MAX + 64];
    if (!is_sr_class(st->sop_class)) {
        snprintf(why, sizeof why, "SOP Class %s is not a Structured Report", st->sop_class);
        return *status = refuse(c, st, NULL, S2F_DIMSE_SOP_CLASS_NOT_SUPPORTED, why), NULL;
    }
    if (!s2f_intake_uid_valid(st->sop_instance, strlen(st->sop_instance)))
        return *status = refuse(c, st, NULL, S2F_DIMSE_CANNOT_UNDERSTAND,
                                "the command's Affected SOP Instance UID is not a valid UID"),
               NULL;
    const char *b = s2f_intake_busy(s->opt.intake, busy, sizeof busy);
    if (b) {
        snprintf(why, sizeof why, "busy: %s", b);
        return *status = refuse(c, st, NULL, S2F_DIMSE_OUT_OF_RESOURCES, why), NULL;
    }
    store_job *job = calloc(1, sizeof *job);
    s2f_error err = {0};
    uint8_t meta[META_MAX];
    if (!job)
        return *status = refuse(c, st, NULL, S2F_DIMSE_OUT_OF_RESOURCES, "out of memory"), NULL;
    job->st = *st;
    size_t n = build_meta(c, st, meta);
    s2f_store *store = s2f_intake_store(s->opt.intake);
    if (s2f_store_begin(store, ".dcm", &job->file, &err) != S2F_OK ||
        s2f_store_write(&job->file, meta, n, &err) != S2F_OK) {
        s2f_store_abort(store, &job->file);
        free(job);
        return *status = refuse(c, st, NULL, S2F_DIMSE_OUT_OF_RESOURCES, err.message), NULL;
    }
    return job;
}

static int store_data(void *ctx, void *handle, const uint8_t *data, size_t len,
                      uint16_t *status)
{
    conn *c = ctx;
    store_job *job = handle;
    uint64_t max = c->scp->opt.limits.max_dataset ? c->scp->opt.limits.max_dataset
                                                  : (uint64_t)256 << 20;
    s2f_error err = {0};
    if (len > max - job->bytes || s2f_store_write(&job->file, data, len, &err) != S2F_OK) {
        *status = S2F_DIMSE_OUT_OF_RESOURCES;
        return 1;
    }
    job->bytes += len;
    return 0;
}

/* The status for the written file: its UIDs read back (s2f_intake_classify) and compared
 * with the command's. 0 when it may be committed; *h holds what was read. */
static uint16_t judge_file(store_job *job, s2f_intake_header *h, char *why, size_t cap)
{
    s2f_error err = {0};
    const uint8_t *data = NULL;
    if (s2f_store_map(&job->file, &data, &err) != S2F_OK) {
        snprintf(why, cap, "%s", err.message);
        return S2F_DIMSE_OUT_OF_RESOURCES;
    }
    unsigned fr = s2f_intake_classify(data, (size_t)job->file.size, 0, h, why, cap);
    s2f_store_unmap(&job->file, data);
    if (fr == S2F_FR_CANNOT_UNDERSTAND)
        return S2F_DIMSE_CANNOT_UNDERSTAND;
    if (fr == S2F_FR_SOP_CLASS_NOT_SUPPORTED)
        return S2F_DIMSE_SOP_CLASS_NOT_SUPPORTED;
    if (fr)
        return S2F_DIMSE_OUT_OF_RESOURCES;
    if (strcmp(h->sop_class, job->st.sop_class) || strcmp(h->sop_instance, job->st.sop_instance)) {
        snprintf(why, cap, "the data set's SOP %s UID %s is not the command's %s",
                 strcmp(h->sop_class, job->st.sop_class) ? "Class" : "Instance",
                 strcmp(h->sop_class, job->st.sop_class) ? h->sop_class : h->sop_instance,
                 strcmp(h->sop_class, job->st.sop_class) ? job->st.sop_class
                                                         : job->st.sop_instance);
        return S2F_DIMSE_DATASET_MISMATCH;
    }
    return 0;
}

/* Checks, seals and commits the file; the C-STORE-RSP status. */
static uint16_t finish_store(conn *c, store_job *job)
{
    s2f_scp *s = c->scp;
    s2f_store *store = s2f_intake_store(s->opt.intake);
    s2f_intake_header h;
    char why[S2F_ERROR_MAX + 64] = "";
    s2f_error err = {0};
    memset(&h, 0, sizeof h);
    uint16_t status = judge_file(job, &h, why, sizeof why); /* reads through the open fd */
    if (status) {
        s2f_store_abort(store, &job->file);
        return refuse(c, &job->st, h.study, status, why);
    }
    if (s2f_store_seal(&job->file, &err) != S2F_OK) {
        s2f_store_abort(store, &job->file);
        return refuse(c, &job->st, h.study, S2F_DIMSE_OUT_OF_RESOURCES, err.message);
    }
    char source[S2F_DIMSE_AET_MAX + REMOTE_MAX + 2];
    snprintf(source, sizeof source, "%s %s", c->calling[0] ? c->calling : "-", c->remote);
    s2f_intake_item item = {&job->file, job->st.sop_instance, 0, false};
    if (s2f_intake_commit(s->opt.intake, &item, 1, source, &err) != S2F_OK) {
        s2f_gw_logf(s->opt.log, S2F_LOG_ERROR, "dimse: cannot commit %s: %s",
                    job->st.sop_instance, err.message);
        s2f_store_abort(store, &job->file); /* intake removed it; nothing when none */
        return refuse(c, &job->st, h.study, S2F_DIMSE_OUT_OF_RESOURCES, err.message);
    }
    c->stored++;
    COUNT_METRIC(s, dimse_stored);
    s2f_gw_logf(s->opt.log, S2F_LOG_DEBUG, "dimse: %s from %s@%s %s as job %lld",
                job->st.sop_instance, c->calling, c->remote,
                item.created ? "stored" : "already queued", (long long)item.job_id);
    instance_rec r = {c, job->st.sop_instance, job->st.sop_class, h.study,
                      item.created ? "stored" : "duplicate", NULL, item.job_id, 0};
    audit_write(s, instance_body, &r);
    return S2F_DIMSE_SUCCESS;
}

static uint16_t store_end(void *ctx, void *handle, int complete, uint16_t status)
{
    conn *c = ctx;
    store_job *job = handle;
    s2f_store *store = s2f_intake_store(c->scp->opt.intake);
    uint16_t rsp = 0;
    if (!complete) {
        s2f_store_abort(store, &job->file);
        s2f_gw_logf(c->scp->opt.log, S2F_LOG_INFO, "dimse: C-STORE of %s from %s@%s not "
                    "finished: the association ended", job->st.sop_instance, c->calling,
                    c->remote);
    } else if (status) {
        s2f_store_abort(store, &job->file);
        rsp = refuse(c, &job->st, NULL, status, status == S2F_DIMSE_OUT_OF_RESOURCES
                                                     ? "data set larger than the limit or "
                                                       "not writable"
                                                     : "data set not taken");
    } else {
        rsp = finish_store(c, job);
    }
    free(job);
    return rsp;
}

/* ---- connection threads ---------------------------------------------------------------- */

static void log_association(s2f_scp *s, const conn *c, const s2f_dimse_summary *sum)
{
    s2f_log_level lvl = sum->outcome == S2F_DIMSE_RELEASED ? S2F_LOG_INFO : S2F_LOG_WARN;
    s2f_gw_logf(s->opt.log, lvl, "dimse: association %s -> %s from %s: %s, %u C-STORE (%u "
                "stored), %u C-ECHO%s%s", sum->calling_aet[0] ? sum->calling_aet : "-",
                sum->called_aet[0] ? sum->called_aet : "-", c->remote,
                outcome_name(sum->outcome), sum->stores, c->stored, sum->echoes,
                sum->detail[0] ? ": " : "", sum->detail);
}

/* The TLS handshake (within ARTIM; a rejected connection's shorter deadline); 0 with *io
 * and *tls set, or -1 with why in sum. */
static int start_tls(conn *c, s2f_dimse_io *io, s2f_dtls_conn **tls, s2f_dimse_summary *sum)
{
    s2f_scp *s = c->scp;
    int ms = s->opt.limits.artim_ms ? s->opt.limits.artim_ms : 30000;
    if (c->reject && ms > REJECT_ARTIM_MS)
        ms = REJECT_ARTIM_MS;
    s2f_error err = {0};
    if (s2f_dtls_accept(s->tls, c->fd, ms, tls, io, c->tls_subject, sizeof c->tls_subject,
                        &err) == S2F_OK)
        return 0;
    sum->outcome = S2F_DIMSE_DROPPED;
    snprintf(sum->detail, sizeof sum->detail, "%s", err.message);
    return -1;
}

static void run_association(conn *c)
{
    s2f_scp *s = c->scp;
    s2f_dimse_io io;
    int io_ctx;
    s2f_dimse_io_fd(&io, &io_ctx, c->fd);
    s2f_dimse_summary sum;
    memset(&sum, 0, sizeof sum);
    s2f_dtls_conn *tls = NULL;
    if (s->tls && start_tls(c, &io, &tls, &sum) != 0) {
        COUNT_METRIC(s, dimse_rejected);
    } else if (c->reject) {
        s2f_dimse_limits lim = s->opt.limits;
        if (!lim.artim_ms || lim.artim_ms > REJECT_ARTIM_MS)
            lim.artim_ms = REJECT_ARTIM_MS;
        if (!lim.write_ms || lim.write_ms > REJECT_ARTIM_MS)
            lim.write_ms = REJECT_ARTIM_MS;
        s2f_dimse_reject rj = {2, 3, 2}; /* transient, presentation, local limit exceeded */
        s2f_dimse_reject_now(&io, &lim, &rj, &sum);
        if (!sum.detail[0])
            snprintf(sum.detail, sizeof sum.detail, "over the limit of %d associations",
                     s->max_associations);
        COUNT_METRIC(s, dimse_rejected);
    } else {
        s2f_dimse_handler h = {c, on_associate, on_context, store_begin, store_data, store_end};
        s2f_dimse_serve(&io, &s->opt.limits, &h, &sum);
        if (sum.outcome == S2F_DIMSE_REJECTED)
            COUNT_METRIC(s, dimse_rejected);
        else
            COUNT_METRIC(s, dimse_associations);
    }
    s2f_dtls_close(tls);
    log_association(s, c, &sum);
    assoc_rec a = {c, &sum};
    audit_write(s, association_body, &a);
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    s2f_scp *s = c->scp;
    run_association(c);
    pthread_mutex_lock(&s->lock);
    close(c->fd);
    c->fd = -1;
    c->done = 1;
    if (c->reject)
        s->rejecting--;
    else
        s->active--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    wake_acceptor(s);
    return NULL;
}

/* Joins and frees the finished connection threads. */
static void reap(s2f_scp *s)
{
    conn *done = NULL;
    pthread_mutex_lock(&s->lock);
    for (conn **pp = &s->conns; *pp;) {
        conn *c = *pp;
        if (c->done) {
            *pp = c->next;
            c->next = done;
            done = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&s->lock);
    while (done) {
        conn *c = done;
        done = c->next;
        pthread_join(c->thread, NULL);
        free(c);
    }
}

/* The peer's address as text ("127.0.0.1", "::1"; an IPv4-mapped IPv6 address as IPv4). */
static void remote_text(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
    copy_str(buf, cap, "?");
    if (sa->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
    } else if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)cap);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)cap);
    }
}

/* Starts a thread for a new connection (full, or the rejecting path over the limit);
 * closes it when neither may run now. */
static void dispatch(s2f_scp *s, int fd, const char *remote)
{
    conn *c = calloc(1, sizeof *c);
    pthread_mutex_lock(&s->lock);
    int full = s->active < s->max_associations;
    int room = full || s->rejecting < REJECTERS_MAX;
    int ok = c && room;
    if (ok) {
        c->scp = s;
        c->fd = fd;
        c->reject = !full;
        copy_str(c->remote, sizeof c->remote, remote);
        ok = pthread_create(&c->thread, NULL, conn_main, c) == 0;
    }
    if (ok) {
        *(full ? &s->active : &s->rejecting) += 1;
        c->next = s->conns;
        s->conns = c;
    }
    pthread_mutex_unlock(&s->lock);
    if (!ok) {
        s2f_gw_logf(s->opt.log, S2F_LOG_WARN, "dimse: connection from %s closed: %s", remote,
                    !c ? "out of memory" : room ? "cannot start a thread" : "too many connections");
        COUNT_METRIC(s, dimse_rejected);
        close(fd);
        free(c);
    }
}

static void accept_one(s2f_scp *s)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    int fd = accept4(s->listen_fd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            s2f_gw_logf(s->opt.log, S2F_LOG_WARN, "dimse: cannot accept: %s", strerror(errno));
            poll(NULL, 0, 100); /* let descriptors free up rather than spin */
        }
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char remote[REMOTE_MAX];
    remote_text(&sa, remote, sizeof remote);
    dispatch(s, fd, remote);
}

static void *accept_main(void *arg)
{
    s2f_scp *s = arg;
    for (;;) {
        struct pollfd p[2] = {{s->listen_fd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
        int r = poll(p, 2, ACCEPT_POLL_MS);
        if (r > 0 && (p[1].revents & POLLIN)) {
            char buf[64];
            while (read(s->wake[0], buf, sizeof buf) > 0) {
            }
        }
        reap(s);
        pthread_mutex_lock(&s->lock);
        int stop = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            return NULL;
        if (r > 0 && (p[0].revents & POLLIN))
            accept_one(s);
    }
}

/* ---- start and stop ---------------------------------------------------------------------- */

/* "HOST:PORT" (HOST may be "[v6]") into host and port; 0 when malformed. */
static int split_bind(const char *bind, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(bind, ':');
    if (!colon || colon == bind || !colon[1] || strlen(colon + 1) >= pcap)
        return 0;
    const char *h = bind;
    size_t n = (size_t)(colon - bind);
    if (h[0] == '[') {
        if (n < 2 || h[n - 1] != ']')
            return 0;
        h++, n -= 2;
    }
    if (!n || n >= hcap)
        return 0;
    for (const char *q = colon + 1; *q; q++)
        if (*q < '0' || *q > '9')
            return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    copy_str(port, pcap, colon + 1);
    return atol(port) <= 65535;
}

static s2f_code open_listener(s2f_scp *s, s2f_error *err)
{
    char host[256], port[8];
    if (!split_bind(s->bind, host, sizeof host, port, sizeof port))
        return s2f_fail(err, S2F_EUSAGE, "--dicom %s: not HOST:PORT", s->bind);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || !res)
        return s2f_fail(err, S2F_EIO, "cannot listen on %s: %s", s->bind, gai_strerror(gai));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    const char *step = "socket";
    if (fd >= 0) {
        step = "bind";
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) == 0)
            step = listen(fd, LISTEN_BACKLOG) == 0 ? NULL : "listen";
    }
    freeaddrinfo(res);
    if (step) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return s2f_fail(err, S2F_EIO, "cannot listen on %s: %s: %s", s->bind, step,
                        strerror(e));
    }
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return s2f_fail(err, S2F_EIO, "cannot listen on %s: %s", s->bind, strerror(errno));
    }
    s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    s->listen_fd = fd;
    return S2F_OK;
}

static s2f_code check_options(const s2f_scp_options *opt, s2f_error *err)
{
    if (!opt->bind || !opt->aet || !opt->intake)
        return s2f_fail(err, S2F_EUSAGE, "the DICOM receiver needs an address, an AE title "
                        "and the intake");
    size_t n = strlen(opt->aet);
    if (!n || n > S2F_DIMSE_AET_MAX || strspn(opt->aet, " ") == n)
        return s2f_fail(err, S2F_EUSAGE, "AE title '%s': 1 to 16 characters, not only spaces",
                        opt->aet);
    if (opt->max_associations < 0)
        return s2f_fail(err, S2F_EUSAGE, "max_associations %d is negative",
                        opt->max_associations);
    if ((opt->tls_cert != NULL) != (opt->tls_key != NULL) ||
        (opt->tls_client_ca && !opt->tls_cert))
        return s2f_fail(err, S2F_EUSAGE, "DICOM TLS needs a certificate and its key (and a "
                        "client CA only with them)");
    if (strlen(opt->bind) >= 256)
        return s2f_fail(err, S2F_EUSAGE, "--dicom address too long");
    return S2F_OK;
}

static void free_scp(s2f_scp *s)
{
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    s2f_dtls_free(s->tls);
    free(s->peers);
    free(s);
}

static int init_sync(s2f_scp *s)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&s->changed, &ca);
    pthread_condattr_destroy(&ca);
    if (r != 0)
        return -1;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        pthread_cond_destroy(&s->changed);
        return -1;
    }
    return 0;
}

s2f_code s2f_scp_start(const s2f_scp_options *opt, s2f_scp **out, s2f_error *err)
{
    *out = NULL;
    if (check_options(opt, err) != S2F_OK)
        return err->code;
    s2f_scp *s = calloc(1, sizeof *s);
    if (!s)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s->listen_fd = s->wake[0] = s->wake[1] = -1;
    if (init_sync(s) != 0) {
        free(s);
        return s2f_fail(err, S2F_ENOMEM, "cannot create a lock");
    }
    s->opt = *opt;
    copy_str(s->bind, sizeof s->bind, opt->bind);
    copy_str(s->aet, sizeof s->aet, opt->aet);
    s->opt.bind = s->bind;
    s->opt.aet = s->aet;
    s->max_associations = opt->max_associations ? opt->max_associations
                                                : DEFAULT_MAX_ASSOCIATIONS;
    if (opt->n_peers && !(s->peers = calloc(opt->n_peers, sizeof *s->peers))) {
        free_scp(s);
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    if (opt->n_peers)
        memcpy(s->peers, opt->peers, opt->n_peers * sizeof *s->peers);
    s->opt.peers = s->peers;
    s2f_code rc = opt->tls_cert ? s2f_dtls_new(opt->tls_cert, opt->tls_key, opt->tls_client_ca,
                                               &s->tls, err)
                                : S2F_OK;
    s->opt.tls_cert = s->opt.tls_key = s->opt.tls_client_ca = NULL; /* loaded; not kept */
    if (rc != S2F_OK) {
        free_scp(s);
        return rc;
    }
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free_scp(s);
        return s2f_fail(err, S2F_EIO, "cannot create a pipe: %s", strerror(errno));
    }
    rc = open_listener(s, err);
    if (rc == S2F_OK && pthread_create(&s->acceptor, NULL, accept_main, s) != 0)
        rc = s2f_fail(err, S2F_ENOMEM, "cannot start the DICOM accepting thread");
    if (rc != S2F_OK) {
        free_scp(s);
        return rc;
    }
    s->acceptor_started = 1;
    *out = s;
    return S2F_OK;
}

int s2f_scp_port(const s2f_scp *scp)
{
    return scp->port;
}

/* Waits (lock held) until no connection thread runs or the monotonic deadline passed. */
static void wait_idle(s2f_scp *s, long long deadline_ms)
{
    while (s->active + s->rejecting > 0) {
        long long left = deadline_ms - mono_ms();
        if (left <= 0)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long ns = ts.tv_nsec + (left % 1000) * 1000000LL;
        ts.tv_sec += (time_t)(left / 1000 + ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&s->changed, &s->lock, &ts);
    }
}

/* shutdown(how) of every connection still open (lock held). */
static void shut_all(s2f_scp *s, int how)
{
    for (conn *c = s->conns; c; c = c->next)
        if (!c->done && c->fd >= 0)
            shutdown(c->fd, how);
}

void s2f_scp_stop(s2f_scp *scp, int grace_seconds)
{
    if (!scp)
        return;
    s2f_scp *s = scp;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_mutex_unlock(&s->lock);
    if (s->acceptor_started) {
        wake_acceptor(s);
        pthread_join(s->acceptor, NULL);
    }
    close(s->listen_fd); /* no new connections from here on */
    s->listen_fd = -1;
    pthread_mutex_lock(&s->lock);
    wait_idle(s, mono_ms() + (grace_seconds > 0 ? grace_seconds : 0) * 1000LL);
    if (s->active + s->rejecting > 0) {
        s2f_gw_logf(s->opt.log, S2F_LOG_WARN, "dimse: stopping %d association(s) still "
                    "running after %d s", s->active + s->rejecting, grace_seconds);
        shut_all(s, SHUT_RD);  /* their reads end: unfinished C-STOREs are dropped */
        wait_idle(s, mono_ms() + ABORT_WAIT_MS);
        shut_all(s, SHUT_RDWR); /* a write blocked on a peer that does not read */
    }
    pthread_mutex_unlock(&s->lock);
    for (;;) {
        reap(s);
        pthread_mutex_lock(&s->lock);
        int left = s->conns != NULL;
        if (left)
            wait_idle(s, mono_ms() + 100);
        pthread_mutex_unlock(&s->lock);
        if (!left)
            break;
    }
    free_scp(s);
}
