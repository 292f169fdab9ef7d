/*
 * report.h - the TID 1500 Measurement Report model (stage 3 of the pipeline): the SR
 * content tree read as a Measurement Report, between the tree (src/sr) and FHIR (src/fhir).
 *
 * It answers the questions the FHIR stage asks (MAPPING sections 3 and 4): which items are
 * measurement groups, measurements, qualitative evaluations and derived measurements; what
 * each one's finding, finding site, method, algorithm and image references are; and what
 * observation context (observers, Observation DateTime) holds for it, inherited down the
 * tree and overridden inside it (PS3.3 C.17.5). Items no rule consumes are listed (M26).
 *
 * The model points into the document (tree items, codes, strings) and lives in the
 * document's arena: it is valid as long as the document.
 */
#ifndef S2F_REPORT_H
#define S2F_REPORT_H

#include <stddef.h>

#include "sr/document.h"

/* One observer of TID 1002 (M10): a person or a device. */
typedef struct s2f_observer {
    int is_device;
    const char *person_name;          /* DCM 121008, PN text */
    const char *organization;         /* DCM 121009 */
    const char *person_id;            /* DCM 128775 Identifier within Person Observer's
                                         Role (under 121011), issue 10 defect 7 */
    const char *device_uid;           /* DCM 121012 */
    const char *device_name;          /* DCM 121013 */
    const char *device_manufacturer;  /* DCM 121014 */
    const char *device_model;         /* DCM 121015 */
    const char *device_serial;        /* DCM 121016 */
    const s2f_item *item;             /* the first item describing it */
} s2f_observer;

/* Subject context, TID 1006 (M16, issue 10 defect 4): whom the observations are about
 * when it is not the patient. Subject Class DCM 121024 and its TID 1008-1010 items. */
typedef enum s2f_subject_class {
    S2F_SUBJECT_PATIENT = 0,          /* DCM 121025: the patient, nothing to add */
    S2F_SUBJECT_FETUS,                /* DCM 121026, TID 1008 */
    S2F_SUBJECT_SPECIMEN,             /* DCM 121027, TID 1009 */
    S2F_SUBJECT_DEVICE                /* DCM 121192, TID 1010 */
} s2f_subject_class;

typedef struct s2f_subject {
    s2f_subject_class cls;
    const char *uid;                  /* Subject UID 121028 / Specimen UID 121039 /
                                         Device Subject UID 121198 */
    const char *id;                   /* Subject ID 121030 / Specimen Identifier 121041 /
                                         Device Subject Name 121193 */
    const char *fetus_number;         /* Fetus Number 121037 (NUM text) */
    const s2f_codeval *specimen_type; /* Specimen Type SCT 371439000 */
    const char *manufacturer, *model, *serial; /* Device Subject 121194-121196 */
    const s2f_item *item;             /* the Subject Class item */
} s2f_subject;

/* Observation context in force for an item: inherited, or overridden (PS3.3 C.17.5). */
typedef struct s2f_context {
    const s2f_observer *observers;    /* the observers of the nearest container that names any */
    size_t n_observers;
    const char *observation_dt;       /* Observation DateTime of the item or its nearest
                                         ancestor (M9); NULL: use Content Date/Time */
    const s2f_subject *subject;       /* the nearest Subject Context; NULL: the patient */
} s2f_context;

/* Algorithm Identification, TID 4019 (M22). */
typedef struct s2f_algorithm {
    const char *name;                 /* DCM 111001 */
    const char *version;              /* DCM 111003 */
    const char **parameters;          /* DCM 111002, in order */
    size_t n_parameters;
    const s2f_codeval *family;        /* DCM 111000 */
    const s2f_item *item;             /* the first of its items */
} s2f_algorithm;

/* The Device an Observation references (M22, issue 10 defect 6): the item's own
 * algorithm, else the first device observer of its observer context (M10; the guide's
 * Document IE ConceptMap: a participant device may override the EquipmentDevice), else the
 * M7 equipment. Never the group's algorithm. Derived once (issue 14), read by both passes
 * of the FHIR stage. */
typedef enum s2f_device_kind {
    S2F_DEVICE_EQUIPMENT = 0,         /* the M7 equipment Device */
    S2F_DEVICE_ALGORITHM,             /* .algorithm */
    S2F_DEVICE_OBSERVER               /* .observer, a device observer (is_device) */
} s2f_device_kind;

typedef struct s2f_applied_device {
    s2f_device_kind kind;
    const s2f_algorithm *algorithm;   /* S2F_DEVICE_ALGORITHM only, else NULL */
    const s2f_observer *observer;     /* S2F_DEVICE_OBSERVER only, else NULL */
} s2f_applied_device;

/* Finding site with its modifiers (M18). */
typedef struct s2f_site {
    const s2f_codeval *site;          /* SCT 363698007 value */
    const s2f_codeval *laterality;    /* SCT 272741003 value */
    const s2f_codeval *modifier;      /* SCT 106233006 value */
    const s2f_item *item;
} s2f_site;

/* The kinds of image reference of M19, each an ImagingSelection profile. */
typedef enum s2f_ref_kind {
    S2F_REF_REGION_2D,                /* Image Region DCM 111030 as SCOORD */
    S2F_REF_REGION_3D,                /* Image Region DCM 111030 as SCOORD3D */
    S2F_REF_SEGMENT,                  /* Referenced Segment DCM 121191 */
    S2F_REF_SOURCE_IMAGE_FOR_SEG,     /* Source image for segmentation DCM 121233 */
    S2F_REF_SOURCE_SERIES_FOR_SEG,    /* Source series for segmentation DCM 121232 */
    S2F_REF_SEGMENTATION_FRAME,       /* Referenced Segmentation Frame DCM 121214 */
    S2F_REF_REGION_IN_SPACE,          /* Region In Space DCM 130488 */
    S2F_REF_VOLUME_SURFACE,           /* Volume Surface DCM 121231 */
    S2F_REF_REAL_WORLD_VALUE_MAP,     /* Real World Value Map DCM 126100 */
    S2F_REF_ILLUSTRATION_OF_ROI,      /* Illustration of ROI DCM 121200 */
    S2F_REF_VISUAL_EXPLANATION,       /* Visual Explanation DCM 130401 */
    S2F_REF_REGION_OF_MEASUREMENT     /* a SCOORD/SCOORD3D a NUM is INFERRED FROM (dcmjs) */
} s2f_ref_kind;

typedef struct s2f_image_ref {
    s2f_ref_kind kind;
    const s2f_item *item;             /* the SCOORD / SCOORD3D / IMAGE / COMPOSITE / UIDREF */
    const s2f_item *image;            /* for regions: the IMAGE it is SELECTED FROM, if any */
} s2f_image_ref;

typedef struct s2f_group s2f_group;

/* A NUM: an imaging measurement (M20) or a derived imaging measurement (M14). */
typedef struct s2f_measurement {
    const s2f_item *item;
    const s2f_codeval *method;        /* its own Measurement Method SCT 370129005 */
    s2f_site site;                    /* its own finding site (site.site NULL: none) */
    const s2f_algorithm *algorithm;   /* its own algorithm, NULL: none (no inheritance, M22) */
    const char *tracking_id;          /* its own DCM 112039 / 112040 (TID 300 allows them) */
    const char *tracking_uid;
    const s2f_item **components;      /* concept modifiers, properties and INFERRED FROM
                                         values no rule consumed (M20) */
    size_t n_components;
    s2f_image_ref *refs;              /* its own image references (INFERRED FROM regions) */
    size_t n_refs;
    s2f_context ctx;
    s2f_group **groups;               /* derived only: the groups it is derived from (M14) */
    size_t n_groups;
    /* Derived once, when the model is read (M20/M18, issue 10 defect 7), for both passes of
     * the FHIR stage: the site that applies to the measurement and the tracking ids its
     * BodyStructure carries. Its own site with its own tracking ids; its own site equal to
     * the group's, or none, the group's site with the group's ids; its own other site
     * without the group's ids (another structure than the tracked lesion). NULL: no site. */
    const s2f_site *applied_site;
    const char *applied_tracking_id, *applied_tracking_uid;
    /* Derived once (issue 14): the method that applies (M17/M20: its own Measurement
     * Method, else its group's; derived measurements have no group; NULL: none, or a code
     * with an empty value) and the Device its Observation references (M22). */
    const s2f_codeval *applied_method;
    s2f_applied_device applied_device;
} s2f_measurement;

/* A CODE or TEXT qualitative evaluation (M21, M15). */
typedef struct s2f_evaluation {
    const s2f_item *item;
    const s2f_algorithm *algorithm;
    s2f_context ctx;
    s2f_applied_device applied_device; /* derived once (issue 14): M22 */
} s2f_evaluation;

/* A Measurement Group container DCM 125007 (M17). */
struct s2f_group {
    const s2f_item *item;
    const s2f_codeval *finding;          /* DCM 121071 value */
    const s2f_codeval *finding_category; /* SCT 276214006 value */
    const s2f_codeval *method;           /* SCT 370129005 value */
    const char *tracking_id;             /* DCM 112039 */
    const char *tracking_uid;            /* DCM 112040 */
    s2f_site site;
    const s2f_algorithm *algorithm;
    s2f_measurement *measurements;
    size_t n_measurements;
    s2f_evaluation *evaluations;
    size_t n_evaluations;
    s2f_image_ref *refs;
    size_t n_refs;
    s2f_context ctx;
    int derived;                         /* 1: under Derived Imaging Measurements (M14) */
    /* Derived once (issue 14): its method (NULL: none, or an empty code value; M17) and
     * the Device its Observation references (M22). */
    const s2f_codeval *applied_method;
    s2f_applied_device applied_device;
};

typedef struct s2f_report {
    const s2f_doc *doc;
    const s2f_item *root;
    const s2f_codeval *language;           /* DCM 121049 */
    const s2f_codeval *procedure_reported; /* DCM 121058 (first) */
    s2f_context ctx;                       /* the document's own observation context */
    s2f_group **groups;                    /* all measurement groups, document order */
    size_t n_groups;
    s2f_measurement *derived;              /* derived imaging measurements (M14) */
    size_t n_derived;
    s2f_evaluation *evaluations;           /* document-level qualitative evaluations (M15) */
    size_t n_evaluations;
    const s2f_item **unmapped;             /* consumed by no rule (M26), document order */
    size_t n_unmapped;
    const char *const *rule_of;            /* by item->seq: the S2F_RULE_* that consumed the
                                              item, NULL when none did (M26, issue 10 #5) */
} s2f_report;

/* The rules that consume content items (M26): what s2f_report.rule_of holds. */
#define S2F_RULE_CONTAINER "M13-M15 container"
#define S2F_RULE_ROOT_CONTEXT "M16 root context"
#define S2F_RULE_OBSERVER "M10 observer"
#define S2F_RULE_GROUP "M17 group"
#define S2F_RULE_TRACKING "M18 tracking id"
#define S2F_RULE_SITE "M18 finding site"
#define S2F_RULE_SITE_DETAIL "M18 site laterality/modifier" /* BodyStructure only (not R4) */
#define S2F_RULE_IMAGE_REF "M19 image reference"           /* ImagingSelection (not R4) */
#define S2F_RULE_MEASUREMENT "M20 measurement"
#define S2F_RULE_COMPONENT "M20 component"
#define S2F_RULE_EVALUATION "M21 evaluation"
#define S2F_RULE_ALGORITHM "M22 algorithm"
#define S2F_RULE_SUBJECT "M16 subject context"

/*
 * M2: checks that the document is a TID 1500 Measurement Report (an SR SOP class, root
 * CONTAINER DCM 126000 or Content Template TID 1500 DCMR), then reads the model.
 * Fails with S2F_ENOTTID1500 and "not a TID 1500 Measurement Report: ..." otherwise.
 */
s2f_code s2f_report_read(const s2f_doc *doc, s2f_report *out, s2f_error *err);

/* Issue 10 defect 4: a Subject Class (DCM 121024) this converter cannot place is refused
 * with S2F_EUNSUPPORTED ("subject context ...") rather than filed against the patient. */

/* M18: whether a site with these tracking ids makes a BodyStructure: a site with a
 * laterality, a modifier or a tracking id (else the site is a plain code of the
 * Observation). */
int s2f_report_has_body_structure(const s2f_site *site, const char *tracking_id,
                                  const char *tracking_uid);

#endif
