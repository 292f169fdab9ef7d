/*
 * codes.h - DICOM coded concepts -> FHIR Codings (MAPPING rule M23).
 *
 * A DICOM code is the triplet (Code Value, Coding Scheme Designator, Code Meaning) plus an
 * optional Coding Scheme Version; a FHIR Coding is (system URI, code, display, version).
 * The system comes from the designator:
 *
 *  1. Designators of DICOM PS3.16 Table 8-1 (and HL7 symbolic names DICOM allows) that have
 *     a FHIR / HL7 Terminology (THO) URI use it: DCM, SCT, LN, UCUM, UMLS, NCIt, RADLEX,
 *     FMA, MSH, I10, I10C, I10P, I9C, I11, ICDO3, RFC5646 (and RFC3066), ISO3166_1,
 *     ISO639_1, MDC, HGNC, RXNORM, NDC, C4, ATC, UBERON, SRT. Schemes of Table 8-1 with a
 *     registered OID but no URI (ACR, ASTM-sigpurpose, SNM3) use "urn:oid:" + OID, as FHIR
 *     prescribes for such systems. Designators compare case-sensitively (PS3.3 8.2), but the
 *     spellings real producers use for the same scheme are accepted: "RadLex", "Radlex"
 *     (RADLEX), "NCIT" (NCIt).
 *  2. SRT (legacy SNOMED-RT ids such as T-28000) is translated to the SNOMED CT concept id
 *     with the table DICOM PS3.16 publishes (srt_table.h, generated): system
 *     http://snomed.info/sct, `translated` = 1, no version (an SRT version says nothing about
 *     SCT). Codes without a mapping stay under http://snomed.info/srt with their SRT id.
 *     SNM3 (SNOMED 3.x, whose ids DICOM re-issued unchanged as SRT) and SRT-style ids
 *     written under SCT (not all digits) are translated the same way when the table has
 *     them; otherwise SNM3 keeps urn:oid:2.16.840.1.113883.6.51 and SCT passes through.
 *  3. DCMUID (DICOM UIDs used as codes): system urn:ietf:rfc:3986, code "urn:oid:" + UID,
 *     the form the guide uses for SOP Class UIDs (M19).
 *  4. Any other designator (private "99..." schemes, unknown ones): when the document's
 *     Coding Scheme Identification Sequence (0008,0110) declares it, its Coding Scheme URL
 *     (0008,010E), else "urn:oid:" + Coding Scheme UID (0008,010C) - unless that UID is the
 *     OID of a scheme of step 1, whose URI is then used. Not declared, or declared without
 *     URL and UID: the documented fallback S2F_CODING_FALLBACK_PREFIX + designator
 *     (percent-encoded), `fallback` = 1, for the caller to report (docs/decisions.md).
 *  5. URN Code Value (0008,0120) with no designator (PS3.3 8.8 allows that): the URN is a
 *     self-describing concept identifier, so system urn:ietf:rfc:3986 and code = the URN.
 *     With a designator it is treated like any other code value. Long Code Value is a code
 *     value like any other.
 *
 * Code Meaning becomes display, Coding Scheme Version becomes version (both NULL when empty).
 * No global mutable state; the tables are static const. Strings returned point into the
 * arena, into the s2f_codeval / s2f_scheme_decl given, or to static data.
 */
#ifndef S2F_CODES_H
#define S2F_CODES_H

#include <stddef.h>

#include "sr2fhir.h"
#include "util/arena.h"
#include "sr/content.h"
#include "sr/header.h"

/* The documented fallback system for undeclared unknown schemes: this prefix + the
 * designator, percent-encoded. A URN in the project's own namespace: it claims nothing
 * about DICOM's or anyone else's namespace and keeps the designator readable. */
#define S2F_CODING_FALLBACK_PREFIX "urn:sr2fhir:coding-scheme:"

#define S2F_SYSTEM_SCT "http://snomed.info/sct"
#define S2F_SYSTEM_SRT "http://snomed.info/srt"
#define S2F_SYSTEM_DCM "http://dicom.nema.org/resources/ontology/DCM"
#define S2F_SYSTEM_UCUM "http://unitsofmeasure.org"
#define S2F_SYSTEM_URI "urn:ietf:rfc:3986"

/* A FHIR Coding. */
typedef struct s2f_coding {
    const char *system;      /* URI; NULL only when the designator is empty and the code is
                                not a URN (fallback is then 1) */
    const char *code;        /* never NULL ("" when the DICOM code had no value) */
    const char *display;     /* Code Meaning, NULL when empty */
    const char *version;     /* Coding Scheme Version, NULL when empty or translated */
    const char *designator;  /* the Coding Scheme Designator as written ("" when absent) */
    int translated;          /* 1: SRT/SNM3 id translated to a SNOMED CT concept id */
    int fallback;            /* 1: unknown, undeclared scheme: system is the fallback */
    int declared;            /* 1: system taken from the Coding Scheme Identification Seq. */
} s2f_coding;

/* M23: the Coding for a DICOM code. `schemes` are the document's Coding Scheme
 * Identification Sequence entries (may be NULL when n_schemes is 0). Returns S2F_OK;
 * S2F_ELIMIT when the arena refuses memory; S2F_EUSAGE when c or out is NULL. On failure
 * *out (when not NULL) is zeroed with code "". */
s2f_code s2f_codes_coding_from_dicom(const s2f_codeval *c, const s2f_scheme_decl *schemes,
                                     size_t n_schemes, s2f_arena *a, s2f_coding *out);

/* The system URI of a designator of the table (aliases included), NULL when not in the
 * table or NULL. SRT gives http://snomed.info/srt (untranslated codes). */
const char *s2f_codes_system(const char *designator);

/* The SNOMED CT concept id of a legacy SNOMED-RT id ("T-28000" -> "39607008"), NULL when
 * the table has no mapping or srt_code is NULL. */
const char *s2f_codes_srt_to_sct(const char *srt_code);

/* The system URI of a scheme of the table given by its OID ("2.16.840.1.113883.6.96" ->
 * http://snomed.info/sct), NULL when unknown. */
const char *s2f_codes_system_by_oid(const char *oid);

/* Number of SRT->SCT pairs in the generated table (tests, reports). */
size_t s2f_codes_srt_table_size(void);

/* 0 when the static tables are strictly sorted (binary search is valid); else the 1-based
 * index of the first entry out of order (designators: positive, SRT table: negative). */
long s2f_codes_check_tables(void);

#endif
