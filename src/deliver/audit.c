/*
 * audit.c - the audit record of a delivery (s2f_audit_append in sr2fhir.h): one JSON line
 * per SR delivered or failed, appended with one write(2) so that threads and processes
 * sharing the log never interleave (the file should be opened with O_APPEND). Fields are
 * listed in docs/send.md. No credential is known here, so none can leak into the log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/client.h"
#include "json/writer.h"
#include "sr/document.h"
#include "util/clock.h"
#include "util/error.h"

static void string_list(s2f_json *j, const char *key, char *const *list, size_t n)
{
    s2f_json_kv_begin_array(j, key);
    for (size_t i = 0; i < n; i++)
        s2f_json_string(j, list[i]);
    s2f_json_end_array(j);
}

static void nullable_string(s2f_json *j, const char *key, const char *value)
{
    if (value)
        s2f_json_kv_string(j, key, value);
    else {
        s2f_json_key(j, key);
        s2f_json_null(j);
    }
}

static void write_record(s2f_json *j, const char *file, const s2f_doc *doc, const s2f_client *c,
                         const s2f_send_result *res, s2f_code rc, const s2f_error *err)
{
    char now[40];
    s2f_utc_now(now, sizeof now);
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "time", now);
    nullable_string(j, "file", file);
    nullable_string(j, "sop_instance_uid", doc ? doc->header.sop_instance : NULL);
    nullable_string(j, "server", c ? s2f_client_base(c) : NULL);
    nullable_string(j, "fhir_version", res->version == S2F_FHIR_R4 ? "R4"
                                       : res->version == S2F_FHIR_R5 ? "R5" : NULL);
    s2f_json_kv_string(j, "outcome", rc ? "failed" : "delivered");
    s2f_json_key(j, "http_status");
    if (res->http_status)
        s2f_json_int(j, res->http_status);
    else
        s2f_json_null(j);
    s2f_json_kv_uint(j, "attempts", res->attempts);
    s2f_json_kv_uint(j, "transactions", res->parts);
    s2f_json_kv_uint(j, "transactions_stored", res->parts_stored);
    s2f_json_kv_uint(j, "duration_ms", (uint64_t)(res->seconds * 1000.0 + 0.5));
    nullable_string(j, "patient", res->patient_ref);
    nullable_string(j, "service_request", res->service_request_ref);
    nullable_string(j, "imaging_study", res->imaging_study_ref);
    string_list(j, "created", res->created, res->n_created);  /* of the parts stored */
    string_list(j, "updated", res->updated, res->n_updated);
    nullable_string(j, "error", rc && err ? err->message : NULL);
    s2f_json_end_object(j);
    s2f_json_finish(j);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

s2f_code s2f_audit_append(int fd, const char *file, const s2f_doc *doc, const s2f_client *c,
                          const s2f_send_result *res, s2f_code rc, const s2f_error *err,
                          s2f_error *werr)
{
    static const s2f_send_result none;
    char *line = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&line, &len);
    s2f_sink *sink = malloc(sizeof *sink);
    s2f_code out = S2F_OK;
    if (!mem || !sink) {
        out = s2f_fail(werr, S2F_ENOMEM, "out of memory");
    } else {
        s2f_json j;
        s2f_sink_init(sink, mem);
        s2f_json_init(&j, sink, 0);
        write_record(&j, file, doc, c, res ? res : &none, rc, err);
        s2f_sink_putc(sink, '\n');
        if (s2f_json_error(&j) || s2f_sink_finish(sink) != 0)
            out = s2f_fail(werr, S2F_EINTERNAL, "cannot format the audit record");
    }
    if (mem && fclose(mem) != 0 && !out)
        out = s2f_fail(werr, S2F_ENOMEM, "out of memory");
    if (!out && write_all(fd, line, len) != 0)
        out = s2f_fail(werr, S2F_EIO, "cannot append to the audit log: %s", strerror(errno));
    free(sink);
    free(line);
    return out;
}
