/*
 * fhircast.h - the internal half of the FHIRcast client (issue 15, sr2fhir_cast.h): the
 * pure steps the session is made of, unit-tested on their own (tests/unit/test_fhircast.c):
 * reading a Get Current Context answer, matching it to an SR, building the update Bundle
 * from a converted Bundle.
 */
#ifndef S2F_FHIRCAST_H
#define S2F_FHIRCAST_H

#include <json-c/json.h>
#include <stddef.h>

#include "sr2fhir.h"

#define S2F_CAST_MAX_IDS 16
#define S2F_CAST_ID_MAX 256

/* What a DiagnosticReport context says of its report, patient and study (the -open
 * event's context array, as Get Current Context returns it). Strings are "" when absent. */
typedef struct s2f_cast_context {
    char type[64];                      /* context.type; "" when no context is current */
    char version[S2F_CAST_ID_MAX];      /* context.versionId */
    char report_id[S2F_CAST_ID_MAX];    /* the `report` DiagnosticReport's id */
    char patient_id[S2F_CAST_ID_MAX];   /* the `patient` Patient's id */
    char study_id[S2F_CAST_ID_MAX];     /* the `study` ImagingStudy's id */
    /* the Patient's identifiers (system may be ""), the ImagingStudy's Study Instance UIDs */
    char patient_system[S2F_CAST_MAX_IDS][S2F_CAST_ID_MAX], patient_value[S2F_CAST_MAX_IDS][S2F_CAST_ID_MAX];
    size_t n_patient;
    char study_uid[S2F_CAST_MAX_IDS][S2F_CAST_ID_MAX];
    size_t n_study;
} s2f_cast_context;

/* What the SR's Bundle says of its patient and study (its Observations' subject
 * identifier and partOf ImagingStudy identifier). */
typedef struct s2f_cast_subject {
    char patient_system[S2F_CAST_ID_MAX], patient_value[S2F_CAST_ID_MAX];
    char study_uid[S2F_CAST_ID_MAX];
} s2f_cast_subject;

/* Reads a Get Current Context answer (any JSON: hostile). S2F_EFORMAT when it is not an
 * object with a context array. */
s2f_code s2f_cast_context_read(const char *body, size_t len, s2f_cast_context *ctx, s2f_error *err);

/* Reads the SR's patient identifier and Study Instance UID from its converted Bundle.
 * S2F_ELOOKUP when the Bundle has no Observation with both. */
s2f_code s2f_cast_subject_read(json_object *bundle, s2f_cast_subject *sub, s2f_error *err);

/*
 * 1 when ctx is a DiagnosticReport context with a report id and a patient id, one of whose
 * Patient identifiers equals the SR's (value equal; system equal when both give one), and
 * whose ImagingStudy has the SR's Study Instance UID; else 0 with why (one line) in
 * why[cap].
 */
int s2f_cast_matches(const s2f_cast_context *ctx, const s2f_cast_subject *sub, char *why, size_t cap);

/*
 * The `updates` Bundle (type transaction, id bundle_id) of a converted Bundle: a PUT
 * (request.url "Type/id") of every Observation and of every ImagingSelection,
 * BodyStructure and Device an Observation (or one of these) references; references to the
 * Bundle's entries (urn:uuid: fullUrls) rewritten to "Type/id". NULL when memory ran out;
 * *count the entries.
 */
json_object *s2f_cast_updates(json_object *bundle, const char *bundle_id, size_t *count);

#endif
