/*
 * fhir.h - the FHIR stage (stage 4): a TID 1500 report model -> one FHIR Bundle, written
 * as it goes through the streaming JSON writer (MAPPING rules M4-M26).
 *
 * Calls run one way (issue 14, scripts/check-calls.sh): the driver calls the resource
 * writers, which call the shared pieces, which call the JSON writer:
 *   convert.c       the driver: which resources a report makes, in which order, each once
 *   observations.c  the Observations: groups, measurements, evaluations, derived (M13-M22)
 *   selections.c    the ImagingSelections (M12, M19)
 *   resources.c     Devices, Practitioners, BodyStructures (M7, M10, M18, M22)
 *   subjects.c      subjects other than the patient (M16)
 *   ids.c           every identity (M24), with its caches
 *   refs.c          which image references become ImagingSelections (M19)
 *   entries.c       the Bundle entries and the set of resources written, with its caches
 *   diagnostic_report.c  the SR's DiagnosticReport (issue 15, --diagnostic-report)
 *   common.c        elements every Observation shares: subject, basedOn, partOf, status,
 *                   issued/effective, performer, codings (M4-M9, M11, M23)
 *
 * Identity (M24): every resource's id is the UUID v5 of the SR SOP Instance UID, a kind and
 * a key (uuid.h): the content item position for resources made from one item, a canonical
 * text of the content for shared ones, so the same SR always gives the same ids, and
 * references can be computed without lookup. Resources that outlive one report take their
 * id from their business identity instead, not from the SR (issue 10 defect 7,
 * resources.c): a lesion's BodyStructure (patient + Tracking UID), a Device (Device UID,
 * else manufacturer + model + serial; an algorithm: name + version + parameters), a
 * Practitioner (name + identifier within the role), so a follow-up report updates them. The
 * Bundle entry's fullUrl is "urn:uuid:" + id; a transaction entry is a PUT to Type/id
 * (idempotent: sending the same SR twice creates nothing twice).
 */
#ifndef S2F_FHIR_H
#define S2F_FHIR_H

#include <stddef.h>

#include "report/report.h"
#include "json/writer.h"
#include "util/hindex.h"
#include "fhir/codes.h"
#include "fhir/uuid.h"

#define S2F_PROFILE_BASE "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
/* The system the guide's ImagingSelection profiles fix for instance.sopClass (the code is
 * the bare SOP Class UID): M19 amended, see docs/decisions.md. */
#define S2F_SYSTEM_SOP_CLASS "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5"

typedef struct s2f_fhir_options {
    s2f_bundle_type bundle_type; /* sr2fhir.h */
    int r4;                  /* M25: FHIR R4 form, no R5-only resources or profiles */
    const char *timezone;    /* "+HHMM"/"-HHMM" for times without Timezone Offset From UTC
                                (M9); NULL = "+0000" */
    int pretty;              /* indented JSON */
    /* Literal references ("Patient/123") to resources found on the destination server
     * (M4-M6, delivery); NULL: the logical reference by identifier alone. */
    const char *patient_ref, *service_request_ref, *imaging_study_ref;
    int diagnostic_report;   /* issue 15: a DiagnosticReport for the SR, last in the Bundle */
} s2f_fhir_options;

/* Resource counts per type and what the conversion report (M26) needs. */
typedef struct s2f_fhir_stats {
    size_t observations, imaging_selections, body_structures, devices, practitioners;
    size_t unmapped;         /* content items no rule consumed (M26) */
    size_t fallback_codes;   /* codes of undeclared unknown schemes (M23) */
    size_t replaced_chars;   /* invalid UTF-8 replaced in the output (M3) */
    size_t diagnostic_reports; /* issue 15 */
} s2f_fhir_stats;

/* Kinds of resource identity: the "kind" of s2f_resource_uuid. Never contain '|'. */
#define S2F_KIND_OBSERVATION "observation"
#define S2F_KIND_SELECTION "imaging-selection"
#define S2F_KIND_SOURCE_ITEM "source-sr-content-item"
#define S2F_KIND_BODY_STRUCTURE "body-structure"
#define S2F_KIND_EQUIPMENT "device-equipment"
#define S2F_KIND_ALGORITHM "device-algorithm"
#define S2F_KIND_PARTICIPANT_DEVICE "device-participant"
#define S2F_KIND_PRACTITIONER "practitioner"
#define S2F_KIND_DIAGNOSTIC_REPORT "diagnostic-report" /* issue 15: one per SR, key "" */

/* A resource's identity: Type/id and "urn:uuid:" + id. */
typedef struct s2f_rid {
    const char *type;                   /* "Observation", ... */
    char id[S2F_UUID_STR_SIZE];
    char urn[S2F_UUID_URN_SIZE];
} s2f_rid;

/* Members serialized once and repeated (common.c). */
typedef struct s2f_fhir_fragment {
    const char *text;        /* not NUL-terminated: len bytes */
    size_t len;
    size_t replaced;
    int failed;
} s2f_fhir_fragment;

#define S2F_POSITION_MAX 1024 /* an item key: "1.4.2" (longer ones are cut) */

/* The state and caches of each file of the stage, each an opaque type defined in the file
 * that uses it (issue 14): s2f_fhir holds the conversion's inputs and outputs. */
typedef struct s2f_fhir_ids s2f_fhir_ids;
typedef struct s2f_fhir_entries s2f_fhir_entries;
typedef struct s2f_fhir_common s2f_fhir_common;
typedef struct s2f_fhir_observations s2f_fhir_observations;
typedef struct s2f_fhir_driver s2f_fhir_driver;

/* The conversion context all files of the stage share (one per conversion, one thread). */

typedef struct s2f_fhir {
    const s2f_report *rep;
    const s2f_doc *doc;
    const s2f_header *h;
    s2f_arena *arena;        /* the document's arena: scratch strings, sets */
    s2f_json *json;
    s2f_fhir_options opt;
    s2f_fhir_stats *stats;
    s2f_error *err;
    s2f_code code;           /* first failure (sticky); writers stop once it is set */
    const char *sop_uid;     /* the SR's SOP Instance UID (header), "" if absent */
    s2f_fhir_ids *ids;       /* ids.c: the identities' scope and caches */
    s2f_fhir_entries *entries; /* entries.c: resources written, entry texts */
    s2f_fhir_common *common; /* common.c: values serialized once, the last instant */
    s2f_fhir_observations *observations; /* observations.c: units, the last device, refs */
    s2f_fhir_driver *driver; /* convert.c: what the driver wrote last */
} s2f_fhir;

/* ---- convert.c: the driver ------------------------------------------------------------ */

/* Writes the whole Bundle for `rep` to `out`. */
s2f_code s2f_fhir_write_bundle(const s2f_report *rep, const s2f_fhir_options *opt,
                               s2f_sink *out, s2f_fhir_stats *stats, s2f_error *err);

/* ---- ids.c: identities (M24) ----------------------------------------------------------- */

/* The identities' state for the SR `sop_uid` (arena); NULL when memory ran out. */
s2f_fhir_ids *s2f_fhir_ids_new(s2f_arena *a, const char *sop_uid);
/* Fills *rid for (type, kind, key) (M24). Sets f->code on failure. */
void s2f_fhir_rid(s2f_fhir *f, const char *type, const char *kind, const char *key, s2f_rid *rid);
/* The same for a resource that outlives one report (M24 amended, issue 10 defect 7): the
 * UUID v5 of "kind|key" in the business-identity namespace (uuid.h), not of the SR. */
void s2f_fhir_identity_rid(s2f_fhir *f, const char *type, const char *kind, const char *key,
                           s2f_rid *rid);
/* The key of a content item: its position "1.4.2" (arena string). */
const char *s2f_fhir_item_key(s2f_fhir *f, const s2f_item *it);
/* The identity of the Observation made from `it`: (Observation, observation, its key). */
void s2f_fhir_observation_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid);

/* The identity of a shared resource: `shared` when it comes from what the resource is
 * (the same in every report: s2f_fhir_identity_rid), else scoped to the SR (s2f_fhir_rid).
 * kind is also the set of s2f_fhir_first_time: the shared kinds differ from the SR-scoped
 * S2F_KIND_... ones. key NULL: memory ran out (f->code is set). */
typedef struct s2f_fhir_identity {
    const char *kind, *key;
    int shared;
} s2f_fhir_identity;
s2f_fhir_identity s2f_fhir_equipment_identity(s2f_fhir *f);                          /* M7 */
s2f_fhir_identity s2f_fhir_algorithm_identity(s2f_fhir *f, const s2f_algorithm *a);  /* M22 */
s2f_fhir_identity s2f_fhir_observer_identity(s2f_fhir *f, const s2f_observer *o);    /* M10 */
s2f_fhir_identity s2f_fhir_body_structure_identity(s2f_fhir *f, const s2f_site *site, /* M18 */
                                                   const char *tracking_id,
                                                   const char *tracking_uid);
/* The resource identity of an identity above. */
void s2f_fhir_rid_of_identity(s2f_fhir *f, const char *type, const s2f_fhir_identity *id,
                              s2f_rid *rid);
/* M10/M7: 1 when a device observer is the equipment Device (then nothing more is written). */
int s2f_fhir_observer_is_equipment(s2f_fhir *f, const s2f_observer *o);

void s2f_fhir_equipment_rid(s2f_fhir *f, s2f_rid *rid);                             /* M7 */
void s2f_fhir_algorithm_rid(s2f_fhir *f, const s2f_algorithm *a, s2f_rid *rid);      /* M22 */
void s2f_fhir_observer_rid(s2f_fhir *f, const s2f_observer *o, s2f_rid *rid);        /* M10 */
/* M10: 1 and rid = the Practitioner of ctx's observer i when it is a performer: a person
 * observer whose identity no earlier person observer of ctx has (the same person named twice
 * is one performer; device observers never are: FHIR allows no Device there); else 0. */
int s2f_fhir_performer_rid(s2f_fhir *f, const s2f_context *ctx, size_t i, s2f_rid *rid);
void s2f_fhir_body_structure_rid(s2f_fhir *f, const s2f_site *site, const char *tracking_id,
                                 const char *tracking_uid, s2f_rid *rid);          /* M18 */
void s2f_fhir_group_rid(s2f_fhir *f, const s2f_group *g, s2f_rid *rid);
void s2f_fhir_measurement_rid(s2f_fhir *f, const s2f_measurement *m, s2f_rid *rid);
void s2f_fhir_evaluation_rid(s2f_fhir *f, const s2f_evaluation *e, s2f_rid *rid);
void s2f_fhir_selection_rid(s2f_fhir *f, const s2f_image_ref *ref, s2f_rid *rid);   /* M19 */
/* The selection identity of a reference item that is not at hand as an s2f_image_ref. */
void s2f_fhir_item_selection_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid);
/* M12: the source-sr-content-item selection of a group or derived measurement item. */
void s2f_fhir_source_item_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid);
/* M16 (issue 10 #4/#7): a subject's identity: its business identity (patient + Subject
 * UID / ID, Specimen UID, Device UID or manufacturer + model + serial), else the Subject
 * Class item's position within the SR. *set and *key are those of s2f_fhir_first_time;
 * *key NULL when memory ran out. */
void s2f_fhir_subject_identity(s2f_fhir *f, const s2f_subject *s, const char **set,
                               const char **key, s2f_rid *rid);
void s2f_fhir_subject_rid(s2f_fhir *f, const s2f_subject *s, s2f_rid *rid);

/* ---- entries.c: the Bundle's entries ----------------------------------------------------- */

/* The entries' state (arena); NULL when memory ran out. */
s2f_fhir_entries *s2f_fhir_entries_new(s2f_arena *a);
/* Opens a Bundle entry (fullUrl, "resource": { "resourceType", "id", meta.profile when R5
 * and profile != NULL }); the caller writes the resource's other members, then calls
 * s2f_fhir_end_entry, which closes the resource and writes "request" for transactions. */
void s2f_fhir_begin_entry(s2f_fhir *f, const s2f_rid *rid, const char *profile);
void s2f_fhir_end_entry(s2f_fhir *f, const s2f_rid *rid);

/* 1 the first time `key` is seen in `set` (then the caller writes the resource), else 0:
 * shared resources are written once per Bundle. set: one of the S2F_KIND_... strings. */
int s2f_fhir_first_time(s2f_fhir *f, const char *set, const char *key);

/* ---- common.c ------------------------------------------------------------------------- */

/* common.c's caches (arena); NULL when memory ran out. */
s2f_fhir_common *s2f_fhir_common_new(s2f_arena *a);

/* "key": { "reference": "urn:uuid:..." }; key NULL: the object alone (an array element). */
void s2f_fhir_reference(s2f_fhir *f, const s2f_json_lit *key, const s2f_rid *rid);
/* A Coding object for a DICOM code (M23); counts fallback schemes. */
void s2f_fhir_coding(s2f_fhir *f, const s2f_codeval *c);
/* "key": { "coding": [ ... ] } for a DICOM code (M23); key: a string literal. */
void s2f_fhir_codeable_lit(s2f_fhir *f, s2f_json_lit key, const s2f_codeval *c);
#define s2f_fhir_codeable(f, key, c) s2f_fhir_codeable_lit((f), S2F_JSON_LIT(key), (c))
/* "key": { "coding": [ {system, code, display} ] } for a fixed code. */
void s2f_fhir_codeable_fixed(s2f_fhir *f, const char *key, const char *system,
                             const char *code, const char *display);
/* M4: the identifier system an issuer's Universal Entity ID names (ISO: urn:oid:, UUID:
 * urn:uuid:, URI as is), NULL when it names none; *oom = 1 when memory ran out. */
const char *s2f_fhir_issuer_system(s2f_arena *a, const s2f_issuer *is, int *oom);
/* M4 subject, M6 basedOn, M5 partOf: logical references by identifier, literal as well
 * when the options name the resource found on the server. */
void s2f_fhir_subject(s2f_fhir *f, const char *key);
void s2f_fhir_based_on(s2f_fhir *f);
void s2f_fhir_part_of(s2f_fhir *f);
/* M5: the logical (or literal) reference to the ImagingStudy, as a value (array element). */
void s2f_fhir_study_reference(s2f_fhir *f);
/* basedOn (M6), partOf (M5) and status (M8) of an Observation, in that order. */
void s2f_fhir_observation_head(s2f_fhir *f);
/* M9: effectiveDateTime and issued of an Observation (s2f_fhir_instant), when it has one. */
void s2f_fhir_effective_issued(s2f_fhir *f, const char *observation_dt);
/* Writes the members write(f, arg) writes, for members that repeat verbatim: in compact
 * output they are serialized into frag the first time (frag zeroed: not yet) and copied
 * from it after that; pretty output, or a fragment that could not be made, writes them
 * member by member (the same bytes). */
void s2f_fhir_cached_members(s2f_fhir *f, s2f_fhir_fragment *frag,
                             void (*write)(s2f_fhir *f, void *arg), void *arg);
/* M8: "status" of every Observation. */
const char *s2f_fhir_status(const s2f_fhir *f);
/* M9: the FHIR instant for an Observation DateTime (NULL: Content Date + Time), with the
 * document's Timezone Offset From UTC or the option's zone. Arena string, NULL when the
 * document has no usable date. */
const char *s2f_fhir_instant(s2f_fhir *f, const char *observation_dt);
/* M11: the observation-uid identifier object (inside an identifier array). */
void s2f_fhir_observation_uid(s2f_fhir *f, const char *uid);
/* "urn:oid:" + uid (arena string). */
const char *s2f_fhir_oid(s2f_fhir *f, const char *uid);

/* ---- resources.c ----------------------------------------------------------------------- */

/* The writers that put the resource in the Bundle (once each; identities: ids.c). */
void s2f_fhir_write_equipment(s2f_fhir *f);                                /* M7 */
void s2f_fhir_write_algorithm(s2f_fhir *f, const s2f_algorithm *a);        /* M22 */
void s2f_fhir_write_observer(s2f_fhir *f, const s2f_observer *o);          /* M10 */
/* M18 (s2f_report_has_body_structure says whether the site makes one) */
void s2f_fhir_write_body_structure(s2f_fhir *f, const s2f_site *site, const char *tracking_id,
                                   const char *tracking_uid);

/* ---- subjects.c: Subject Context other than the patient (M16, issue 10 defect 4) ------- */

void s2f_fhir_write_subject(s2f_fhir *f, const s2f_subject *s);

/* ---- refs.c: which image references become ImagingSelections (M19) ------------------ */

/* 1 when the reference becomes an ImagingSelection of its own: all but a Source series for
 * segmentation, which only gives the series of the source images (M19). */
int s2f_fhir_refs_is_resource(const s2f_image_ref *ref);
/* A sibling (same parent, by value) that is a Source image (IMAGE DCM 121233) or, series
 * set, a Source series (UIDREF DCM 121232) for segmentation. */
int s2f_fhir_refs_is_seg_source(const s2f_item *c, int series);
/* Whether a Source series for segmentation item is an ImagingSelection of its own (no
 * Source image for segmentation beside it, and its UID can be a seriesUid). */
int s2f_fhir_refs_series_is_own_selection(const s2f_item *series);

/* ---- selections.c ---------------------------------------------------------------------- */

void s2f_fhir_write_selection(s2f_fhir *f, const s2f_image_ref *ref);
/* M12: the source-sr-content-item selection of a group or derived measurement item. */
void s2f_fhir_write_source_item(s2f_fhir *f, const s2f_item *it);

/* ---- observations.c -------------------------------------------------------------------- */

/* observations.c's caches (arena); NULL when memory ran out. */
s2f_fhir_observations *s2f_fhir_observations_new(s2f_arena *a);

/* Each writes one Observation entry (and nothing else: convert.c writes what it refers
 * to). `group` is the group a measurement or evaluation belongs to (NULL: document level
 * or derived). */
void s2f_fhir_write_group(s2f_fhir *f, const s2f_group *g);
void s2f_fhir_write_measurement(s2f_fhir *f, const s2f_measurement *m, const s2f_group *group);
void s2f_fhir_write_evaluation(s2f_fhir *f, const s2f_evaluation *e, const s2f_group *group);
void s2f_fhir_write_derived(s2f_fhir *f, const s2f_measurement *m);

/* ---- diagnostic_report.c (issue 15) ---------------------------------------------------- */

/* The SR's DiagnosticReport entry: result = the group, derived and document-level
 * Observations (written before it). */
void s2f_fhir_write_diagnostic_report(s2f_fhir *f);

#endif
