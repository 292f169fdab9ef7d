/*
 * common.c - the elements every Observation of the FHIR stage shares (see fhir.h):
 * codings (M23), the logical references to the Patient, ServiceRequest and ImagingStudy
 * that live on the destination server (M4-M6), status (M8), the instant of an observation
 * (M9) and its Observation UID (M11).
 */
#include "fhir/fhir.h"
#include "util/hash.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define CONCEPT_MEMO_BITS 6

/* common.c's caches (one per conversion). */
struct s2f_fhir_common {
    const char *study_oid;   /* "urn:oid:" + Study Instance UID, made once */
    const char *instant_of, *instant; /* the last s2f_fhir_instant question and answer */
    int instant_known;
    s2f_fhir_fragment frag_subject, frag_based_on, frag_part_of, frag_head;
    const char *when_of, *when_members; /* the instant whose effective/issued members */
    size_t when_len;                    /* are when_members */
    s2f_hindex concepts;     /* CodeableConcepts serialized once, */
    struct s2f_concept_memo {
        const s2f_codeval *code;
        const void *entry;
    } concept_memo[1 << CONCEPT_MEMO_BITS]; /* and the last found by value address */
    s2f_sink *scratch;       /* memory sink where repeated values are serialized */
};

s2f_fhir_common *s2f_fhir_common_new(s2f_arena *a)
{
    return s2f_arena_calloc(a, 1, sizeof(s2f_fhir_common));
}

#define SYSTEM_V2_0203 "http://terminology.hl7.org/CodeSystem/v2-0203"
#define SYSTEM_ID_TYPE "http://hl7.org/fhir/uv/dicom-sr/CodeSystem/dicom-identifier-type"

static void fail_oom(s2f_fhir *f)
{
    if (!f->code)
        f->code = s2f_fail(f->err, S2F_ELIMIT, "out of memory while writing FHIR");
}

const char *s2f_fhir_oid(s2f_fhir *f, const char *uid)
{
    char *s = s2f_arena_concat(f->arena, "urn:oid:", uid ? uid : "");
    if (!s)
        fail_oom(f);
    return s;
}

void s2f_fhir_reference(s2f_fhir *f, const s2f_json_lit *key, const s2f_rid *rid)
{
    s2f_json *j = f->json;
    if (!f->opt.pretty) { /* compact: one piece, the URN needs no escaping */
        static const char head[] = "{\"reference\":\"";
        char text[sizeof head + S2F_UUID_URN_SIZE + 2];
        size_t n = S2F_UUID_URN_SIZE - 1; /* compute_rid fills all of it */
        memcpy(text, head, sizeof head - 1);
        memcpy(text + sizeof head - 1, rid->urn, n);
        memcpy(text + sizeof head - 1 + n, "\"}", 2);
        if (key)
            s2f_json_lit_raw(j, *key, text, sizeof head - 1 + n + 2);
        else
            s2f_json_raw_value(j, text, sizeof head - 1 + n + 2);
        return;
    }
    if (key)
        s2f_json_key(j, key->name);
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "reference", rid->urn);
    s2f_json_end_object(j);
}

/* ---- codes (M23) ----------------------------------------------------------------------- */

static void write_coding(s2f_fhir *f, const char *system, const char *version, const char *code,
                         const char *display)
{
    s2f_json *j = f->json;
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "system", system);
    s2f_json_kv_string(j, "version", version);
    s2f_json_kv_string(j, "code", code);
    s2f_json_kv_string(j, "display", display);
    s2f_json_end_object(j);
}

/* Writes the Coding of a DICOM code; returns 1 when its system is a fallback (M23). */
static int coding_value(s2f_fhir *f, const s2f_codeval *c)
{
    s2f_coding k;
    if (s2f_codes_coding_from_dicom(c, f->h->schemes, f->h->n_schemes, f->arena, &k) != S2F_OK) {
        fail_oom(f);
        return 0;
    }
    write_coding(f, k.system, k.version, k.code, k.display);
    return k.fallback;
}

void s2f_fhir_coding(s2f_fhir *f, const s2f_codeval *c)
{
    if (coding_value(f, c))
        f->stats->fallback_codes++;
}

/* { "coding": [ Coding ] }; returns 1 when the system is a fallback. */
static int codeable_value(s2f_fhir *f, const s2f_codeval *c)
{
    s2f_json *j = f->json;
    s2f_json_begin_object(j);
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("coding"));
    int fallback = coding_value(f, c);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
    return fallback;
}

/* A report's CodeableConcepts repeat (every measurement names its concept and its units),
 * and the reader gives equal codes the same strings: each distinct one is serialized once
 * (compact output) and copied after that. */
typedef struct concept_entry {
    const s2f_codeval *code; /* the first code seen with this content */
    int fallback;           /* its system is a fallback (M23): counted at each use */
    size_t replaced;        /* ill-formed UTF-8 replaced in it: counted at each use */
    const char *text;       /* the compact JSON value */
    size_t len;
} concept_entry;

static int same_concept(const void *entry, const void *code)
{
    const s2f_codeval *e = ((const concept_entry *)entry)->code, *c = code;
    return e->value == c->value && e->scheme == c->scheme && e->version == c->version &&
           e->meaning == c->meaning && e->value_kind == c->value_kind;
}

/* By the addresses of its strings (the reader gives equal strings one address). */
static uint64_t concept_hash(const s2f_codeval *c, const s2f_hash_key *key)
{
    s2f_sip s;
    s2f_sip_init(&s, key);
    s2f_sip_word(&s, (uintptr_t)c->value);
    s2f_sip_word(&s, (uintptr_t)c->scheme);
    s2f_sip_word(&s, (uintptr_t)c->version);
    s2f_sip_word(&s, (uintptr_t)c->meaning);
    s2f_sip_word(&s, (uint64_t)c->value_kind);
    return s2f_sip_final(&s);
}

/* Runs write(f, arg) into a compact JSON writer on the scratch memory sink and copies the
 * text into the arena: how values that repeat are serialized once. NULL when it cannot be
 * (the text would not fit the sink's buffer, or memory ran out): the caller then writes
 * the value itself, which gives the same bytes. */
static const char *render_compact(s2f_fhir *f, void (*write)(s2f_fhir *, void *), void *arg,
                                  size_t *len, size_t *replaced)
{
    s2f_fhir_common *c = f->common;
    if (!c->scratch && !(c->scratch = s2f_arena_alloc(f->arena, sizeof *c->scratch)))
        return NULL;
    s2f_json tmp, *real = f->json;
    s2f_sink_init(c->scratch, NULL);
    s2f_json_init(&tmp, c->scratch, 0);
    f->json = &tmp;
    write(f, arg);
    f->json = real;
    s2f_json_finish(&tmp);
    if (s2f_json_error(&tmp) || s2f_sink_finish(c->scratch) != 0 || f->code)
        return NULL;
    *len = c->scratch->len;
    *replaced = s2f_json_replaced(&tmp);
    return s2f_arena_strndup(f->arena, c->scratch->buf, c->scratch->len);
}

static void write_concept(s2f_fhir *f, void *entry)
{
    concept_entry *e = entry;
    e->fallback = codeable_value(f, e->code);
}

/* The serialized CodeableConcept of c, made the first time; NULL when it cannot be. */
static const concept_entry *find_concept(s2f_fhir *f, const s2f_codeval *c)
{
    if (!c->value)
        return NULL;
    uint64_t h = concept_hash(c, s2f_hindex_key(&f->common->concepts));
    s2f_hslot *slot = s2f_hindex_find(&f->common->concepts, f->arena, h, same_concept, c);
    if (!slot || slot->entry)
        return slot ? slot->entry : NULL;
    concept_entry *e = s2f_arena_calloc(f->arena, 1, sizeof *e);
    if (!e)
        return NULL;
    e->code = c;
    if (!(e->text = render_compact(f, write_concept, e, &e->len, &e->replaced)))
        return NULL;
    s2f_hindex_put(&f->common->concepts, slot, h, e);
    return e;
}

/* The same, answered mostly by a direct-mapped memo in front of the hash index, by the
 * address of the code's value: the reader gives equal strings one address, equal codes
 * often one s2f_codeval (else the memo's entry is compared as the index would). */
static const concept_entry *cached_concept(s2f_fhir *f, const s2f_codeval *c)
{
    uint64_t a = (uint64_t)(uintptr_t)c->value * 0x9E3779B97F4A7C15ull;
    struct s2f_concept_memo *m = &f->common->concept_memo[a >> (64 - CONCEPT_MEMO_BITS)];
    if (m->code == c || (m->code && same_concept(m->entry, c)))
        return m->entry;
    const concept_entry *e = find_concept(f, c);
    if (e) {
        m->code = c;
        m->entry = e;
    }
    return e;
}

void s2f_fhir_codeable_lit(s2f_fhir *f, s2f_json_lit key, const s2f_codeval *c)
{
    if (!c)
        return;
    const concept_entry *e = f->opt.pretty ? NULL : cached_concept(f, c);
    if (e) {
        s2f_json_lit_raw(f->json, key, e->text, e->len);
        f->stats->replaced_chars += e->replaced;
        f->stats->fallback_codes += (size_t)e->fallback;
    } else {
        s2f_json_key(f->json, key.name);
        if (codeable_value(f, c))
            f->stats->fallback_codes++;
    }
}

void s2f_fhir_codeable_fixed(s2f_fhir *f, const char *key, const char *system,
                             const char *code, const char *display)
{
    s2f_json *j = f->json;
    if (key)
        s2f_json_key(j, key);
    s2f_json_begin_object(j);
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("coding"));
    write_coding(f, system, NULL, code, display);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
}

/* ---- logical references (M4-M6) --------------------------------------------------------- */

const char *s2f_fhir_issuer_system(s2f_arena *a, const s2f_issuer *is, int *oom)
{
    const char *type = is->universal_type ? is->universal_type : "";
    const char *prefix = !strcmp(type, "ISO") ? "urn:oid:"
                       : !strcmp(type, "UUID") ? "urn:uuid:"
                       : !strcmp(type, "URI") || !strcmp(type, "URL") ? "" : NULL;
    *oom = 0;
    if (!is->universal || !prefix)
        return NULL; /* DNS, EUI64, X400, X500: not a URI FHIR can take as system */
    if (!*prefix)
        return is->universal;
    char *s = s2f_arena_concat(a, prefix, is->universal);
    *oom = !s;
    return s;
}

static const char *issuer_system(s2f_fhir *f, const s2f_issuer *is)
{
    int oom;
    const char *s = s2f_fhir_issuer_system(f->arena, is, &oom);
    if (oom)
        fail_oom(f);
    return s;
}

static void write_subject(s2f_fhir *f, const char *key)
{
    s2f_json *j = f->json;
    const s2f_header *h = f->h;
    s2f_json_kv_begin_object(j, key ? key : "subject");
    s2f_json_kv_string(j, "reference", f->opt.patient_ref); /* delivery found it (M4) */
    s2f_json_kv_string(j, "type", "Patient");
    if (h->patient_id) {
        s2f_json_lit_begin_object(j, S2F_JSON_LIT("identifier"));
        s2f_json_kv_string(j, "system", issuer_system(f, &h->patient_issuer));
        s2f_json_kv_string(j, "value", h->patient_id);
        if (h->patient_issuer.local) {
            s2f_json_lit_begin_object(j, S2F_JSON_LIT("assigner"));
            s2f_json_kv_string(j, "display", h->patient_issuer.local);
            s2f_json_end_object(j);
        }
        s2f_json_end_object(j);
    } else {
        /* no Patient ID: nothing to search by; the name is all there is */
        s2f_json_kv_string(j, "display", h->patient_name ? h->patient_name : "unknown patient");
    }
    s2f_json_end_object(j);
}

static void write_based_on(s2f_fhir *f)
{
    s2f_json *j = f->json;
    const s2f_header *h = f->h;
    if (!h->accession)
        return; /* M6: omitted without an accession number */
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("basedOn"));
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "reference", f->opt.service_request_ref); /* M6 */
    s2f_json_kv_string(j, "type", "ServiceRequest");
    s2f_json_lit_begin_object(j, S2F_JSON_LIT("identifier"));
    s2f_fhir_codeable_fixed(f, "type", SYSTEM_V2_0203, "ACSN", "Accession ID");
    s2f_json_kv_string(j, "system", issuer_system(f, &h->accession_issuer));
    s2f_json_kv_string(j, "value", h->accession);
    s2f_json_end_object(j);
    s2f_json_end_object(j);
    s2f_json_end_array(j);
}

/* The logical reference to the ImagingStudy (M5), as a value. */
static void study_reference(s2f_fhir *f)
{
    s2f_json *j = f->json;
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "reference", f->opt.imaging_study_ref); /* M5 */
    s2f_json_kv_string(j, "type", "ImagingStudy");
    s2f_json_lit_begin_object(j, S2F_JSON_LIT("identifier"));
    s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "110180", "Study Instance UID");
    s2f_json_kv_string(j, "system", "urn:dicom:uid");
    if (!f->common->study_oid)
        f->common->study_oid = s2f_fhir_oid(f, f->h->study_uid);
    s2f_json_kv_string(j, "value", f->common->study_oid);
    s2f_json_end_object(j);
    s2f_json_end_object(j);
}

void s2f_fhir_study_reference(s2f_fhir *f)
{
    study_reference(f);
}

static void write_part_of(s2f_fhir *f)
{
    if (!f->h->study_uid)
        return;
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("partOf"));
    study_reference(f);
    s2f_json_end_array(f->json);
}

/* ---- the same members in every Observation --------------------------------------------- */

typedef void (*members_writer)(s2f_fhir *f);

static void subject_member(s2f_fhir *f) { write_subject(f, "subject"); }

/* M6 basedOn, M5 partOf, M8 status: the same three members follow the identifiers of
 * every Observation. */
static void head_members(s2f_fhir *f)
{
    write_based_on(f);
    write_part_of(f);
    s2f_json_kv_string(f->json, "status", s2f_fhir_status(f));
}

typedef struct members_job {
    void (*write)(s2f_fhir *f, void *arg);
    void *arg;
} members_job;

static void write_members_object(s2f_fhir *f, void *job)
{
    const members_job *m = job;
    s2f_json_begin_object(f->json);
    m->write(f, m->arg);
    s2f_json_end_object(f->json);
}

/* Renders the members write(f, arg) writes into frag, compact, once (arena text): 0, or
 * -1 when it cannot be (the caller then writes them itself, which gives the same bytes). */
static int render_members(s2f_fhir *f, void (*write)(s2f_fhir *f, void *arg), void *arg,
                          s2f_fhir_fragment *frag)
{
    members_job job = {write, arg};
    size_t len;
    const char *text = render_compact(f, write_members_object, &job, &len, &frag->replaced);
    if (!text || len < 2)
        return -1;
    frag->text = text + 1;
    frag->len = len - 2;
    return 0;
}

void s2f_fhir_cached_members(s2f_fhir *f, s2f_fhir_fragment *frag,
                             void (*write)(s2f_fhir *f, void *arg), void *arg)
{
    if (f->opt.pretty || frag->failed) {
        write(f, arg);
        return;
    }
    if (!frag->text && render_members(f, write, arg, frag) != 0) {
        frag->failed = 1;
        write(f, arg);
        return;
    }
    s2f_json_members_raw(f->json, frag->text, frag->len);
    f->stats->replaced_chars += frag->replaced;
}

static void call_writer(s2f_fhir *f, void *write)
{
    (*(members_writer *)write)(f);
}

/* Members every Observation repeats verbatim (subject, basedOn, partOf, status). */
static void shared_members(s2f_fhir *f, s2f_fhir_fragment *frag, members_writer write)
{
    s2f_fhir_cached_members(f, frag, call_writer, &write);
}

void s2f_fhir_subject(s2f_fhir *f, const char *key)
{
    if (key && strcmp(key, "subject"))
        write_subject(f, key);
    else
        shared_members(f, &f->common->frag_subject, subject_member);
}

void s2f_fhir_based_on(s2f_fhir *f)
{
    shared_members(f, &f->common->frag_based_on, write_based_on);
}
void s2f_fhir_part_of(s2f_fhir *f) { shared_members(f, &f->common->frag_part_of, write_part_of); }
void s2f_fhir_observation_head(s2f_fhir *f)
{
    shared_members(f, &f->common->frag_head, head_members);
}

/* ---- status (M8) ------------------------------------------------------------------------ */

const char *s2f_fhir_status(const s2f_fhir *f)
{
    const s2f_header *h = f->h;
    if (h->preliminary && !strcmp(h->preliminary, "PRELIMINARY"))
        return "preliminary";
    if (h->preliminary && !strcmp(h->preliminary, "FINAL"))
        return "final";
    int complete = h->completion && !strcmp(h->completion, "COMPLETE");
    int verified = h->verification && !strcmp(h->verification, "VERIFIED");
    return complete && verified ? "final" : "preliminary";
}

/* ---- instants (M9) ---------------------------------------------------------------------- */

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* "+HHMM" / "-HHMM" -> "+HH:MM"; 0, or -1 when it is not one. */
static int zone_of(const char *z, char out[8])
{
    if (!z || strlen(z) != 5 || (z[0] != '+' && z[0] != '-') || !all_digits(z + 1, 4))
        return -1;
    snprintf(out, 8, "%c%.2s:%.2s", z[0], z + 1, z + 3);
    return 0;
}

/* Splits DICOM DT "YYYYMMDDHHMMSS.FFFFFF&ZZXX" into date-time digits and zone. */
static void split_zone(const char *dt, char *digits, size_t size, const char **zone)
{
    const char *sign = strpbrk(dt, "+-");
    size_t n = sign ? (size_t)(sign - dt) : strlen(dt);
    if (n >= size)
        n = size - 1;
    memcpy(digits, dt, n);
    digits[n] = '\0';
    *zone = sign;
}

/* "YYYY-MM-DDThh:mm:ss[.f]" from DICOM digits (date and time run together); missing
 * month/day become 01, missing time parts 00. 0, or -1 when the text is not a DICOM date. */
static int format_local(const char *dt, char *out, size_t size)
{
    size_t n = strlen(dt);
    const char *dot = strchr(dt, '.');
    size_t whole = dot ? (size_t)(dot - dt) : n;
    if (whole < 4 || whole > 14 || (whole % 2) || !all_digits(dt, whole))
        return -1;
    char d[15] = "00000101000000";
    memcpy(d, dt, whole);
    char frac[12] = "";
    if (dot && whole == 14) {
        size_t fn = strlen(dot + 1);
        if (fn == 0 || fn > 9 || !all_digits(dot + 1, fn))
            return -1;
        snprintf(frac, sizeof frac, ".%s", dot + 1);
    }
    snprintf(out, size, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s%s", d, d + 4, d + 6, d + 8, d + 10, d + 12,
             frac);
    return 0;
}

static const char *compute_instant(s2f_fhir *f, const char *observation_dt);

/* Most Observations of a report share one Observation DateTime (often none): the last
 * answer is kept. */
const char *s2f_fhir_instant(s2f_fhir *f, const char *observation_dt)
{
    if (!f->common->instant_known || f->common->instant_of != observation_dt) {
        f->common->instant = compute_instant(f, observation_dt);
        f->common->instant_of = observation_dt;
        f->common->instant_known = 1;
    }
    return f->common->instant;
}

/* M9, issue 10 defect 9: how much of the instant `when` effectiveDateTime keeps: the
 * precision the SR gives. A date alone (DT "202001", "20200115", or a Content Date without
 * a Content Time) is "2020-01" / "2020-01-15", without a zone (FHIR dateTime: a zone only
 * with a time); a time of any precision is completed to seconds with its zone, as FHIR
 * dateTime requires. issued, an instant, is always complete. */
static int effective_length(const s2f_fhir *f, const char *observation_dt, const char *when)
{
    const char *digits = observation_dt;
    if (!digits)
        digits = f->h->content_time && *f->h->content_time ? NULL : f->h->content_date;
    size_t n = digits ? strspn(digits, "0123456789") : 14;
    int full = (int)strlen(when);
    if (n >= 10)
        return full;
    return n >= 8 ? 10 : n >= 6 ? 7 : 4; /* YYYY-MM-DD, YYYY-MM, YYYY */
}

/* M9: "effectiveDateTime" and "issued", the same instant; nothing without one. An instant
 * is digits, '-', ':', 'T', '.' and the zone's sign (compute_instant), nothing to escape:
 * in compact output both members are joined once per instant and copied. */
void s2f_fhir_effective_issued(s2f_fhir *f, const char *observation_dt)
{
    const char *when = s2f_fhir_instant(f, observation_dt);
    if (!when || !*when)
        return;
    int effective_n = effective_length(f, observation_dt, when);
    if (f->opt.pretty) {
        s2f_json_kv_string_n(f->json, "effectiveDateTime", when, (size_t)effective_n);
        s2f_json_kv_string(f->json, "issued", when);
        return;
    }
    if (f->common->when_of != when) {
        char *m = s2f_arena_printf(f->arena, "\"effectiveDateTime\":\"%.*s\",\"issued\":\"%s\"",
                                   effective_n, when, when);
        if (!m) {
            fail_oom(f);
            return;
        }
        f->common->when_members = m;
        f->common->when_len = strlen(m);
        f->common->when_of = when;
    }
    s2f_json_members_raw(f->json, f->common->when_members, f->common->when_len);
}

static const char *compute_instant(s2f_fhir *f, const char *observation_dt)
{
    const s2f_header *h = f->h;
    char digits[64], local[48], zone[8];
    const char *dt_zone = NULL;
    if (observation_dt) {
        split_zone(observation_dt, digits, sizeof digits, &dt_zone);
    } else if (h->content_date) {
        snprintf(digits, sizeof digits, "%s%s", h->content_date,
                 h->content_time ? h->content_time : "");
    } else {
        return NULL;
    }
    if (format_local(digits, local, sizeof local) != 0)
        return NULL;
    /* the value's own offset, else Timezone Offset From UTC, else the user's zone (M9) */
    if (zone_of(dt_zone, zone) != 0 && zone_of(h->timezone, zone) != 0 &&
        zone_of(f->opt.timezone, zone) != 0)
        strcpy(zone, "+00:00");
    char *s = s2f_arena_printf(f->arena, "%s%s", local, zone);
    if (!s)
        fail_oom(f);
    return s;
}

/* ---- identifiers (M11) ----------------------------------------------------------------- */

void s2f_fhir_observation_uid(s2f_fhir *f, const char *uid)
{
    s2f_json *j = f->json;
    s2f_json_begin_object(j);
    s2f_fhir_codeable_fixed(f, "type", SYSTEM_ID_TYPE, "observation-uid", "Observation UID");
    s2f_json_kv_string(j, "system", "urn:dicom:uid");
    s2f_json_kv_string(j, "value", s2f_fhir_oid(f, uid));
    s2f_json_end_object(j);
}
