/*
 * api.c - the public conversion entry points (s2f_convert_write, s2f_convert in sr2fhir.h):
 * read the report model (stage 3) and write the Bundle (stage 4); and the library's
 * version (s2f_version).
 */
#include "fhir/fhir.h"
#include "util/sized.h"

#include <string.h>

const char *s2f_version(void) { return SR2FHIR_VERSION; }
unsigned long s2f_version_num(void) { return SR2FHIR_VERSION_NUM; }

/* M26 (issue 10 #5): why an item a rule consumed is still listed in this form, NULL when it
 * is mapped. R4 (M25) has no ImagingSelection and no BodyStructure; R5 ImagingSelection has
 * no place for SCOORD3D coordinates outside an instance (selections.c). */
static const char *partly_mapped(const s2f_item *it, const char *rule, int r4)
{
    int image_ref = !strcmp(rule, S2F_RULE_IMAGE_REF);
    if (r4 && (image_ref || !strcmp(rule, S2F_RULE_SITE_DETAIL)))
        return "FHIR R4 has no ImagingSelection nor BodyStructure for it (M25)";
    if (image_ref && it->vt == S2F_VT_SCOORD3D)
        return "its 3D coordinates have no place in an R5 ImagingSelection (M19)";
    return NULL;
}

/* "POSITION RELATIONSHIP VALUE-TYPE (code,scheme,"meaning")[: why]" */
static const char *item_line(s2f_arena *a, const s2f_item *it, const char *why)
{
    char pos[1024];
    s2f_item_position(it, pos, sizeof pos);
    const s2f_codeval *c = it->concept;
    const char *sep = why ? ": " : "", *tail = why ? why : "";
    return c ? s2f_arena_printf(a, "%s %s %s (%s,%s,\"%s\")%s%s", pos, s2f_rel_name(it->rel),
                                s2f_vt_name(it->vt), c->value, c->scheme, c->meaning, sep, tail)
             : s2f_arena_printf(a, "%s %s %s%s%s", pos, s2f_rel_name(it->rel),
                                s2f_vt_name(it->vt), sep, tail);
}

/* Every content item once, in document order: the listed ones (none consumed it, or it is
 * mapped only in part) into *listed, the mapped ones ("POSITION RULE") into *mapped when
 * mapped is not NULL. Returns the number listed; (size_t)-1 when out of memory. */
static size_t sort_items(const s2f_report *rep, int r4, const char ***listed,
                         const char ***mapped)
{
    s2f_arena *a = rep->doc->arena;
    size_t n = rep->doc->tree.n_items, nl = 0, nm = 0;
    const char **l = s2f_arena_calloc(a, n + 1, sizeof *l);
    const char **m = mapped ? s2f_arena_calloc(a, n + 1, sizeof *m) : NULL;
    if (!l || (mapped && !m))
        return (size_t)-1;
    for (const s2f_item *it = rep->root; it; it = s2f_item_next(it)) {
        const char *rule = rep->rule_of[it->seq];
        const char *why = rule ? partly_mapped(it, rule, r4) : NULL;
        if (!rule || why) {
            if (!(l[nl++] = item_line(a, it, why)))
                return (size_t)-1;
        } else if (m) {
            char pos[1024];
            s2f_item_position(it, pos, sizeof pos);
            if (!(m[nm++] = s2f_arena_printf(a, "%s %s", pos, rule)))
                return (size_t)-1;
        }
    }
    *listed = l;
    if (mapped)
        *mapped = m;
    return nl;
}

/* The private writer's options from the public ones (issue 16: enums, AUTO = R5). */
static s2f_fhir_options fhir_options(const s2f_convert_options *opt)
{
    s2f_fhir_options fo = {0};
    fo.bundle_type = opt->bundle_type == S2F_BUNDLE_COLLECTION ? S2F_BUNDLE_COLLECTION
                                                               : S2F_BUNDLE_TRANSACTION;
    fo.r4 = opt->fhir_version == S2F_FHIR_R4;
    fo.timezone = opt->timezone;
    fo.pretty = opt->pretty;
    fo.patient_ref = opt->patient_ref;
    fo.service_request_ref = opt->service_request_ref;
    fo.imaging_study_ref = opt->imaging_study_ref;
    fo.diagnostic_report = opt->diagnostic_report; /* issue 15 */
    return fo;
}

/* The conversion report's part of the result (M26), in the library's full layout. */
static void fill_result(const s2f_report *rep, const s2f_convert_options *opt,
                        const s2f_fhir_stats *stats, s2f_convert_result *r)
{
    r->observations = stats->observations;
    r->imaging_selections = stats->imaging_selections;
    r->body_structures = stats->body_structures;
    r->devices = stats->devices;
    r->practitioners = stats->practitioners;
    const char **listed = NULL, **mapped = NULL;
    size_t n = sort_items(rep, opt->fhir_version == S2F_FHIR_R4, &listed,
                          opt->trace_consumed ? &mapped : NULL);
    r->unmapped = n == (size_t)-1 ? stats->unmapped : n;
    r->fallback_codes = stats->fallback_codes;
    r->replaced_chars = stats->replaced_chars;
    r->diagnostic_reports = stats->diagnostic_reports; /* issue 15 */
    r->unmapped_items = n == (size_t)-1 ? NULL : listed;
    r->consumed_items = n == (size_t)-1 ? NULL : mapped;
}

s2f_code s2f_convert_write(const s2f_doc *doc, const s2f_convert_options *options,
                           s2f_write_fn write_fn, void *ctx, s2f_convert_result *result,
                           s2f_error *err)
{
    if (!doc || !write_fn)
        return s2f_fail(err, S2F_EUSAGE, "no document or no write function");
    s2f_convert_options opt;
    s2f_sized_read(&opt, sizeof opt, options, S2F_V01_CONVERT_OPTIONS_SIZE);
    s2f_report rep;
    s2f_code rc = s2f_report_read(doc, &rep, err);
    if (rc)
        return rc;
    s2f_fhir_options fo = fhir_options(&opt);
    /* The output buffer comes from the document's arena, whose memory the reading has
     * mostly touched already: 64 KiB of fresh heap would fault page by page. */
    s2f_sink *sink = s2f_arena_alloc(doc->arena, sizeof *sink);
    if (!sink)
        return s2f_fail(err, s2f_arena_over_limit(doc->arena) ? S2F_ELIMIT : S2F_ENOMEM,
                        "out of memory while writing FHIR");
    s2f_sink_init_fn(sink, write_fn, ctx);
    s2f_fhir_stats stats;
    rc = s2f_fhir_write_bundle(&rep, &fo, sink, &stats, err);
    if (s2f_sink_finish(sink) != 0 && !rc)
        rc = s2f_fail(err, S2F_EIO, "cannot write the output");
    if (result) {
        s2f_convert_result full = {0};
        fill_result(&rep, &opt, &stats, &full);
        s2f_sized_write(result, &full, sizeof full, S2F_V01_CONVERT_RESULT_SIZE);
    }
    return rc;
}

/* s2f_convert's write function: the whole piece to the stream, or -1. */
static int write_stream(void *ctx, const void *data, size_t len)
{
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : -1;
}

s2f_code s2f_convert(const s2f_doc *doc, const s2f_convert_options *opt, FILE *out,
                     s2f_convert_result *result, s2f_error *err)
{
    if (!out)
        return s2f_fail(err, S2F_EUSAGE, "no output stream");
    s2f_code rc = s2f_convert_write(doc, opt, write_stream, out, result, err);
    if (fflush(out) != 0 && !rc)
        rc = s2f_fail(err, S2F_EIO, "cannot write the output");
    return rc;
}
