/*
 * api.c - the public conversion entry point (s2f_convert in sr2fhir.h): reads the report
 * model (stage 3) and writes the Bundle (stage 4).
 */
#include "fhir/fhir.h"

#include <string.h>

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

s2f_code s2f_convert(const s2f_doc *doc, const s2f_convert_options *opt, FILE *out,
                     s2f_convert_result *result, s2f_error *err)
{
    s2f_report rep;
    s2f_code rc = s2f_report_read(doc, &rep, err);
    if (rc)
        return rc;
    s2f_fhir_options fo = {0};
    if (opt) {
        fo.bundle_type = opt->collection ? S2F_BUNDLE_COLLECTION : S2F_BUNDLE_TRANSACTION;
        fo.r4 = opt->r4;
        fo.timezone = opt->timezone;
        fo.pretty = opt->pretty;
        fo.patient_ref = opt->patient_ref;
        fo.service_request_ref = opt->service_request_ref;
        fo.imaging_study_ref = opt->imaging_study_ref;
    }
    /* The output buffer comes from the document's arena, whose memory the reading has
     * mostly touched already: 64 KiB of fresh heap would fault page by page. */
    s2f_sink *sink = s2f_arena_alloc(doc->arena, sizeof *sink);
    if (!sink)
        return s2f_fail(err, s2f_arena_over_limit(doc->arena) ? S2F_ELIMIT : S2F_ENOMEM,
                        "out of memory while writing FHIR");
    s2f_sink_init(sink, out);
    s2f_fhir_stats stats;
    rc = s2f_fhir_write_bundle(&rep, &fo, sink, &stats, err);
    if (s2f_sink_finish(sink) != 0 && !rc)
        rc = s2f_fail(err, S2F_EIO, "cannot write the output");
    if (result) {
        result->observations = stats.observations;
        result->imaging_selections = stats.imaging_selections;
        result->body_structures = stats.body_structures;
        result->devices = stats.devices;
        result->practitioners = stats.practitioners;
        const char **listed = NULL, **mapped = NULL;
        size_t n = sort_items(&rep, opt && opt->r4, &listed,
                              opt && opt->trace_consumed ? &mapped : NULL);
        result->unmapped = n == (size_t)-1 ? stats.unmapped : n;
        result->fallback_codes = stats.fallback_codes;
        result->replaced_chars = stats.replaced_chars;
        result->unmapped_items = n == (size_t)-1 ? NULL : listed;
        result->consumed_items = n == (size_t)-1 ? NULL : mapped;
    }
    return rc;
}
