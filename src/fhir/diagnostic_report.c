/*
 * diagnostic_report.c - the DiagnosticReport of the SR (issue 15, convert/send
 * --diagnostic-report): one per Bundle, written last, after everything it references.
 *
 * The guide's example (DiagnosticReport/dicom-sr-measurement-report) has no profile: code
 * DCM 126000 "Imaging Measurement Report", status and subject. Here, in the element order of
 * FHIR R5 DiagnosticReport:
 *   identifier   the SR's SOP Instance UID (system urn:dicom:uid, value urn:oid:UID)
 *   basedOn      the ServiceRequest by accession number, as every Observation (M6)
 *   status       as every Observation (M8): preliminary or final
 *   code         DCM 126000 "Imaging Measurement Report"
 *   subject      the Patient, as every Observation (M4)
 *   effective/issued  Content Date + Time (M9), as an Observation without its own DateTime
 *   performer    the Person observers of the document's observer context (M10; R5 and R4
 *                DiagnosticReport.performer cannot reference a Device)
 *   result       the group Observations (M13), the derived measurements (M14) and the
 *                document-level qualitative evaluations (M15), in that order; measurements
 *                and group-level evaluations are reached through the groups' hasMember
 *   study        R5: the ImagingStudy by Study Instance UID (M5); R4 (M25): imagingStudy
 * Identity (M24): the UUID v5 of the SR's SOP Instance UID, kind "diagnostic-report", key ""
 * (one per SR; sending again updates it). docs/decisions.md "Issue 15: DiagnosticReport".
 */
#include <string.h>

#include "fhir/fhir.h"

#define CODE_MEASUREMENT_REPORT "126000"

static int stopped(const s2f_fhir *f)
{
    return f->code != S2F_OK;
}

static void write_identifier(s2f_fhir *f)
{
    s2f_json *j = f->json;
    if (!*f->sop_uid)
        return;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("identifier"));
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "system", "urn:dicom:uid");
    s2f_json_kv_string(j, "value", s2f_fhir_oid(f, f->sop_uid));
    s2f_json_end_object(j);
    s2f_json_end_array(j);
}

/* M10: the Person observers of the document's observer context (device observers are not
 * performers of a DiagnosticReport: FHIR allows no Device there). */
static void write_performers(s2f_fhir *f)
{
    const s2f_context *ctx = &f->rep->ctx;
    int open = 0;
    for (size_t i = 0; i < ctx->n_observers && !stopped(f); i++) {
        s2f_rid rid;
        if (!s2f_fhir_performer_rid(f, ctx, i, &rid))
            continue;
        if (!open)
            s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("performer"));
        open = 1;
        s2f_fhir_reference(f, NULL, &rid);
    }
    if (open)
        s2f_json_end_array(f->json);
}

/* The group, derived and document-level Observations, in the order the Bundle has them. */
static void write_results(s2f_fhir *f)
{
    const s2f_report *r = f->rep;
    if (!r->n_groups && !r->n_derived && !r->n_evaluations)
        return;
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("result"));
    for (size_t i = 0; i < r->n_groups && !stopped(f); i++) {
        s2f_rid rid;
        s2f_fhir_group_rid(f, r->groups[i], &rid);
        s2f_fhir_reference(f, NULL, &rid);
    }
    for (size_t i = 0; i < r->n_derived && !stopped(f); i++) {
        s2f_rid rid;
        s2f_fhir_measurement_rid(f, &r->derived[i], &rid);
        s2f_fhir_reference(f, NULL, &rid);
    }
    for (size_t i = 0; i < r->n_evaluations && !stopped(f); i++) {
        s2f_rid rid;
        s2f_fhir_evaluation_rid(f, &r->evaluations[i], &rid);
        s2f_fhir_reference(f, NULL, &rid);
    }
    s2f_json_end_array(f->json);
}

/* M5: R5 "study", R4 "imagingStudy" (M25): the ImagingStudy by Study Instance UID. */
static void write_study(s2f_fhir *f)
{
    if (!f->h->study_uid)
        return;
    if (f->opt.r4)
        s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("imagingStudy"));
    else
        s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("study"));
    s2f_fhir_study_reference(f);
    s2f_json_end_array(f->json);
}

void s2f_fhir_write_diagnostic_report(s2f_fhir *f)
{
    if (stopped(f))
        return;
    s2f_rid rid;
    s2f_fhir_rid(f, "DiagnosticReport", S2F_KIND_DIAGNOSTIC_REPORT, "", &rid);
    s2f_fhir_begin_entry(f, &rid, NULL);
    write_identifier(f);
    s2f_fhir_based_on(f); /* M6 */
    s2f_json_kv_string(f->json, "status", s2f_fhir_status(f)); /* M8 */
    s2f_fhir_codeable_fixed(f, "code", S2F_SYSTEM_DCM, CODE_MEASUREMENT_REPORT,
                            "Imaging Measurement Report");
    s2f_fhir_subject(f, "subject"); /* M4 */
    s2f_fhir_effective_issued(f, f->rep->ctx.observation_dt); /* M9 */
    write_performers(f);
    write_results(f);
    write_study(f);
    s2f_fhir_end_entry(f, &rid);
}
