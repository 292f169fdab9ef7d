/*
 * convert.c - the driver of the FHIR stage: which resources a report makes, in which
 * order, each once (see fhir.h). It calls the resource writers (observations.c,
 * selections.c, resources.c, subjects.c); identities are ids.c's, entries entries.c's.
 *
 * Order: the equipment Device (M7), the observers (M10), the algorithms (M22), the
 * BodyStructures (M18), the ImagingSelections (M12, M19), then the Observations: each group
 * followed by its measurements and evaluations, the derived measurements, the
 * document-level evaluations; with --diagnostic-report, the DiagnosticReport (issue 15). Shared resources are written the first time they are met
 * and referenced by their computed identity everywhere else.
 */
#include <string.h>

#include "fhir/fhir.h"

/* What the driver wrote last (one per conversion). */
struct s2f_fhir_driver {
    const s2f_observer *observers_written; /* the last observer list written */
    size_t n_observers_written;
};

/* ---- what each observation needs written first ----------------------------------------- */

/* Contexts are inherited: most items share their container's list of observers, whose
 * resources are written with the first of them. */
static void write_context(s2f_fhir *f, const s2f_context *ctx)
{
    s2f_fhir_write_subject(f, ctx->subject); /* issue 10 #4: once per Bundle */
    if (ctx->observers == f->driver->observers_written &&
        ctx->n_observers == f->driver->n_observers_written)
        return;
    for (size_t i = 0; i < ctx->n_observers; i++)
        s2f_fhir_write_observer(f, &ctx->observers[i]);
    f->driver->observers_written = ctx->observers;
    f->driver->n_observers_written = ctx->n_observers;
}

static void write_refs(s2f_fhir *f, const s2f_image_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s2f_fhir_write_selection(f, &refs[i]);
}

static void write_site(s2f_fhir *f, const s2f_site *site, const char *tracking_id,
                       const char *tracking_uid)
{
    if (s2f_report_has_body_structure(site, tracking_id, tracking_uid))
        s2f_fhir_write_body_structure(f, site, tracking_id, tracking_uid);
}

/* M22: the algorithm Device an Observation references (the report model's choice, read
 * by observations.c too); a device observer is written with its context, the equipment
 * first of all. */
static void write_algorithm(s2f_fhir *f, const s2f_applied_device *d)
{
    if (d->kind == S2F_DEVICE_ALGORITHM)
        s2f_fhir_write_algorithm(f, d->algorithm);
}

static void write_measurement_dependencies(s2f_fhir *f, const s2f_measurement *m)
{
    write_context(f, &m->ctx); /* the observers, a device observer among them (M10) */
    write_algorithm(f, &m->applied_device);
    if (m->applied_site) /* 10#7: the report model's choice, read by observations.c too */
        write_site(f, m->applied_site, m->applied_tracking_id, m->applied_tracking_uid);
    write_refs(f, m->refs, m->n_refs);
}

static void write_evaluation_dependencies(s2f_fhir *f, const s2f_evaluation *e)
{
    write_context(f, &e->ctx);
    write_algorithm(f, &e->applied_device);
}

static void write_group_dependencies(s2f_fhir *f, const s2f_group *g)
{
    write_context(f, &g->ctx);
    write_algorithm(f, &g->applied_device);
    write_site(f, &g->site, g->tracking_id, g->tracking_uid);
    write_refs(f, g->refs, g->n_refs);
    if (g->item->observation_uid)
        s2f_fhir_write_source_item(f, g->item);
    for (size_t i = 0; i < g->n_measurements; i++)
        write_measurement_dependencies(f, &g->measurements[i]);
    for (size_t i = 0; i < g->n_evaluations; i++)
        write_evaluation_dependencies(f, &g->evaluations[i]);
}

static void write_group(s2f_fhir *f, const s2f_group *g)
{
    s2f_fhir_write_group(f, g);
    for (size_t i = 0; i < g->n_measurements; i++)
        s2f_fhir_write_measurement(f, &g->measurements[i], g);
    for (size_t i = 0; i < g->n_evaluations; i++)
        s2f_fhir_write_evaluation(f, &g->evaluations[i], g);
}

static void write_entries(s2f_fhir *f)
{
    const s2f_report *r = f->rep;
    s2f_fhir_write_equipment(f);
    write_context(f, &r->ctx);
    for (size_t i = 0; i < r->n_groups; i++)
        write_group_dependencies(f, r->groups[i]);
    for (size_t i = 0; i < r->n_derived; i++) {
        write_measurement_dependencies(f, &r->derived[i]);
        if (r->derived[i].item->observation_uid)
            s2f_fhir_write_source_item(f, r->derived[i].item);
    }
    for (size_t i = 0; i < r->n_evaluations; i++)
        write_evaluation_dependencies(f, &r->evaluations[i]);
    for (size_t i = 0; i < r->n_groups; i++)
        write_group(f, r->groups[i]);
    for (size_t i = 0; i < r->n_derived; i++)
        s2f_fhir_write_derived(f, &r->derived[i]);
    for (size_t i = 0; i < r->n_evaluations; i++)
        s2f_fhir_write_evaluation(f, &r->evaluations[i], NULL);
    if (f->opt.diagnostic_report) /* issue 15: last, after all it references */
        s2f_fhir_write_diagnostic_report(f);
}

s2f_code s2f_fhir_write_bundle(const s2f_report *rep, const s2f_fhir_options *opt,
                               s2f_sink *out, s2f_fhir_stats *stats, s2f_error *err)
{
    s2f_json json;
    s2f_fhir_driver driver = {0};
    s2f_fhir f = {
        .rep = rep,
        .doc = rep->doc,
        .h = &rep->doc->header,
        .arena = rep->doc->arena,
        .json = &json,
        .stats = stats,
        .err = err,
        .sop_uid = rep->doc->header.sop_instance ? rep->doc->header.sop_instance : "",
        .driver = &driver,
    };
    if (opt)
        f.opt = *opt;
    memset(stats, 0, sizeof *stats);
    stats->unmapped = rep->n_unmapped;
    f.ids = s2f_fhir_ids_new(f.arena, f.sop_uid);
    f.entries = s2f_fhir_entries_new(f.arena);
    f.common = s2f_fhir_common_new(f.arena);
    f.observations = s2f_fhir_observations_new(f.arena);
    if (!f.ids || !f.entries || !f.common || !f.observations)
        return s2f_fail(err, S2F_ELIMIT, "out of memory while writing FHIR");
    s2f_json_init(&json, out, f.opt.pretty);
    s2f_rid bundle;
    s2f_fhir_rid(&f, "Bundle", "bundle", "", &bundle);
    s2f_json_begin_object(&json);
    s2f_json_kv_string(&json, "resourceType", "Bundle");
    s2f_json_kv_string(&json, "id", bundle.id);
    s2f_json_kv_string(&json, "type",
                       f.opt.bundle_type == S2F_BUNDLE_COLLECTION ? "collection" : "transaction");
    s2f_json_lit_begin_array(&json, S2F_JSON_LIT("entry"));
    write_entries(&f);
    s2f_json_end_array(&json);
    s2f_json_end_object(&json);
    s2f_json_finish(&json);
    stats->replaced_chars += s2f_json_replaced(&json);
    if (f.code)
        return f.code;
    if (s2f_json_error(&json))
        return s2f_fail(err, S2F_EINTERNAL, "%s", s2f_json_message(&json));
    return S2F_OK;
}
