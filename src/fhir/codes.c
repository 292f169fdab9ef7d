/*
 * codes.c - DICOM coded concepts -> FHIR Codings (MAPPING rule M23); see codes.h for the
 * rules. Two static const tables, both sorted in strcmp order and binary-searched: the
 * designators below and the generated SRT -> SCT table (srt_table.h, from DICOM PS3.16 via
 * pydicom; tools/gen_srt_table.py regenerates it).
 */
#include "fhir/codes.h"

#include <string.h>

#include "fhir/srt_table.h"

typedef struct scheme_entry {
    const char *designator; /* as DICOM PS3.16 Table 8-1 / HL7 Table 0396 spell it */
    const char *system;     /* FHIR / THO URI, or urn:oid: where the scheme has none */
    const char *oid;        /* registered OID for reverse lookup, NULL when not certain */
} scheme_entry;

/* Sorted by designator in strcmp order (checked by s2f_codes_check_tables and the tests). */
static const scheme_entry schemes_table[] = {
    {"ACR", "urn:oid:2.16.840.1.113883.6.76", "2.16.840.1.113883.6.76"},
    {"ASTM-sigpurpose", "urn:oid:1.2.840.10065.1.12", "1.2.840.10065.1.12"},
    {"ATC", "http://www.whocc.no/atc", "2.16.840.1.113883.6.73"},
    {"C4", "http://www.ama-assn.org/go/cpt", "2.16.840.1.113883.6.12"},
    {"DCM", S2F_SYSTEM_DCM, "1.2.840.10008.2.16.4"},
    {"DCMUID", S2F_SYSTEM_URI, "1.2.840.10008.2.6.1"},
    {"FMA", "http://purl.org/sig/ont/fma", "2.16.840.1.113883.6.119"},
    {"HGNC", "http://www.genenames.org", "2.16.840.1.113883.6.281"},
    {"I10", "http://hl7.org/fhir/sid/icd-10", "2.16.840.1.113883.6.3"},
    {"I10C", "http://hl7.org/fhir/sid/icd-10-cm", "2.16.840.1.113883.6.90"},
    {"I10P", "http://www.cms.gov/Medicare/Coding/ICD10", "2.16.840.1.113883.6.4"},
    {"I11", "http://id.who.int/icd/release/11/mms", NULL},
    {"I9C", "http://hl7.org/fhir/sid/icd-9-cm", NULL},
    {"ICDO3", "http://terminology.hl7.org/CodeSystem/icd-o-3", "2.16.840.1.113883.6.43.1"},
    {"ISO3166_1", "urn:iso:std:iso:3166", "1.0.3166.1.2.2"},
    {"ISO639_1", "urn:ietf:bcp:47", NULL},
    {"LN", "http://loinc.org", "2.16.840.1.113883.6.1"},
    {"MDC", "urn:iso:std:iso:11073:10101", "2.16.840.1.113883.6.24"},
    {"MSH", "https://www.nlm.nih.gov/mesh", "2.16.840.1.113883.6.177"},
    {"NCIt", "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "2.16.840.1.113883.3.26.1.1"},
    {"NDC", "http://hl7.org/fhir/sid/ndc", "2.16.840.1.113883.6.69"},
    {"RADLEX", "http://radlex.org", "2.16.840.1.113883.6.256"},
    {"RFC3066", "urn:ietf:bcp:47", NULL},
    {"RFC5646", "urn:ietf:bcp:47", NULL},
    {"RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm", "2.16.840.1.113883.6.88"},
    {"SCT", S2F_SYSTEM_SCT, "2.16.840.1.113883.6.96"},
    {"SNM3", "urn:oid:2.16.840.1.113883.6.51", "2.16.840.1.113883.6.51"},
    {"SRT", S2F_SYSTEM_SRT, NULL},
    {"UBERON", "http://purl.obolibrary.org/obo/uberon.owl", NULL},
    {"UCUM", S2F_SYSTEM_UCUM, "2.16.840.1.113883.6.8"},
    {"UMLS", "http://terminology.hl7.org/CodeSystem/umls", "2.16.840.1.113883.6.86"},
};
#define N_SCHEMES (sizeof schemes_table / sizeof schemes_table[0])

/* Spellings seen in real files for designators of the table (the IG's own example writes
 * "RadLex"). */
static const struct { const char *alias, *designator; } aliases[] = {
    {"NCIT", "NCIt"},
    {"RadLex", "RADLEX"},
    {"Radlex", "RADLEX"},
};

static const scheme_entry *find_scheme(const char *designator)
{
    if (!designator)
        return NULL;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(designator, aliases[i].alias) == 0) {
            designator = aliases[i].designator;
            break;
        }
    size_t lo = 0, hi = N_SCHEMES;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(designator, schemes_table[mid].designator);
        if (r == 0)
            return &schemes_table[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *s2f_codes_system(const char *designator)
{
    const scheme_entry *e = find_scheme(designator);
    return e ? e->system : NULL;
}

const char *s2f_codes_system_by_oid(const char *oid)
{
    if (!oid || !*oid)
        return NULL;
    for (size_t i = 0; i < N_SCHEMES; i++)
        if (schemes_table[i].oid && strcmp(schemes_table[i].oid, oid) == 0)
            return schemes_table[i].system;
    return NULL;
}

const char *s2f_codes_srt_to_sct(const char *srt_code)
{
    if (!srt_code)
        return NULL;
    size_t lo = 0, hi = S2F_SRT_TABLE_LEN;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(srt_code, s2f_srt_table[mid].srt);
        if (r == 0)
            return s2f_srt_table[mid].sct;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t s2f_codes_srt_table_size(void)
{
    return S2F_SRT_TABLE_LEN;
}

long s2f_codes_check_tables(void)
{
    for (size_t i = 1; i < N_SCHEMES; i++)
        if (strcmp(schemes_table[i - 1].designator, schemes_table[i].designator) >= 0)
            return (long)i + 1;
    for (size_t i = 1; i < S2F_SRT_TABLE_LEN; i++)
        if (strcmp(s2f_srt_table[i - 1].srt, s2f_srt_table[i].srt) >= 0)
            return -((long)i + 1);
    return 0;
}

/* The declaration of a designator in the Coding Scheme Identification Sequence. */
static const s2f_scheme_decl *find_decl(const char *designator, const s2f_scheme_decl *schemes,
                                        size_t n)
{
    if (!schemes)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (schemes[i].designator && strcmp(schemes[i].designator, designator) == 0)
            return &schemes[i];
    return NULL;
}

static int is_all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* RFC 3986 unreserved characters stay, everything else becomes %XX. */
static char *fallback_system(s2f_arena *a, const char *designator)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t plen = sizeof S2F_CODING_FALLBACK_PREFIX - 1, n = strlen(designator);
    char *out = s2f_arena_alloc(a, plen + 3 * n + 1);
    if (!out)
        return NULL;
    memcpy(out, S2F_CODING_FALLBACK_PREFIX, plen);
    char *p = out + plen;
    for (const unsigned char *s = (const unsigned char *)designator; *s; s++) {
        unsigned char ch = *s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = 0;
    return out;
}

s2f_code s2f_codes_coding_from_dicom(const s2f_codeval *c, const s2f_scheme_decl *schemes,
                                     size_t n_schemes, s2f_arena *a, s2f_coding *out)
{
    if (out) {
        memset(out, 0, sizeof *out);
        out->code = "";
        out->designator = "";
    }
    if (!c || !out)
        return S2F_EUSAGE;

    const char *designator = c->scheme ? c->scheme : "";
    const char *value = c->value ? c->value : "";
    out->designator = designator;
    out->code = value;
    out->display = nonempty(c->meaning);
    out->version = nonempty(c->version);

    const scheme_entry *e = find_scheme(designator);
    if (e) {
        const char *d = e->designator;
        out->system = e->system;
        if (strcmp(d, "SRT") == 0 || strcmp(d, "SNM3") == 0 ||
            (strcmp(d, "SCT") == 0 && *value && !is_all_digits(value))) {
            const char *sct = s2f_codes_srt_to_sct(value);
            if (sct) {
                out->system = S2F_SYSTEM_SCT;
                out->code = sct;
                out->version = NULL; /* an SRT/SNM3 version says nothing about SCT */
                out->translated = 1;
            }
        } else if (strcmp(d, "DCMUID") == 0 && *value && strncmp(value, "urn:", 4) != 0) {
            char *urn = s2f_arena_printf(a, "urn:oid:%s", value);
            if (!urn)
                goto nomem;
            out->code = urn;
        }
        return S2F_OK;
    }

    if (!*designator) {
        if (c->value_kind == 2 && *value) {  /* URN Code Value, no designator */
            out->system = S2F_SYSTEM_URI;
            return S2F_OK;
        }
        out->system = NULL;  /* nothing to build a system from */
        out->fallback = 1;
        return S2F_OK;
    }

    const s2f_scheme_decl *decl = find_decl(designator, schemes, n_schemes);
    if (decl && nonempty(decl->url)) {
        out->system = decl->url;
        out->declared = 1;
        return S2F_OK;
    }
    if (decl && nonempty(decl->uid)) {
        const char *known = s2f_codes_system_by_oid(decl->uid);
        if (known) {
            out->system = known;
        } else {
            char *urn = s2f_arena_printf(a, "urn:oid:%s", decl->uid);
            if (!urn)
                goto nomem;
            out->system = urn;
        }
        out->declared = 1;
        return S2F_OK;
    }
    out->system = fallback_system(a, designator);
    if (!out->system)
        goto nomem;
    out->fallback = 1;
    return S2F_OK;

nomem:
    memset(out, 0, sizeof *out);
    out->code = "";
    out->designator = "";
    return S2F_ELIMIT;
}
