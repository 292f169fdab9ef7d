/*
 * observations.c - the four Observation kinds of the guide (MAPPING rules M13-M22):
 * ImagingMeasurementGroup (M17-M19), ImagingMeasurement (M20), ImagingQualitativeEvaluation
 * (M21, M15) and DerivedImagingMeasurement (M14), with the elements every Observation shares
 * taken from common.c (M4-M11, M23) and the references to what convert.c, selections.c and
 * resources.c write (ImagingSelections M12/M19, Devices M7/M22, Practitioners M10,
 * BodyStructures M18).
 *
 * Members are written in the element order of the FHIR R5 Observation (identifier, basedOn,
 * partOf, status, category, code, subject, effective[x], issued, performer, value[x],
 * dataAbsentReason, bodySite, bodyStructure, method, device, hasMember, derivedFrom,
 * component), and only when they have content: no empty arrays, objects or strings.
 *
 * Decisions taken here (see the comments at each place):
 *  - M17 amended: the group's category DCM 125007 is written only when the code is a Finding
 *    Category; with code DCM 125007 the guide's invariant measurement-group-category
 *    ("code = DCM#125007 implies category.not().exists()") forbids it.
 *  - M10/M22: device observers are not performers (R5 Observation.performer cannot
 *    reference a Device); Observation.device follows M22: own algorithm, else the device
 *    observer of the observer context, else the M7 equipment (issue 10 defect 6; chosen
 *    once by the report model, s2f_applied_device, issue 14).
 *  - M18: tracking ids become identifiers of the Observation whenever no BodyStructure
 *    carries them: no finding site, a site without laterality/modifier/tracking ids, or R4
 *    output (M25: no BodyStructure there, so they would otherwise be lost).
 *  - M20: Numeric Value Qualifiers map to data-absent-reason codes: 114000 not-a-number,
 *    114001 (Negative Infinity) negative-infinity, 114002 (Positive Infinity)
 *    positive-infinity, 114010 / 114011 (value unknown /
 *    indeterminate) unknown, the failure codes 114003-114009 error, any other qualifier
 *    unknown. A Floating Point Value that is NaN or infinite maps the same way. A Numeric
 *    Value that is not a decimal string or that no double holds (1e999; issue 9 defect 9):
 *    error. No value and no qualifier: unknown. A qualifier beside a value ->
 *    interpretation (issue 10 defect 3). A DS text equal to the Floating Point Value is
 *    written with its own digits (issue 10 defect 9). docs/decisions.md "Values".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fhir/fhir.h"
#include "util/error.h"

typedef struct s2f_units_entry {
    const s2f_codeval *code;
    s2f_coding coding;       /* valid when code->value has content */
    s2f_fhir_fragment frag;  /* unit, system, code (compact) */
} units_entry;

/* observations.c's caches (one per conversion). */
struct s2f_fhir_observations {
    s2f_hindex units;          /* Quantity units codes serialized once, */
    units_entry *units_last;   /* and the last one written */
    const void *device_of;     /* the algorithm or device observer (NULL: equipment) */
    int device_known;          /* whose Device the last Observation referenced: */
    s2f_rid device;            /* its identity */
    const s2f_group *refs_of;  /* the group whose derivedFrom member */
    s2f_fhir_fragment refs;    /* its children copy is this */
};

s2f_fhir_observations *s2f_fhir_observations_new(s2f_arena *a)
{
    return s2f_arena_calloc(a, 1, sizeof(s2f_fhir_observations));
}

#define PROFILE_GROUP S2F_PROFILE_BASE "imaging-measurement-group"
#define PROFILE_MEASUREMENT S2F_PROFILE_BASE "imaging-measurement"
#define PROFILE_EVALUATION S2F_PROFILE_BASE "imaging-qualitative-evaluation"
#define PROFILE_DERIVED S2F_PROFILE_BASE "derived-imaging-measurement"

#define SYSTEM_UMLS "http://terminology.hl7.org/CodeSystem/umls"
#define SYSTEM_DAR "http://terminology.hl7.org/CodeSystem/data-absent-reason"
#define DAR_EXTENSION "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
#define SYSTEM_DICOM_UID "urn:dicom:uid"

/* ---- small helpers ----------------------------------------------------------------------- */

static int stopped(const s2f_fhir *f)
{
    return f->code != S2F_OK;
}

static void out_of_memory(s2f_fhir *f)
{
    if (f->code == S2F_OK)
        f->code = s2f_fail(f->err, S2F_ELIMIT, "FHIR stage: out of memory writing an Observation");
}

static int nonempty(const char *s)
{
    return s && *s;
}

static int is_code(const s2f_codeval *c, const char *value, const char *scheme)
{
    return c && c->value && c->scheme && strcmp(c->value, value) == 0 &&
           strcmp(c->scheme, scheme) == 0;
}

static int has_code(const s2f_codeval *c)
{
    return c && nonempty(c->value);
}

/* { "reference": "urn:uuid:..." } as an array element. */
static void reference_value(s2f_fhir *f, const s2f_rid *rid)
{
    s2f_fhir_reference(f, NULL, rid);
}

/* "key": { "reference": ... } */
static void reference_member(s2f_fhir *f, s2f_json_lit key, const s2f_rid *rid)
{
    s2f_fhir_reference(f, &key, rid);
}

/* A fixed CodeableConcept as an array element: { "coding": [ {system, code, display} ] }. */
static void concept_fixed_value(s2f_fhir *f, const char *system, const char *code,
                                const char *display)
{
    s2f_json *j = f->json;
    s2f_json_begin_object(j);
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("coding"));
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "system", system);
    s2f_json_kv_string(j, "code", code);
    s2f_json_kv_string(j, "display", display);
    s2f_json_end_object(j);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
}

/* "category": [ fixed concept ] */
static void category_fixed(s2f_fhir *f, const char *system, const char *code, const char *display)
{
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("category"));
    concept_fixed_value(f, system, code, display);
    s2f_json_end_array(f->json);
}

/* "code": the concept name of an item (M23); an item without one (malformed, the reader
 * warned) still needs Observation.code 1..1: its value type as text. */
static void item_code(s2f_fhir *f, s2f_json_lit key, const s2f_item *it)
{
    if (it->concept && has_code(it->concept)) {
        s2f_fhir_codeable_lit(f, key, it->concept);
    } else {
        s2f_json_kv_begin_object(f->json, key.name);
        s2f_json_kv_string(f->json, "text", it->concept && nonempty(it->concept->meaning)
                                                ? it->concept->meaning
                                                : s2f_vt_name(it->vt));
        s2f_json_end_object(f->json);
    }
}

/* Observation.dataAbsentReason = unknown (a value the profile requires is missing). */
static void data_absent_unknown(s2f_fhir *f)
{
    s2f_json_lit_begin_object(f->json, S2F_JSON_LIT("dataAbsentReason"));
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("coding"));
    s2f_json_begin_object(f->json);
    s2f_json_kv_string(f->json, "system", SYSTEM_DAR);
    s2f_json_kv_string(f->json, "code", "unknown");
    s2f_json_kv_string(f->json, "display", "Unknown");
    s2f_json_end_object(f->json);
    s2f_json_end_array(f->json);
    s2f_json_end_object(f->json);
}

/* ---- elements shared by the four kinds ---------------------------------------------------- */

/* M18 (decision): whether the tracking ids become identifiers of the Observation, i.e. no
 * BodyStructure made from `site` carries them. In R4 there is no BodyStructure (M25). */
static int tracking_as_identifiers(const s2f_fhir *f, const s2f_site *site, const char *tid,
                                   const char *tuid)
{
    if (!nonempty(tid) && !nonempty(tuid))
        return 0;
    if (f->opt.r4 || !site || !site->site)
        return 1;
    return !s2f_report_has_body_structure(site, tid, tuid);
}

/* identifier: M11 Observation UID, then the M18 tracking ids when `tracking` is set. */
static void write_identifiers(s2f_fhir *f, const s2f_item *it, const char *tid,
                              const char *tuid, int tracking)
{
    s2f_json *j = f->json;
    int uid = nonempty(it->observation_uid);
    if (!uid && !tracking)
        return;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("identifier"));
    if (uid)
        s2f_fhir_observation_uid(f, it->observation_uid);
    if (tracking && nonempty(tid)) {
        s2f_json_begin_object(j);
        s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "112039", "Tracking Identifier");
        s2f_json_kv_string(j, "value", tid);
        s2f_json_end_object(j);
    }
    if (tracking && nonempty(tuid)) {
        const char *oid = s2f_fhir_oid(f, tuid);
        if (!oid) {
            out_of_memory(f);
        } else {
            s2f_json_begin_object(j);
            s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "112040",
                                    "Tracking Unique Identifier");
            s2f_json_kv_string(j, "system", SYSTEM_DICOM_UID);
            s2f_json_kv_string(j, "value", oid);
            s2f_json_end_object(j);
        }
    }
    s2f_json_end_array(j);
}

/* basedOn (M6), partOf (M5), status (M8). */
static void write_head(s2f_fhir *f)
{
    s2f_fhir_observation_head(f);
}

/* subject (M4), effectiveDateTime and issued: the same moment (M9), performer (M10). */
static void write_subject_time_performers(s2f_fhir *f, const s2f_context *ctx)
{
    s2f_fhir_subject(f, "subject");
    if (ctx->subject && ctx->subject->cls != S2F_SUBJECT_PATIENT) {
        /* M16, issue 10 #4: subject stays the patient; the fetus, specimen or device the
         * observation is about is its focus (FHIR R5 Observation.focus) */
        s2f_rid rid;
        s2f_fhir_subject_rid(f, ctx->subject, &rid);
        s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("focus"));
        reference_value(f, &rid);
        s2f_json_end_array(f->json);
    }
    s2f_fhir_effective_issued(f, ctx->observation_dt);
    /* M10: Person observers are performers (Practitioner). Device observers are not: R5
     * Observation.performer cannot reference a Device; a device observer is the
     * Observation's device unless the item names its own algorithm (M22, write_device).
     * Observers with the same identity (same person twice) are referenced once. */
    int open = 0;
    for (size_t i = 0; i < ctx->n_observers && !stopped(f); i++) {
        s2f_rid rid;
        if (!s2f_fhir_performer_rid(f, ctx, i, &rid))
            continue;
        if (!open) {
            s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("performer"));
            open = 1;
        }
        reference_value(f, &rid);
    }
    if (open)
        s2f_json_end_array(f->json);
}

/* M18: a finding site alone -> bodySite (FHIR-47941); with laterality, a modifier or
 * tracking ids -> a reference to the BodyStructure (R5). R4 (M25): bodySite = the site. */
static void write_site(s2f_fhir *f, const s2f_site *site, const char *tid, const char *tuid)
{
    if (!site || !site->site)
        return;
    if (!f->opt.r4 && s2f_report_has_body_structure(site, tid, tuid)) {
        s2f_rid rid;
        s2f_fhir_body_structure_rid(f, site, tid, tuid, &rid);
        reference_member(f, S2F_JSON_LIT("bodyStructure"), &rid);
    } else {
        s2f_fhir_codeable(f, "bodySite", site->site);
    }
}

/* M22 (issue 10 defect 6): the Device the report model chose (s2f_applied_device,
 * report.h: own algorithm, else the device observer of the observer context, else the M7
 * equipment; never the group's algorithm). A device observer equal to the equipment is
 * the equipment Device (ids.c). */
static void write_device(s2f_fhir *f, const s2f_applied_device *d)
{
    const void *of = d->kind == S2F_DEVICE_ALGORITHM  ? (const void *)d->algorithm
                     : d->kind == S2F_DEVICE_OBSERVER ? (const void *)d->observer
                                                      : NULL;
    s2f_fhir_observations *c = f->observations;
    if (!c->device_known || c->device_of != of) { /* most share one: kept */
        if (d->kind == S2F_DEVICE_ALGORITHM)
            s2f_fhir_algorithm_rid(f, d->algorithm, &c->device);
        else if (d->kind == S2F_DEVICE_OBSERVER)
            s2f_fhir_observer_rid(f, d->observer, &c->device);
        else
            s2f_fhir_equipment_rid(f, &c->device);
        c->device_of = of;
        c->device_known = !stopped(f);
    }
    reference_member(f, S2F_JSON_LIT("device"), &c->device);
}

/* ImagingSelection references (M19) as array elements; none in R4 (M25). */
static void selection_refs(s2f_fhir *f, const s2f_image_ref *refs, size_t n)
{
    if (f->opt.r4)
        return;
    for (size_t i = 0; i < n && !stopped(f); i++) {
        s2f_rid rid;
        if (!s2f_fhir_refs_is_resource(&refs[i]))
            continue;
        s2f_fhir_selection_rid(f, &refs[i], &rid);
        reference_value(f, &rid);
    }
}

/* "derivedFrom": the group's ImagingSelections (M19), copied to each child that has no
 * references of its own: the same member for all of them, serialized once per group
 * (compact output; groups are written one after the other). */
static void group_refs_members(s2f_fhir *f, void *group)
{
    const s2f_group *g = group;
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("derivedFrom"));
    selection_refs(f, g->refs, g->n_refs);
    s2f_json_end_array(f->json);
}

static void group_refs_member(s2f_fhir *f, const s2f_group *g)
{
    if (f->observations->refs_of != g) { /* another group: its own fragment */
        f->observations->refs_of = g;
        f->observations->refs = (s2f_fhir_fragment){0};
    }
    s2f_fhir_cached_members(f, &f->observations->refs, group_refs_members, (void *)g);
}

/* M12: the source-sr-content-item selection of an item with an Observation UID (R5 only). */
static int has_source_item(const s2f_fhir *f, const s2f_item *it)
{
    return !f->opt.r4 && nonempty(it->observation_uid);
}

static void source_item_ref(s2f_fhir *f, const s2f_item *it)
{
    s2f_rid rid;
    s2f_fhir_source_item_rid(f, it, &rid);
    reference_value(f, &rid);
}

/* ---- values ------------------------------------------------------------------------------- */

/* M20: the data-absent-reason code for a Numeric Value Qualifier (DICOM CID 42). */
static const char *qualifier_reason(const s2f_codeval *q)
{
    if (!q || !q->scheme || strcmp(q->scheme, "DCM") != 0 || !q->value)
        return "unknown";
    static const struct { const char *code, *reason; } map[] = {
        {"114000", "not-a-number"},      /* Not a number */
        {"114001", "negative-infinity"}, /* Negative Infinity */
        {"114002", "positive-infinity"}, /* Positive Infinity */
        {"114003", "error"},             /* Divide by zero */
        {"114004", "error"},             /* Underflow */
        {"114005", "error"},             /* Overflow */
        {"114006", "error"},             /* Measurement failure */
        {"114007", "error"},             /* Measurement not attempted */
        {"114008", "error"},             /* Calculation failure */
        {"114009", "error"},             /* Value out of range */
        {"114010", "unknown"},           /* Value unknown */
        {"114011", "unknown"},           /* Value indeterminate */
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(q->value, map[i].code) == 0)
            return map[i].reason;
    return "unknown";
}

/* A report's measurements share a few units codes (the reader gives equal codes one
 * pointer): each one's Coding is made once (units_entry, in the caches above), and its
 * members serialized once (compact output) and copied after that. */
static int same_units(const void *entry, const void *code)
{
    return ((const units_entry *)entry)->code == code;
}

/* unit, system, code of a Quantity from the Measurement Units Code Sequence (M20, M23). */
static void units_members(s2f_fhir *f, void *entry)
{
    const units_entry *e = entry;
    const s2f_codeval *u = e->code;
    s2f_json *j = f->json;
    if (nonempty(u->meaning))
        s2f_json_kv_string(j, "unit", u->meaning);
    else if (nonempty(u->value))
        s2f_json_kv_string(j, "unit", u->value);
    /* Quantity qty-3: a code needs a system */
    if (nonempty(u->value) && nonempty(e->coding.system) && nonempty(e->coding.code)) {
        s2f_json_kv_string(j, "system", e->coding.system);
        s2f_json_kv_string(j, "code", e->coding.code);
    }
}

/* The entry of units code u, made the first time; NULL when memory ran out. */
static units_entry *units_of(s2f_fhir *f, const s2f_codeval *u)
{
    s2f_sip sip;
    s2f_sip_init(&sip, s2f_hindex_key(&f->observations->units));
    s2f_sip_word(&sip, (uintptr_t)u);
    uint64_t h = s2f_sip_final(&sip);
    s2f_hslot *slot = s2f_hindex_find(&f->observations->units, f->arena, h, same_units, u);
    if (!slot || slot->entry)
        return slot ? slot->entry : NULL;
    units_entry *e = s2f_arena_calloc(f->arena, 1, sizeof *e);
    if (!e)
        return NULL;
    e->code = u;
    if (nonempty(u->value) &&
        s2f_codes_coding_from_dicom(u, f->h ? f->h->schemes : NULL, f->h ? f->h->n_schemes : 0,
                                    f->arena, &e->coding) != S2F_OK)
        return NULL;
    s2f_hindex_put(&f->observations->units, slot, h, e);
    return e;
}

static void write_units(s2f_fhir *f, const s2f_codeval *u)
{
    if (!u)
        return;
    s2f_fhir_observations *c = f->observations;
    units_entry *e = c->units_last && c->units_last->code == u ? c->units_last : units_of(f, u);
    c->units_last = e;
    if (!e) {
        out_of_memory(f);
        return;
    }
    s2f_fhir_cached_members(f, &e->frag, units_members, e);
    if (nonempty(u->value) && e->coding.fallback && f->stats)
        f->stats->fallback_codes++;
}

/* "valueQuantity": Quantity of a NUM item (M20): the Floating Point Value when present, else the
 * Numeric Value text kept exactly; otherwise only the unit and the data-absent-reason
 * extension. Never NaN or Infinity in JSON. */
static void write_quantity(s2f_fhir *f, const s2f_item *num)
{
    s2f_json *j = f->json;
    const char *reason = NULL;
    int use_float = 0, use_text = 0;
    /* issue 9 defect 9: a text that is no DS, or one no double holds (1e999), is never
     * written: data-absent (the reader warned) */
    const char *text = num->v.num.has_value && num->v.num.text_state == S2F_NUM_TEXT_OK
                           ? num->v.num.text : NULL;
    size_t text_len = text ? strlen(text) : 0;
    int text_number = text && s2f_json_decimal_is_number(text, text_len);
    int text_valid = text && (text_number || s2f_json_decimal_valid(text, text_len));
    if (num->v.num.has_value && num->v.num.has_float) {
        double fp = num->v.num.fp;
        if (isnan(fp))
            reason = "not-a-number";
        else if (isinf(fp))
            reason = fp > 0 ? "positive-infinity" : "negative-infinity";
        else if (text_valid && num->v.num.value == fp)
            use_text = text_number ? 2 : 1; /* M20, issue 10 defect 9: the same number, the
                                               DS text's significant digits ("10.0") */
        else
            use_float = 1;
    } else if (text_number) {
        use_text = 2; /* written as it is */
    } else if (text_valid) {
        use_text = 1;
    } else if (num->v.num.qualifier) {
        reason = qualifier_reason(num->v.num.qualifier);
    } else if (num->v.num.has_value && num->v.num.text) {
        reason = "error"; /* a Numeric Value that is not a decimal string or out of range */
    } else {
        reason = "unknown";
    }
    s2f_json_lit_begin_object(j, S2F_JSON_LIT("valueQuantity"));
    if (reason) {
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("extension"));
        s2f_json_begin_object(j);
        s2f_json_kv_string(j, "url", DAR_EXTENSION);
        s2f_json_kv_string(j, "valueCode", reason);
        s2f_json_end_object(j);
        s2f_json_end_array(j);
    }
    if (use_float)
        s2f_json_kv_double(j, "value", num->v.num.fp);
    else if (use_text == 2 && !f->opt.pretty)
        s2f_json_lit_raw(j, S2F_JSON_LIT("value"), text, text_len);
    else if (use_text)
        s2f_json_lit_decimal(j, S2F_JSON_LIT("value"), text);
    write_units(f, num->v.num.units);
    s2f_json_end_object(j);
}

/* "interpretation": the Numeric Value Qualifier beside a value (M20, issue 10 defect 3;
 * e.g. 250 with DCM 114009 "Value out of range"). The guide maps no element for it;
 * Observation.interpretation ("a categorical assessment of an observation value") is the
 * R5 (and R4) element that qualifies a value, on an Observation and on a component alike,
 * and its extensible binding admits the DICOM code (docs/decisions.md). A qualifier
 * without a value stays the data-absent-reason it maps to (write_quantity). */
static void write_qualifier(s2f_fhir *f, const s2f_item *num)
{
    const s2f_codeval *q = num->v.num.qualifier;
    if (!num->v.num.has_value || !q || !has_code(q))
        return;
    s2f_json *j = f->json;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("interpretation"));
    s2f_json_begin_object(j);
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("coding"));
    s2f_fhir_coding(f, q);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
    s2f_json_end_array(j);
}

/* ---- DICOM DA / TM / DT -> FHIR date, time, dateTime -------------------------------------- */

static int digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

static int two(const char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* "YYYY[MM[DD]]" (4, 6 or 8 digits) -> "YYYY[-MM[-DD]]" into out (>= 11 bytes): 0, or -1
 * when the text is not one. */
static int fhir_date(const char *p, size_t n, char *out, size_t size)
{
    if ((n != 4 && n != 6 && n != 8) || !digits(p, n))
        return -1;
    if (n >= 6 && (two(p + 4) < 1 || two(p + 4) > 12))
        return -1;
    if (n == 8 && (two(p + 6) < 1 || two(p + 6) > 31))
        return -1;
    if (n == 4)
        snprintf(out, size, "%.4s", p);
    else if (n == 6)
        snprintf(out, size, "%.4s-%.2s", p, p + 4);
    else
        snprintf(out, size, "%.4s-%.2s-%.2s", p, p + 4, p + 6);
    return 0;
}

/* "HH[MM[SS[.F{1,6}]]]" -> "hh:mm:ss[.f]" (missing minutes and seconds are 00): 0, or -1
 * when the text is not one. */
static int fhir_time(const char *p, size_t n, char *out, size_t size)
{
    size_t main_n = n;
    const char *dot = memchr(p, '.', n);
    if (dot)
        main_n = (size_t)(dot - p);
    if ((main_n != 2 && main_n != 4 && main_n != 6) || !digits(p, main_n))
        return -1;
    if (dot && (main_n != 6 || n - main_n < 2 || n - main_n > 7 ||
                !digits(dot + 1, n - main_n - 1)))
        return -1;
    const char *mm = main_n >= 4 ? p + 2 : "00", *ss = main_n >= 6 ? p + 4 : "00";
    if (two(p) > 23 || two(mm) > 59 || two(ss) > 60)
        return -1;
    snprintf(out, size, "%.2s:%.2s:%.2s%.*s", p, mm, ss, (int)(n - main_n),
             dot ? dot : "");
    return 0;
}

/* "+HHMM" / "-HHMM" -> "+HH:MM" into out (7 bytes): 0, or -1 when the text is not one. */
static int fhir_zone(const char *z, size_t n, char *out)
{
    if (n != 5 || (z[0] != '+' && z[0] != '-') || !digits(z + 1, 4) || two(z + 1) > 14 ||
        two(z + 3) > 59)
        return -1;
    snprintf(out, 7, "%c%.2s:%.2s", z[0], z + 1, z + 3);
    return 0;
}

/* DICOM DT -> FHIR dateTime: a date alone keeps its precision; with a time, seconds and a
 * zone are required by FHIR: the DT's own offset, else the document's Timezone Offset From
 * UTC, else the user's zone, else UTC (as M9). Arena string, NULL when not a valid DT. */
static const char *fhir_datetime(s2f_fhir *f, const char *dt)
{
    size_t n = strlen(dt);
    while (n && dt[n - 1] == ' ')
        n--;
    const char *zone = NULL;
    size_t zn = 0;
    for (size_t i = 0; i < n; i++)
        if (dt[i] == '+' || dt[i] == '-') {
            zone = dt + i;
            zn = n - i;
            n = i;
            break;
        }
    char date[16], time[32], z[8];
    size_t dn = n < 8 ? n : 8;
    if (fhir_date(dt, dn, date, sizeof date) != 0)
        return NULL;
    if (zone && fhir_zone(zone, zn, z) != 0)
        return NULL;
    if (n == dn)
        return s2f_arena_strdup(f->arena, date);
    if (dn != 8 || fhir_time(dt + 8, n - 8, time, sizeof time) != 0)
        return NULL;
    if (!zone) {
        const char *dz = f->h && nonempty(f->h->timezone) ? f->h->timezone : f->opt.timezone;
        if (!dz || fhir_zone(dz, strlen(dz), z) != 0)
            snprintf(z, sizeof z, "+00:00");
    }
    return s2f_arena_printf(f->arena, "%sT%s%s", date, time, z);
}

/* ---- components (M20) --------------------------------------------------------------------- */

/* The text form of an item without a FHIR value type of its own (arena string or NULL). */
static const char *text_form(s2f_fhir *f, const s2f_item *it)
{
    switch (it->vt) {
    case S2F_VT_COMPOSITE: case S2F_VT_IMAGE: case S2F_VT_WAVEFORM:
        return nonempty(it->v.ref.sop_instance) ? s2f_fhir_oid(f, it->v.ref.sop_instance) : NULL;
    case S2F_VT_SCOORD: case S2F_VT_SCOORD3D: {
        if (!it->v.coord.graphic_type)
            return NULL;
        size_t size = strlen(it->v.coord.graphic_type) + 2 + (size_t)it->v.coord.n * 18;
        char *s = s2f_arena_alloc(f->arena, size);
        if (!s)
            return NULL;
        size_t len = (size_t)snprintf(s, size, "%s", it->v.coord.graphic_type);
        for (uint32_t i = 0; i < it->v.coord.n && len < size; i++)
            len += (size_t)snprintf(s + len, size - len, "%s%.9g", i ? "," : " ",
                                    (double)it->v.coord.data[i]);
        return s;
    }
    case S2F_VT_TCOORD:
        return it->v.tcoord.range_type;
    default:
        return NULL;
    }
}

static void write_component(s2f_fhir *f, const s2f_item *c)
{
    s2f_json *j = f->json;
    char buf[40];
    s2f_json_begin_object(j);
    item_code(f, S2F_JSON_LIT("code"), c);
    switch (c->vt) {
    case S2F_VT_CODE:
        if (has_code(&c->v.code))
            s2f_fhir_codeable(f, "valueCodeableConcept", &c->v.code);
        break;
    case S2F_VT_NUM:
        write_quantity(f, c);
        write_qualifier(f, c);
        break;
    case S2F_VT_TEXT: case S2F_VT_UIDREF: case S2F_VT_PNAME:
        if (nonempty(c->v.text))
            s2f_json_kv_string(j, "valueString", c->v.text);
        break;
    case S2F_VT_DATETIME: {
        if (!nonempty(c->v.text))
            break;
        const char *dt = fhir_datetime(f, c->v.text);
        if (dt)
            s2f_json_kv_string(j, "valueDateTime", dt);
        else
            s2f_json_kv_string(j, "valueString", c->v.text);
        break;
    }
    case S2F_VT_DATE:
        if (!nonempty(c->v.text))
            break;
        if (fhir_date(c->v.text, strlen(c->v.text), buf, sizeof buf) == 0 &&
            strlen(c->v.text) == 8)
            s2f_json_kv_string(j, "valueDateTime", buf);
        else
            s2f_json_kv_string(j, "valueString", c->v.text);
        break;
    case S2F_VT_TIME:
        if (!nonempty(c->v.text))
            break;
        if (fhir_time(c->v.text, strlen(c->v.text), buf, sizeof buf) == 0)
            s2f_json_kv_string(j, "valueTime", buf);
        else
            s2f_json_kv_string(j, "valueString", c->v.text);
        break;
    default: {
        const char *t = text_form(f, c);
        if (nonempty(t))
            s2f_json_kv_string(j, "valueString", t);
        break;
    }
    }
    s2f_json_end_object(j);
}

static void write_components(s2f_fhir *f, const s2f_measurement *m)
{
    if (!m->n_components)
        return;
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("component"));
    for (size_t i = 0; i < m->n_components && !stopped(f); i++)
        write_component(f, m->components[i]);
    s2f_json_end_array(f->json);
}

/* ---- the group (M17, M18, M19, M12) ------------------------------------------------------- */

void s2f_fhir_write_group(s2f_fhir *f, const s2f_group *g)
{
    if (stopped(f))
        return;
    s2f_json *j = f->json;
    s2f_rid rid;
    s2f_fhir_group_rid(f, g, &rid);
    s2f_fhir_begin_entry(f, &rid, PROFILE_GROUP);

    write_identifiers(f, g->item, g->tracking_id, g->tracking_uid,
                      tracking_as_identifiers(f, &g->site, g->tracking_id, g->tracking_uid));
    write_head(f);

    /* M17: code = Finding Category, else DCM 125007. M17 amended (decision): category
     * DCM 125007 only when the code is a Finding Category, since the guide's invariant
     * measurement-group-category says "code = DCM#125007 implies category.not().exists()". */
    const s2f_codeval *category = g->finding_category;
    if (!has_code(category) || is_code(category, "125007", "DCM"))
        category = NULL;
    if (category) {
        category_fixed(f, S2F_SYSTEM_DCM, "125007", "Measurement Group");
        s2f_fhir_codeable(f, "code", category);
    } else {
        s2f_fhir_codeable_fixed(f, "code", S2F_SYSTEM_DCM, "125007", "Measurement Group");
    }
    write_subject_time_performers(f, &g->ctx);

    if (has_code(g->finding)) /* M17 Finding */
        s2f_fhir_codeable(f, "valueCodeableConcept", g->finding);
    write_site(f, &g->site, g->tracking_id, g->tracking_uid); /* M18 */
    if (g->applied_method) /* M17 Measurement Method */
        s2f_fhir_codeable(f, "method", g->applied_method);
    write_device(f, &g->applied_device); /* M22 */

    /* M17 hasMember: every measurement and evaluation of the group, in document order
     * (both lists are in document order: merge them by the items' pre-order number). */
    if (g->n_measurements + g->n_evaluations) {
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("hasMember"));
        size_t im = 0, ie = 0;
        while ((im < g->n_measurements || ie < g->n_evaluations) && !stopped(f)) {
            s2f_rid member;
            if (ie >= g->n_evaluations ||
                (im < g->n_measurements &&
                 g->measurements[im].item->seq < g->evaluations[ie].item->seq))
                s2f_fhir_measurement_rid(f, &g->measurements[im++], &member);
            else
                s2f_fhir_evaluation_rid(f, &g->evaluations[ie++], &member);
            reference_value(f, &member);
        }
        s2f_json_end_array(j);
    }

    /* M19 image references, M12 source SR content item; none in R4 (M25: no
     * ImagingSelection; the ImagingStudy is referenced from partOf as always). */
    int source = has_source_item(f, g->item);
    if (!f->opt.r4 && (g->n_refs || source)) {
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("derivedFrom"));
        selection_refs(f, g->refs, g->n_refs);
        if (source)
            source_item_ref(f, g->item);
        s2f_json_end_array(j);
    }
    s2f_fhir_end_entry(f, &rid);
}

/* ---- measurements (M20) and derived measurements (M14) ------------------------------------ */

static void write_num_observation(s2f_fhir *f, const s2f_measurement *m, const s2f_group *group,
                                  int derived)
{
    if (stopped(f))
        return;
    s2f_json *j = f->json;
    s2f_rid rid;
    s2f_fhir_measurement_rid(f, m, &rid);
    s2f_fhir_begin_entry(f, &rid, derived ? PROFILE_DERIVED : PROFILE_MEASUREMENT);

    /* M20: the NUM's own finding site, else its group's. The BodyStructure's tracking ids
     * (M18, issue 10 defect 7): for its own site its own ones; a site of its own that is not
     * the group's does not carry the group's ids (no two BodyStructures carry one tracking
     * identifier); the group's site (or the same site) the group's. The report model makes
     * that choice once (s2f_measurement.applied_site); convert.c writes the BodyStructure
     * from it. Derived measurements have no group (M14). */
    const char *site_tid = m->applied_tracking_id, *site_tuid = m->applied_tracking_uid;
    const s2f_site *site = m->applied_site;
    /* the NUM's own tracking ids (TID 300) are identifiers unless its own BodyStructure
     * carries them (M18 decision) */
    int own_ids = (nonempty(m->tracking_id) || nonempty(m->tracking_uid)) &&
                  tracking_as_identifiers(f, site == &m->site ? &m->site : NULL,
                                          site == &m->site ? site_tid : m->tracking_id,
                                          site == &m->site ? site_tuid : m->tracking_uid);
    write_identifiers(f, m->item, m->tracking_id, m->tracking_uid, own_ids);
    write_head(f);
    if (derived) /* M14: the profile fixes category DCM 126011 */
        category_fixed(f, S2F_SYSTEM_DCM, "126011", "Derived Imaging Measurements");
    /* imaging-measurement fixes no category: none is written */
    item_code(f, S2F_JSON_LIT("code"), m->item);
    write_subject_time_performers(f, &m->ctx);
    if (m->item->vt == S2F_VT_NUM) {
        write_quantity(f, m->item);
        write_qualifier(f, m->item);
    }
    write_site(f, site, site_tid, site_tuid);
    if (m->applied_method) /* M20: its own method, else its group's (report model) */
        s2f_fhir_codeable(f, "method", m->applied_method);
    write_device(f, &m->applied_device); /* M22: never the group's algorithm */

    if (derived) {
        /* M14: the groups it is derived from, M12 its source SR content item, its own
         * image references (M19) */
        int source = has_source_item(f, m->item);
        size_t own_refs = f->opt.r4 ? 0 : m->n_refs;
        if (m->n_groups || source || own_refs) {
            s2f_json_lit_begin_array(j, S2F_JSON_LIT("derivedFrom"));
            for (size_t i = 0; i < m->n_groups && !stopped(f); i++) {
                s2f_rid gr;
                s2f_fhir_group_rid(f, m->groups[i], &gr);
                reference_value(f, &gr);
            }
            if (source)
                source_item_ref(f, m->item);
            selection_refs(f, m->refs, m->n_refs);
            s2f_json_end_array(j);
        }
    } else if (!f->opt.r4 && !m->n_refs && group && group->n_refs) {
        group_refs_member(f, group); /* M19: the group's references, copied to each child */
    } else if (!f->opt.r4 && (m->n_refs || (group && group->n_refs))) {
        /* M19: its own references, then the group's, copied to each child */
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("derivedFrom"));
        selection_refs(f, m->refs, m->n_refs);
        if (group)
            selection_refs(f, group->refs, group->n_refs);
        s2f_json_end_array(j);
    }
    write_components(f, m); /* M20: modifiers no rule consumed */
    s2f_fhir_end_entry(f, &rid);
}

void s2f_fhir_write_measurement(s2f_fhir *f, const s2f_measurement *m, const s2f_group *group)
{
    write_num_observation(f, m, group, 0);
}

void s2f_fhir_write_derived(s2f_fhir *f, const s2f_measurement *m)
{
    write_num_observation(f, m, NULL, 1);
}

/* ---- qualitative evaluations (M21, M15) --------------------------------------------------- */

void s2f_fhir_write_evaluation(s2f_fhir *f, const s2f_evaluation *e, const s2f_group *group)
{
    if (stopped(f))
        return;
    s2f_json *j = f->json;
    const s2f_item *it = e->item;
    s2f_rid rid;
    s2f_fhir_evaluation_rid(f, e, &rid);
    s2f_fhir_begin_entry(f, &rid, PROFILE_EVALUATION);
    write_identifiers(f, it, NULL, NULL, 0); /* M11 */
    write_head(f);
    category_fixed(f, SYSTEM_UMLS, "C0034375", "Qualitative Evaluations");
    item_code(f, S2F_JSON_LIT("code"), it);
    write_subject_time_performers(f, &e->ctx);
    /* M21: the CODE value, or {"text": ...} for TEXT (FHIR-47485). The profile requires
     * valueCodeableConcept; an item without a value gets dataAbsentReason instead. */
    if (it->vt == S2F_VT_CODE && has_code(&it->v.code)) {
        s2f_fhir_codeable(f, "valueCodeableConcept", &it->v.code);
    } else if (it->vt == S2F_VT_TEXT && nonempty(it->v.text)) {
        s2f_json_lit_begin_object(j, S2F_JSON_LIT("valueCodeableConcept"));
        s2f_json_kv_string(j, "text", it->v.text);
        s2f_json_end_object(j);
    } else {
        data_absent_unknown(f);
    }
    write_device(f, &e->applied_device); /* M22 */
    if (group && group->n_refs && !f->opt.r4) /* M19: the group's references */
        group_refs_member(f, group);
    s2f_fhir_end_entry(f, &rid);
}
