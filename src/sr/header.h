/*
 * header.h - the document-level attributes of an SR (MAPPING section 2): patient and
 * issuers, study, series, SOP, equipment, completion/verification flags, dates and
 * timezone, the evidence sequences, and the coding schemes the document declares.
 * Read once from the top-level data set into decoded UTF-8 strings.
 */
#ifndef S2F_HEADER_H
#define S2F_HEADER_H

#include <stddef.h>

#include "dicom/dataset.h"
#include "sr/text.h"

/* An issuer: (0010,0021)-style local name plus Universal Entity ID and its type. */
typedef struct s2f_issuer {
    const char *local;        /* Local Namespace Entity ID or Issuer of Patient ID */
    const char *universal;    /* Universal Entity ID (0040,0032) */
    const char *universal_type; /* Universal Entity ID Type (0040,0033): DNS EUI64 ISO ... */
} s2f_issuer;

/* One instance listed in an evidence sequence (0040,A375 / 0040,A385). */
typedef struct s2f_evidence {
    const char *study_uid, *series_uid, *sop_class, *sop_instance;
    int pertinent_other;      /* 1: from Pertinent Other Evidence Sequence */
} s2f_evidence;

/* A coding scheme declared in Coding Scheme Identification Sequence (0008,0110). */
typedef struct s2f_scheme_decl {
    const char *designator, *registry, *uid, *url, *name, *version, *external_id;
} s2f_scheme_decl;

/* How many studies, series and instances one evidence sequence lists. */
typedef struct s2f_evidence_count {
    size_t studies, series, instances;
} s2f_evidence_count;

/* An entry of the Participant Sequence (0040,A07A), document-level participation (M10). */
typedef struct s2f_participant {
    const char *participation_type;  /* (0040,A080): SOURCE, ENT, ATTEST */
    int is_device;                   /* Observer Type (0040,A084) DEV; else PSN */
    const char *person_name;         /* (0040,A123) */
    const char *device_uid;          /* (0018,1002) */
    const char *station_name;        /* (0008,1010) */
    const char *manufacturer;        /* (0008,0070) */
    const char *model;               /* (0008,1090) */
    const char *serial;              /* (0018,1000) */
} s2f_participant;

typedef struct s2f_header {
    const char *sop_class, *sop_instance, *charset;
    const char *patient_name, *patient_id, *birth_date, *sex;
    s2f_issuer patient_issuer;
    const char *study_uid, *study_id, *study_date, *study_time;
    const char *accession;
    s2f_issuer accession_issuer;
    const char *series_uid, *series_number, *modality;
    const char *manufacturer, *model, *device_uid, *device_serial, *software_versions;
    const char **udi; size_t n_udi;
    const char *preliminary, *completion, *verification;
    const char *content_date, *content_time, *timezone;
    s2f_evidence *evidence; size_t n_evidence;
    s2f_evidence_count current_evidence, pertinent_evidence;
    s2f_scheme_decl *schemes; size_t n_schemes;
    s2f_participant *participants; size_t n_participants;
} s2f_header;

/* Fills h from the top-level data set. Fails only when memory runs out. */
s2f_code s2f_header_read(const s2f_ds *top, s2f_text *t, s2f_header *h, s2f_error *err);

/* The evidence entry naming this SOP Instance UID, or NULL. */
const s2f_evidence *s2f_header_find_evidence(const s2f_header *h, const char *sop_instance);

#endif
