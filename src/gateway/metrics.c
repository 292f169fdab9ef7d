/*
 * metrics.c - renders the gateway's counters (metrics.h) in the Prometheus text format.
 */
#include <stdarg.h>
#include <stdio.h>

#include "gateway/metrics.h"

const char *s2f_fail_class_name(s2f_fail_class c)
{
    static const char *const names[S2F_FAIL_NCLASSES] = {"transient", "auth", "permanent",
                                                         "conversion"};
    return (unsigned)c < S2F_FAIL_NCLASSES ? names[c] : "unknown";
}

typedef struct out {
    char *buf;
    size_t cap, len;
    int full;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->full = 1;
    else
        o->len += (size_t)n;
}

static void counter(out *o, const char *name, const char *help, long long v)
{
    put(o, "# HELP %s %s\n# TYPE %s counter\n%s %lld\n", name, help, name, name, v);
}

static void gauge(out *o, const char *name, const char *help, long long v)
{
    put(o, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

/* A latency as a summary without quantiles: its sum in seconds and its count. */
static void summary(out *o, const char *name, const char *help, long long sum_us, long long n)
{
    put(o, "# HELP %s %s\n# TYPE %s summary\n%s_sum %lld.%06lld\n%s_count %lld\n", name, help,
        name, name, sum_us / 1000000, sum_us % 1000000, name, n);
}

size_t s2f_gw_metrics_render(const s2f_gw_metrics *m, const s2f_gw_queue_figures *q,
                             char *buf, size_t cap)
{
    if (!cap)
        return 0;
    out o = {buf, cap, 0, 0};
    buf[0] = '\0';
    counter(&o, "sr2fhir_stow_requests_total", "STOW-RS requests answered",
            atomic_load(&m->requests));
    counter(&o, "sr2fhir_received_total", "SR parts received", atomic_load(&m->received));
    counter(&o, "sr2fhir_stored_total", "SR parts durably committed to the queue",
            atomic_load(&m->stored));
    counter(&o, "sr2fhir_refused_total", "SR parts refused", atomic_load(&m->refused));
    counter(&o, "sr2fhir_busy_total", "STOW-RS requests answered 503 (back-pressure)",
            atomic_load(&m->busy));
    summary(&o, "sr2fhir_receive_seconds", "STOW-RS request handling time",
            atomic_load(&m->receive_us_sum), atomic_load(&m->requests));
    counter(&o, "sr2fhir_dimse_associations_total", "DICOM associations accepted and ended",
            atomic_load(&m->dimse_associations));
    counter(&o, "sr2fhir_dimse_rejected_total",
            "DICOM associations rejected (AE title, association limit)",
            atomic_load(&m->dimse_rejected));
    counter(&o, "sr2fhir_dimse_stored_total", "C-STOREs answered success (durably committed)",
            atomic_load(&m->dimse_stored));
    counter(&o, "sr2fhir_dimse_refused_total", "C-STOREs answered with a failure status",
            atomic_load(&m->dimse_refused));
    counter(&o, "sr2fhir_delivered_total", "jobs delivered to the FHIR server",
            atomic_load(&m->delivered));
    counter(&o, "sr2fhir_not_applicable_total", "jobs that were not TID 1500 reports",
            atomic_load(&m->not_applicable));
    put(&o, "# HELP sr2fhir_failed_total failed delivery attempts by failure class\n"
            "# TYPE sr2fhir_failed_total counter\n");
    for (int c = 0; c < S2F_FAIL_NCLASSES; c++)
        put(&o, "sr2fhir_failed_total{class=\"%s\"} %lld\n", s2f_fail_class_name(c),
            atomic_load(&m->failed[c]));
    counter(&o, "sr2fhir_dead_total", "jobs dead-lettered", atomic_load(&m->dead));
    summary(&o, "sr2fhir_deliver_seconds",
            "conversion and delivery time of delivered jobs",
            atomic_load(&m->deliver_us_sum), atomic_load(&m->delivered));
    gauge(&o, "sr2fhir_delivery_paused", "1 while delivery is paused by an auth failure",
          atomic_load(&m->paused));
    if (q) {
        put(&o, "# HELP sr2fhir_queue_jobs jobs in the queue by state\n"
                "# TYPE sr2fhir_queue_jobs gauge\n");
        for (int s = 0; s < S2F_JOB_NSTATES; s++)
            put(&o, "sr2fhir_queue_jobs{state=\"%s\"} %lld\n", s2f_job_state_name(s),
                q->depth[s]);
        gauge(&o, "sr2fhir_queue_oldest_age_seconds",
              "age of the oldest pending job, seconds", q->oldest_age);
    }
    return o.full ? 0 : o.len;
}
