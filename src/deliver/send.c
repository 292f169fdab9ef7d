/*
 * send.c - delivery of one SR to a FHIR server (s2f_send in sr2fhir.h, docs/send.md):
 * check it is a TID 1500 report (M2), settle the FHIR version (M25), look up the Patient,
 * ServiceRequest and ImagingStudy by identifier (M4-M6), convert with literal references
 * to what was found, and POST the Bundle as one transaction of PUTs (M24), or as several
 * dependency-ordered ones when it is larger than the client's max_entries (split.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/client.h"
#include "deliver/http.h"
#include "deliver/split.h"
#include "fhir/fhir.h"
#include "sr/document.h"
#include "util/error.h"
#include "util/sized.h"

void s2f_send_result_free(s2f_send_result *res)
{
    if (!res)
        return;
    free(res->patient_ref);
    free(res->service_request_ref);
    free(res->imaging_study_ref);
    for (size_t i = 0; i < res->n_created; i++)
        free(res->created[i]);
    for (size_t i = 0; i < res->n_updated; i++)
        free(res->updated[i]);
    free(res->created);
    free(res->updated);
    free((s2f_convert_result *)res->convert);
    size_t size = res->struct_size; /* the caller's part only (issue 16) */
    size_t n = s2f_sized_len(size, S2F_V01_SEND_RESULT_SIZE, sizeof *res);
    if (n > sizeof size)
        memset((char *)res + sizeof size, 0, n - sizeof size);
}

/* M4, M6: the identifier system of an issuer, "" in err when memory ran out. */
static s2f_code issuer_system(const s2f_doc *doc, const s2f_issuer *is, const char **system,
                              s2f_error *err)
{
    int oom;
    *system = s2f_fhir_issuer_system(doc->arena, is, &oom);
    return oom ? s2f_fail(err, S2F_ELIMIT, "memory limit exceeded") : S2F_OK;
}

/* M4-M6: the three lookups; what is absent from the SR is not searched. */
static s2f_code look_up(s2f_client *c, const s2f_doc *doc, s2f_send_result *res, s2f_error *err)
{
    const s2f_header *h = &doc->header;
    const char *system;
    s2f_code rc;
    if (!h->patient_id && s2f_client_require_existing(c))
        return s2f_fail(err, S2F_ELOOKUP, "the SR has no Patient ID to find the Patient by "
                        "(--require-existing)");
    if (h->patient_id &&
        ((rc = issuer_system(doc, &h->patient_issuer, &system, err)) ||
         (rc = s2f_client_find(c, "Patient", system, h->patient_id, &res->patient_ref, res, err))))
        return rc;
    if (h->accession &&
        ((rc = issuer_system(doc, &h->accession_issuer, &system, err)) ||
         (rc = s2f_client_find(c, "ServiceRequest", system, h->accession, &res->service_request_ref,
                               res, err))))
        return rc;
    if (h->study_uid) {
        char *oid = s2f_arena_concat(doc->arena, "urn:oid:", h->study_uid);
        if (!oid)
            return s2f_fail(err, S2F_ELIMIT, "memory limit exceeded");
        if ((rc = s2f_client_find(c, "ImagingStudy", "urn:dicom:uid", oid, &res->imaging_study_ref,
                                  res, err)))
            return rc;
    }
    return S2F_OK;
}

/* The Bundle, in memory (malloc'd *text). */
static s2f_code bundle_text(s2f_client *c, const s2f_doc *doc, s2f_send_result *res, char **text,
                            size_t *len, s2f_error *err)
{
    s2f_convert_options opt;
    s2f_convert_options_init(&opt);
    opt.fhir_version = res->version == S2F_FHIR_R4 ? S2F_FHIR_R4 : S2F_FHIR_R5;
    opt.timezone = s2f_client_timezone(c);
    opt.diagnostic_report = s2f_client_diagnostic_report(c);
    opt.patient_ref = res->patient_ref;
    opt.service_request_ref = res->service_request_ref;
    opt.imaging_study_ref = res->imaging_study_ref;
    *text = NULL;
    *len = 0;
    FILE *mem = open_memstream(text, len);
    if (!mem)
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    s2f_convert_result *made = calloc(1, sizeof *made);
    if (made)
        made->struct_size = sizeof *made; /* every member filled (issue 15: DiagnosticReport) */
    if (!made) {
        fclose(mem);
        free(*text);
        *text = NULL;
        return s2f_fail(err, S2F_ENOMEM, "out of memory");
    }
    made->struct_size = sizeof *made;
    s2f_code rc = s2f_convert(doc, &opt, mem, made, err);
    made->unmapped_items = NULL; /* the document's, not the result's */
    made->consumed_items = NULL;
    res->convert = made;
    if (fclose(mem) != 0 && !rc)
        rc = s2f_fail(err, S2F_ENOMEM, "out of memory");
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

static size_t entry_count(const s2f_convert_result *r)
{
    return r->observations + r->imaging_selections + r->body_structures + r->devices +
           r->practitioners + r->diagnostic_reports;
}

/* A Bundle too large for one transaction, in dependency-ordered parts (split.h). */
static s2f_code deliver_in_parts(s2f_client *c, const char *bundle, size_t len, s2f_send_result *res,
                                 s2f_error *err)
{
    s2f_bundle_parts parts;
    s2f_code rc = s2f_split_bundle(bundle, len, s2f_client_max_entries(c), &parts, err);
    if (rc)
        return rc;
    res->parts = (unsigned)parts.n;
    for (size_t i = 0; i < parts.n && !rc; i++) {
        s2f_error why;
        if (!(rc = s2f_client_transaction(c, parts.text[i], parts.len[i], parts.entries[i], res, &why)))
            res->parts_stored++;
        else if (i == 0)
            s2f_fail(err, rc, "%s (part 1 of %zu: nothing stored)", why.message, parts.n);
        else
            s2f_fail(err, rc, "%s (part %zu of %zu: the first %zu %s stored; sending the SR again "
                     "completes the delivery)", why.message, i + 1, parts.n, i,
                     i == 1 ? "is" : "are");
    }
    s2f_split_parts_free(&parts);
    return rc;
}

static s2f_code deliver(s2f_client *c, const char *bundle, size_t len, s2f_send_result *res,
                        s2f_error *err)
{
    size_t max = s2f_client_max_entries(c);
    if (max && entry_count(res->convert) > max)
        return deliver_in_parts(c, bundle, len, res, err);
    res->parts = 1;
    s2f_code rc = s2f_client_transaction(c, bundle, len, entry_count(res->convert), res, err);
    res->parts_stored = !rc;
    return rc;
}

static s2f_code send_full(s2f_client *c, const s2f_doc *doc, s2f_send_result *res,
                          s2f_error *err);

s2f_code s2f_send(s2f_client *c, const s2f_doc *doc, s2f_send_result *out, s2f_error *err)
{
    /* Filled in the library's full layout, handed back as far as the caller's struct
     * reaches (issue 16). A member appended later that owns memory must be released here
     * when the caller's struct does not reach it. */
    s2f_send_result full = {.struct_size = sizeof full};
    s2f_code rc = send_full(c, doc, &full, err);
    s2f_sized_write(out, &full, sizeof full, S2F_V01_SEND_RESULT_SIZE);
    return rc;
}

/* s2f_send into the library's full result. */
static s2f_code send_full(s2f_client *c, const s2f_doc *doc, s2f_send_result *res,
                          s2f_error *err)
{
    double start = s2f_http_now();
    res->retry_after = -1;
    s2f_client_begin(c); /* the deadline of this SR (issue 9 defect 10) */
    s2f_report rep;
    s2f_code rc = s2f_report_read(doc, &rep, err); /* M2 before any traffic */
    s2f_fhir_version v = S2F_FHIR_AUTO;
    if (!rc && !(rc = s2f_client_settle_version(c, &v, res, err))) {
        res->version = v;
        rc = look_up(c, doc, res, err);
    }
    char *bundle = NULL;
    size_t len = 0;
    if (!rc)
        rc = bundle_text(c, doc, res, &bundle, &len, err);
    if (!rc)
        rc = deliver(c, bundle, len, res, err);
    free(bundle);
    res->seconds = s2f_http_now() - start;
    return rc;
}
