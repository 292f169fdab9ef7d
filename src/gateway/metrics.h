/*
 * metrics.h - the gateway's counters, shared by the receivers and the workers and read by
 * GET /metrics (Prometheus text format, version 0.0.4). Every field is atomic, so any
 * thread may add to it without a lock; one s2f_gw_metrics per service (no global state).
 */
#ifndef S2F_GATEWAY_METRICS_H
#define S2F_GATEWAY_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/queue.h"

/* Failure classes of delivery (issue 11 Build #4); the index of failed[]. */
typedef enum s2f_fail_class {
    S2F_FAIL_TRANSIENT,   /* connection, timeout, 408, 429, 5xx: retried with backoff */
    S2F_FAIL_AUTH,        /* 401, 403: delivery paused */
    S2F_FAIL_PERMANENT,   /* other 4xx, lookup ambiguity: dead letter */
    S2F_FAIL_CONVERSION,  /* the SR could not be read or converted: dead letter */
    S2F_FAIL_NCLASSES
} s2f_fail_class;

const char *s2f_fail_class_name(s2f_fail_class c); /* "transient", "auth", ... */

typedef struct s2f_gw_metrics {
    /* receiving side */
    atomic_llong requests;          /* STOW-RS requests answered */
    atomic_llong received;          /* SR parts received (stored or not) */
    atomic_llong stored;            /* parts durably committed (file + job row) */
    atomic_llong refused;           /* parts refused (not an SR, wrong study, malformed...) */
    atomic_llong busy;              /* requests answered 503 (back-pressure) */
    atomic_llong receive_us_sum;    /* request handling time, microseconds, summed */
    /* DICOM receiver (issue 12, scp.c) */
    atomic_llong dimse_associations;/* associations accepted and ended */
    atomic_llong dimse_rejected;    /* connections rejected (AE title, limit) */
    atomic_llong dimse_stored;      /* C-STOREs answered 0000 (durably committed) */
    atomic_llong dimse_refused;     /* C-STOREs answered with a failure status */
    /* delivery side */
    atomic_llong delivered;         /* jobs done */
    atomic_llong not_applicable;    /* jobs that were not TID 1500 */
    atomic_llong failed[S2F_FAIL_NCLASSES]; /* failed attempts by class */
    atomic_llong dead;              /* jobs dead-lettered */
    atomic_llong deliver_us_sum;    /* conversion + delivery time of done jobs, microseconds */
    atomic_int paused;              /* 1 while delivery is paused by an auth failure */
} s2f_gw_metrics;

/* Queue figures are read at scrape time by the caller and passed in. */
typedef struct s2f_gw_queue_figures {
    long long depth[S2F_JOB_NSTATES]; /* jobs per state */
    long long oldest_age;      /* seconds since the oldest pending job was enqueued, 0 = none */
} s2f_gw_queue_figures;

/* Writes the Prometheus text exposition into buf (cap bytes, NUL-terminated); returns the
 * length, or 0 when it did not fit. */
size_t s2f_gw_metrics_render(const s2f_gw_metrics *m, const s2f_gw_queue_figures *q,
                             char *buf, size_t cap);

#endif
