/*
 * subjects.c - the subject of observations other than the patient (TID 1006 Subject
 * Context, M16, issue 10 defect 4): the resource an Observation's focus references.
 *
 * FHIR R5 Observation.focus is for "...such as a spouse, parent, fetus, or donor" while
 * subject stays the patient (the mother, for a fetus). Decisions (docs/decisions.md):
 *  - Fetus (TID 1008) -> BodyStructure, as FHIR's own fetus example: includedStructure
 *    SCT 83418008 "Entire fetus", patient = the patient, identifier = Subject UID
 *    (urn:dicom:uid) and Subject ID (type DCM 121030), description = the Fetus Number.
 *  - Specimen (TID 1009) -> Specimen: identifier = Specimen UID and Specimen Identifier,
 *    type = Specimen Type, subject = the patient.
 *  - Device (TID 1010) -> Device: identifier = Device Subject UID, displayName = its name,
 *    manufacturer, modelNumber, serialNumber.
 * The guide has no profile for these: no meta.profile. Identity (M24 amended, issue 10 #7
 * follow-up): they outlive one report, so the id comes from the business identity
 * (s2f_fhir_subject_identity in ids.c); a device subject equal to the equipment or a
 * device observer is that same Device (one set of s2f_fhir_first_time, the first writer
 * wins). Without such an identity the id is scoped to the SR and the Subject Class item's
 * position.
 * R4 (M25, issue 10 #4 follow-up): Observation.focus exists there too (0..*, Reference(Any)),
 * and so do BodyStructure, Specimen and Device; the fetus's structure is BodyStructure.location
 * (R4 has no includedStructure) and the device's name a deviceName of type
 * user-friendly-name (R4 has no displayName); the rest is written alike.
 */
#include <string.h>

#include "fhir/fhir.h"

static int nonempty(const char *s) { return s && *s; }

/* "identifier": the UID (urn:dicom:uid) and the identifier text with its DICOM concept. */
static void write_identifiers(s2f_fhir *f, const char *uid, const char *id, const char *code,
                              const char *display)
{
    s2f_json *j = f->json;
    if (!nonempty(uid) && !nonempty(id))
        return;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("identifier"));
    if (nonempty(uid)) {
        s2f_json_begin_object(j);
        s2f_json_kv_string(j, "system", "urn:dicom:uid");
        s2f_json_kv_string(j, "value", s2f_fhir_oid(f, uid));
        s2f_json_end_object(j);
    }
    if (nonempty(id)) {
        s2f_json_begin_object(j);
        s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, code, display);
        s2f_json_kv_string(j, "value", id);
        s2f_json_end_object(j);
    }
    s2f_json_end_array(j);
}

static void write_fetus(s2f_fhir *f, const s2f_subject *s)
{
    s2f_json *j = f->json;
    write_identifiers(f, s->uid, s->id, "121030", "Subject ID");
    if (nonempty(s->fetus_number)) {
        const char *d = s2f_arena_printf(f->arena, "Fetus Number %s", s->fetus_number);
        s2f_json_kv_string(j, "description", d);
    }
    if (f->opt.r4) { /* R4 BodyStructure: location (0..1 CodeableConcept), no includedStructure */
        s2f_fhir_codeable_fixed(f, "location", "http://snomed.info/sct", "83418008",
                                "Entire fetus (body structure)");
    } else {
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("includedStructure"));
        s2f_json_begin_object(j);
        s2f_fhir_codeable_fixed(f, "structure", "http://snomed.info/sct", "83418008",
                                "Entire fetus (body structure)");
        s2f_json_end_object(j);
        s2f_json_end_array(j);
    }
    s2f_fhir_subject(f, "patient"); /* M4: the mother */
}

static void write_specimen(s2f_fhir *f, const s2f_subject *s)
{
    write_identifiers(f, s->uid, s->id, "121041", "Specimen Identifier");
    if (s->specimen_type)
        s2f_fhir_codeable(f, "type", s->specimen_type);
    s2f_fhir_subject(f, "subject");
}

static void write_device(s2f_fhir *f, const s2f_subject *s)
{
    s2f_json *j = f->json;
    write_identifiers(f, s->uid, NULL, NULL, NULL);
    if (f->opt.r4 && nonempty(s->id)) { /* R4 has no displayName: deviceName {name, type} */
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("deviceName"));
        s2f_json_begin_object(j);
        s2f_json_kv_string(j, "name", s->id);
        s2f_json_kv_string(j, "type", "user-friendly-name");
        s2f_json_end_object(j);
        s2f_json_end_array(j);
    } else if (!f->opt.r4) {
        s2f_json_kv_string(j, "displayName", nonempty(s->id) ? s->id : NULL);
    }
    s2f_json_kv_string(j, "manufacturer", nonempty(s->manufacturer) ? s->manufacturer : NULL);
    s2f_json_kv_string(j, "modelNumber", nonempty(s->model) ? s->model : NULL);
    s2f_json_kv_string(j, "serialNumber", nonempty(s->serial) ? s->serial : NULL);
}

void s2f_fhir_write_subject(s2f_fhir *f, const s2f_subject *s)
{
    if (f->code || !s || s->cls == S2F_SUBJECT_PATIENT)
        return;
    const char *set, *key;
    s2f_rid rid;
    s2f_fhir_subject_identity(f, s, &set, &key, &rid);
    if (f->code || !key || !s2f_fhir_first_time(f, set, key))
        return;
    s2f_fhir_begin_entry(f, &rid, NULL);
    if (s->cls == S2F_SUBJECT_FETUS)
        write_fetus(f, s);
    else if (s->cls == S2F_SUBJECT_SPECIMEN)
        write_specimen(f, s);
    else
        write_device(f, s);
    s2f_fhir_end_entry(f, &rid);
}
