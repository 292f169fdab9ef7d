/*
 * api.c - the public conversion entry point (s2f_convert in sr2fhir.h): reads the report
 * model (stage 3) and writes the Bundle (stage 4).
 */
#include "fhir.h"

/* M26: "POSITION RELATIONSHIP VALUE-TYPE (code,scheme,"meaning")" for each unmapped item. */
static const char *const *unmapped_lines(const s2f_report *rep)
{
    s2f_arena *a = rep->doc->arena;
    const char **lines = s2f_arena_calloc(a, rep->n_unmapped + 1, sizeof *lines);
    for (size_t i = 0; lines && i < rep->n_unmapped; i++) {
        const s2f_item *it = rep->unmapped[i];
        char pos[1024];
        s2f_item_position(it, pos, sizeof pos);
        const s2f_codeval *c = it->concept;
        lines[i] = c ? s2f_arena_printf(a, "%s %s %s (%s,%s,\"%s\")", pos, s2f_rel_name(it->rel),
                                        s2f_vt_name(it->vt), c->value, c->scheme, c->meaning)
                     : s2f_arena_printf(a, "%s %s %s", pos, s2f_rel_name(it->rel),
                                        s2f_vt_name(it->vt));
        if (!lines[i])
            return NULL;
    }
    return lines;
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
        result->unmapped = stats.unmapped;
        result->fallback_codes = stats.fallback_codes;
        result->replaced_chars = stats.replaced_chars;
        result->unmapped_items = unmapped_lines(&rep);
    }
    return rc;
}
