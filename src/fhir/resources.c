/*
 * resources.c - the shared, non-Observation resources of the FHIR stage (fhir.h):
 *
 *   M7   the General Equipment Device (profile dicom-general-equipment), one per Bundle;
 *   M22  AlgorithmIdentification Devices (profile algorithm-identification), one per
 *        distinct algorithm of the report;
 *   M10  observers: a Person observer -> Practitioner (dicom-participant-person), a Device
 *        observer -> Device (dicom-participant-device), one per distinct observer;
 *   M18  finding-site BodyStructures (dicom-sr-finding-site), one per distinct (site,
 *        laterality, modifier, tracking identifier, tracking UID).
 *
 * Identity (M24 amended, issue 10 defect 7): these resources outlive one report, so their
 * id comes from their business identity (s2f_fhir_identity_rid, not scoped to the SR): a
 * tracked lesion from patient + Tracking UID, a Device from its Device UID (else
 * manufacturer + model + serial), an algorithm from name + version + parameters, a
 * Practitioner from name + identifier within the role. Without such an identity the id is
 * s2f_fhir_rid(kind, key) within the SR, the key a canonical text of the content (the
 * equipment: ""). Equal identities give one resource; references are computed without
 * lookup. A canonical key joins its
 * fields with '|' (and list members with ';') after escaping '\', '|' and ';' in each
 * field with a backslash, so no two different contents give the same key.
 *
 * R4 (M25): no meta.profile (s2f_fhir_begin_entry), Device.displayName -> deviceName,
 * Device.type is a single CodeableConcept, Device.property has no valueString (the
 * parameters go to valueCode[].text), and no BodyStructure is written (R4 Observation has
 * no bodyStructure element; M18's BodyStructure is not referenced there).
 *
 * Members are written only when they have content.
 */
#include <string.h>

#include "fhir/fhir.h"

static void fail_oom(s2f_fhir *f)
{
    if (f->code == S2F_OK)
        f->code = s2f_fail(f->err, S2F_ELIMIT, "out of memory while writing FHIR");
}

static int nonempty(const char *s)
{
    return s && *s;
}

static int running(const s2f_fhir *f)
{
    return f->code == S2F_OK;
}

/* ---- small writers ---------------------------------------------------------------------- */

/* An Identifier { system urn:dicom:uid, value urn:oid:UID } as an array element. */
static void write_uid_identifier(s2f_fhir *f, const char *uid)
{
    s2f_json_begin_object(f->json);
    s2f_json_kv_string(f->json, "system", "urn:dicom:uid");
    s2f_json_kv_string(f->json, "value", s2f_fhir_oid(f, uid));
    s2f_json_end_object(f->json);
}

/* "identifier": [ { system urn:dicom:uid, value urn:oid:UID } ] when uid has content. */
static void write_uid_identifiers(s2f_fhir *f, const char *uid)
{
    if (!nonempty(uid))
        return;
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("identifier"));
    write_uid_identifier(f, uid);
    s2f_json_end_array(f->json);
}

/* A CodeableConcept as an array element. */
static void write_codeable_element(s2f_fhir *f, const s2f_codeval *c)
{
    s2f_json_begin_object(f->json);
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("coding"));
    s2f_fhir_coding(f, c);
    s2f_json_end_array(f->json);
    s2f_json_end_object(f->json);
}

/* R4 Device.deviceName entries, or nothing: names[i] with types[i], those with content. */
static void write_r4_device_names(s2f_fhir *f, const char *const *names, const char *const *types,
                                  size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n; i++)
        any |= nonempty(names[i]);
    if (!any)
        return;
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("deviceName"));
    for (size_t i = 0; i < n; i++) {
        if (!nonempty(names[i]))
            continue;
        s2f_json_begin_object(f->json);
        s2f_json_kv_string(f->json, "name", names[i]);
        s2f_json_kv_string(f->json, "type", types[i]);
        s2f_json_end_object(f->json);
    }
    s2f_json_end_array(f->json);
}

/* Trimmed [p, p+n) of spaces. */
static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* ---- M7: General Equipment ------------------------------------------------------------ */

/* M7 version = Software Versions (0018,1020): one version entry per value of the
 * backslash-separated list (both R5 and R4 have Device.version {value}). */
static void write_software_versions(s2f_fhir *f, const char *versions)
{
    int open = 0;
    const char *p = versions;
    while (p && *p) {
        const char *e = strchr(p, '\\');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *v = p;
        size_t vn = n;
        trim(&v, &vn);
        if (vn) {
            if (!open) {
                s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("version"));
                open = 1;
            }
            s2f_json_begin_object(f->json);
            s2f_json_kv_string_n(f->json, "value", v, vn);
            s2f_json_end_object(f->json);
        }
        p = e ? e + 1 : p + n;
    }
    if (open)
        s2f_json_end_array(f->json);
}

/* The GS1 Device Identifier of a UDI in human-readable form: the 14 digits of Application
 * Identifier 01 written "(01)" or "{01}" at the start. 1 and the DI set in *di, *n, else 0. */
static int gs1_device_identifier(const char *udi, const char **di, size_t *n)
{
    if (strlen(udi) < 18)
        return 0;
    if (!((udi[0] == '(' && udi[3] == ')') || (udi[0] == '{' && udi[3] == '}')) ||
        udi[1] != '0' || udi[2] != '1')
        return 0;
    const char *d = udi + 4;
    size_t len = 0;
    while (len < 14 && d[len] >= '0' && d[len] <= '9')
        len++;
    if (len != 14)
        return 0;
    *di = d;
    *n = len;
    return 1;
}

/* The issuers FHIR's Device.udiCarrier.issuer lists (the guide's example writes
 * ".../NamingSystem/gs1", which FHIR does not list; gs1-di is FHIR's). */
#define UDI_ISSUER_GS1 "http://hl7.org/fhir/NamingSystem/gs1-di"
/* HIBCC's NamingSystem is spelled differently by the two versions' Device pages. */
#define UDI_ISSUER_HIBCC_R5 "http://hl7.org/fhir/NamingSystem/hibcc-diI"
#define UDI_ISSUER_HIBCC_R4 "http://hl7.org/fhir/NamingSystem/hibcc-dI"
#define UDI_ISSUER_ICCBBA "http://hl7.org/fhir/NamingSystem/iccbba-other-di"
/* Decision (docs/decisions.md): R5 requires udiCarrier.issuer; a UDI of no recognisable
 * issuing agency gets this project URN, which claims nothing but "issuer not known". */
#define UDI_ISSUER_UNKNOWN "urn:sr2fhir:udi-issuer:unknown"

/* M7 udiCarrier from the UDI Sequence (0018,100A): carrierHRF = the Unique Device
 * Identifier (0018,1009) as written (DICOM stores the human-readable form);
 * deviceIdentifier = the GS1 DI (AI 01) when the UDI is a GS1 one, as in the guide's
 * example, else the whole UDI; issuer (1..1 in R5) = the issuing agency recognised by the
 * UDI's form (GS1 "(01)"/"{01}", HIBCC "+", ICCBBA "="). */
static void write_udi(s2f_fhir *f)
{
    const s2f_header *h = f->h;
    int open = 0;
    for (size_t i = 0; h && i < h->n_udi; i++) {
        const char *udi = h->udi[i];
        size_t n = udi ? strlen(udi) : 0;
        trim(&udi, &n);
        if (!n)
            continue;
        if (!open) {
            s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("udiCarrier"));
            open = 1;
        }
        const char *whole = s2f_arena_strndup(f->arena, udi, n);
        if (!whole) {
            fail_oom(f);
            break;
        }
        const char *di = whole, *issuer = UDI_ISSUER_UNKNOWN;
        size_t din = n;
        if (gs1_device_identifier(whole, &di, &din))
            issuer = UDI_ISSUER_GS1;
        else if (whole[0] == '+')
            issuer = f->opt.r4 ? UDI_ISSUER_HIBCC_R4 : UDI_ISSUER_HIBCC_R5;
        else if (whole[0] == '=')
            issuer = UDI_ISSUER_ICCBBA;
        s2f_json_begin_object(f->json);
        s2f_json_kv_string_n(f->json, "deviceIdentifier", di, din);
        s2f_json_kv_string(f->json, "issuer", issuer);
        s2f_json_kv_string(f->json, "carrierHRF", whole);
        s2f_json_end_object(f->json);
    }
    if (open)
        s2f_json_end_array(f->json);
}

void s2f_fhir_write_equipment(s2f_fhir *f)
{
    if (!running(f))
        return;
    s2f_fhir_identity id = s2f_fhir_equipment_identity(f);
    if (!id.key || !s2f_fhir_first_time(f, id.kind, id.key))
        return;
    const s2f_header *h = f->h;
    s2f_rid rid;
    s2f_fhir_rid_of_identity(f, "Device", &id, &rid);
    if (!running(f))
        return;
    s2f_fhir_begin_entry(f, &rid, S2F_PROFILE_BASE "dicom-general-equipment");
    if (h) {
        /* M7 identifier = Device UID (0018,1002), urn:oid: form (MAPPING, not the guide's
         * example, which writes the bare UID). */
        write_uid_identifiers(f, h->device_uid);
        write_udi(f);
        s2f_json_kv_string(f->json, "manufacturer", nonempty(h->manufacturer) ? h->manufacturer : NULL);
        s2f_json_kv_string(f->json, "serialNumber", nonempty(h->device_serial) ? h->device_serial : NULL);
        if (f->opt.r4) {
            /* M25: R4 has no displayName; the model name is a deviceName of type model-name. */
            const char *names[1] = {h->model};
            const char *types[1] = {"model-name"};
            write_r4_device_names(f, names, types, 1);
        } else {
            s2f_json_kv_string(f->json, "displayName", nonempty(h->model) ? h->model : NULL);
        }
        write_software_versions(f, h->software_versions);
    }
    s2f_fhir_end_entry(f, &rid);
}

/* ---- M22: Algorithm Identification ---------------------------------------------------- */

void s2f_fhir_write_algorithm(s2f_fhir *f, const s2f_algorithm *a)
{
    if (!running(f) || !a)
        return;
    s2f_fhir_identity id = s2f_fhir_algorithm_identity(f, a);
    if (!id.key || !s2f_fhir_first_time(f, id.kind, id.key))
        return;
    s2f_rid rid, eq;
    s2f_fhir_rid_of_identity(f, "Device", &id, &rid);
    s2f_fhir_equipment_rid(f, &eq);
    if (!running(f))
        return;
    s2f_fhir_begin_entry(f, &rid, S2F_PROFILE_BASE "algorithm-identification");
    if (f->opt.r4) {
        const char *names[1] = {a->name};
        const char *types[1] = {"manufacturer-name"};
        write_r4_device_names(f, names, types, 1);
    } else {
        s2f_json_kv_string(f->json, "displayName", nonempty(a->name) ? a->name : NULL);
    }
    /* type = Algorithm Family (DCM 111000): 0..* in R5, one CodeableConcept in R4. */
    if (a->family) {
        if (f->opt.r4) {
            s2f_fhir_codeable(f, "type", a->family);
        } else {
            s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("type"));
            write_codeable_element(f, a->family);
            s2f_json_end_array(f->json);
        }
    }
    if (nonempty(a->version)) {
        s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("version"));
        s2f_json_begin_object(f->json);
        s2f_json_kv_string(f->json, "value", a->version);
        s2f_json_end_object(f->json);
        s2f_json_end_array(f->json);
    }
    /* property = Algorithm Parameters (DCM 111002), one per parameter, in order, typed DCM
     * 111002. R5: valueString; R4 has no valueString: valueCode [ { text } ]. */
    int open = 0;
    for (size_t i = 0; i < a->n_parameters; i++) {
        if (!nonempty(a->parameters[i]))
            continue;
        if (!open) {
            s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("property"));
            open = 1;
        }
        s2f_json_begin_object(f->json);
        s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "111002", "Algorithm Parameters");
        if (f->opt.r4) {
            s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("valueCode"));
            s2f_json_begin_object(f->json);
            s2f_json_kv_string(f->json, "text", a->parameters[i]);
            s2f_json_end_object(f->json);
            s2f_json_end_array(f->json);
        } else {
            s2f_json_kv_string(f->json, "valueString", a->parameters[i]);
        }
        s2f_json_end_object(f->json);
    }
    if (open)
        s2f_json_end_array(f->json);
    s2f_json_lit parent = S2F_JSON_LIT("parent");
    s2f_fhir_reference(f, &parent, &eq); /* M22: parent = the M7 equipment device */
    s2f_fhir_end_entry(f, &rid);
}

/* ---- M10: observers ------------------------------------------------------------------- */

/* Writes the n bytes at p (trimmed) as a string array element when not empty. */
static void name_part(s2f_fhir *f, const char *p, size_t n, const char *key, int *open)
{
    trim(&p, &n);
    if (!n)
        return;
    if (key && !*open) {
        s2f_json_kv_begin_array(f->json, key);
        *open = 1;
    }
    s2f_json_string_n(f->json, p, n);
}

/* M10: "name": [ HumanName ] from a DICOM PN "family^given^middle^prefix^suffix" (first
 * non-empty component group of "Alphabetic=Ideographic=Phonetic"): family, given =
 * [given, middle], prefix, suffix; nothing when the name is empty. */
static void write_person_name(s2f_fhir *f, const char *pn)
{
    const char *grp = pn;
    size_t gn = 0;
    while (grp) {
        const char *eq = strchr(grp, '=');
        gn = eq ? (size_t)(eq - grp) : strlen(grp);
        const char *t = grp;
        size_t tn = gn;
        trim(&t, &tn);
        int carets_only = 1;
        for (size_t i = 0; i < tn; i++)
            if (t[i] != '^' && t[i] != ' ')
                carets_only = 0;
        if (!carets_only)
            break;
        grp = eq ? eq + 1 : NULL;
    }
    if (!grp)
        return;
    const char *comp[5] = {0};
    size_t clen[5] = {0};
    const char *p = grp, *end = grp + gn;
    for (int i = 0; i < 5 && p <= end; i++) {
        const char *c = memchr(p, '^', (size_t)(end - p));
        comp[i] = p;
        clen[i] = c ? (size_t)(c - p) : (size_t)(end - p);
        if (!c)
            break;
        p = c + 1;
    }
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("name"));
    s2f_json_begin_object(f->json);
    if (comp[0]) {
        const char *fam = comp[0];
        size_t fn = clen[0];
        trim(&fam, &fn);
        if (fn)
            s2f_json_kv_string_n(f->json, "family", fam, fn);
    }
    int open = 0;
    if (comp[1])
        name_part(f, comp[1], clen[1], "given", &open);
    if (comp[2])
        name_part(f, comp[2], clen[2], "given", &open);
    if (open)
        s2f_json_end_array(f->json);
    open = 0;
    if (comp[3])
        name_part(f, comp[3], clen[3], "prefix", &open);
    if (open)
        s2f_json_end_array(f->json);
    open = 0;
    if (comp[4])
        name_part(f, comp[4], clen[4], "suffix", &open);
    if (open)
        s2f_json_end_array(f->json);
    s2f_json_end_object(f->json);
    s2f_json_end_array(f->json);
}

void s2f_fhir_write_observer(s2f_fhir *f, const s2f_observer *o)
{
    if (!running(f) || !o || s2f_fhir_observer_is_equipment(f, o))
        return;
    s2f_fhir_identity id = s2f_fhir_observer_identity(f, o);
    if (!id.key || !s2f_fhir_first_time(f, id.kind, id.key))
        return;
    s2f_rid rid;
    s2f_fhir_rid_of_identity(f, o->is_device ? "Device" : "Practitioner", &id, &rid);
    if (!running(f))
        return;
    if (!o->is_device) {
        /* Person Observer Name (DCM 121008) -> Practitioner.name. Person Observer's
         * Organization Name (121009) has no place on Practitioner (it would need a
         * PractitionerRole) and is not written. */
        s2f_fhir_begin_entry(f, &rid, S2F_PROFILE_BASE "dicom-participant-person");
        if (nonempty(o->person_id)) {
            /* Identifier within Person Observer's Role (DCM 128775, TID 1003) */
            s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("identifier"));
            s2f_json_begin_object(f->json);
            s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "128775",
                                    "Identifier within Person Observer's Role");
            s2f_json_kv_string(f->json, "value", o->person_id);
            s2f_json_end_object(f->json);
            s2f_json_end_array(f->json);
        }
        if (nonempty(o->person_name))
            write_person_name(f, o->person_name);
        s2f_fhir_end_entry(f, &rid);
        return;
    }
    s2f_fhir_begin_entry(f, &rid, S2F_PROFILE_BASE "dicom-participant-device");
    write_uid_identifiers(f, o->device_uid);                           /* 121012 */
    s2f_json_kv_string(f->json, "manufacturer",
                       nonempty(o->device_manufacturer) ? o->device_manufacturer : NULL); /* 121014 */
    s2f_json_kv_string(f->json, "serialNumber",
                       nonempty(o->device_serial) ? o->device_serial : NULL);             /* 121016 */
    if (f->opt.r4) {
        const char *names[2] = {o->device_name, o->device_model};
        const char *types[2] = {"user-friendly-name", "model-name"};
        write_r4_device_names(f, names, types, 2);
    } else {
        /* displayName = Device Observer Name (121013); without one, the model name
         * (121015), which is what the profile maps displayName from (0008,1090). R5 has
         * no model-name Device.name type: the model name goes to modelNumber. */
        const char *display = nonempty(o->device_name) ? o->device_name : o->device_model;
        s2f_json_kv_string(f->json, "displayName", nonempty(display) ? display : NULL);
        s2f_json_kv_string(f->json, "modelNumber", nonempty(o->device_model) ? o->device_model : NULL);
    }
    s2f_fhir_end_entry(f, &rid);
}

/* ---- M18: finding-site BodyStructure -------------------------------------------------- */

void s2f_fhir_write_body_structure(s2f_fhir *f, const s2f_site *site, const char *tracking_id,
                                   const char *tracking_uid)
{
    /* M25: R4 Observation has no bodyStructure element, so the resource would be orphaned. */
    if (!running(f) || f->opt.r4 || !s2f_report_has_body_structure(site, tracking_id, tracking_uid))
        return;
    s2f_fhir_identity id = s2f_fhir_body_structure_identity(f, site, tracking_id, tracking_uid);
    if (!id.key || !s2f_fhir_first_time(f, id.kind, id.key))
        return;
    s2f_rid rid;
    s2f_fhir_rid_of_identity(f, "BodyStructure", &id, &rid);
    if (!running(f))
        return;
    s2f_fhir_begin_entry(f, &rid, S2F_PROFILE_BASE "dicom-sr-finding-site");
    /* identifier: slices trackingIdentifier (DCM 112039) and trackingUid (DCM 112040,
     * urn:dicom:uid, urn:oid: value), as in the guide's example. */
    if (nonempty(tracking_id) || nonempty(tracking_uid)) {
        s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("identifier"));
        if (nonempty(tracking_id)) {
            s2f_json_begin_object(f->json);
            s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "112039", "Tracking Identifier");
            s2f_json_kv_string(f->json, "value", tracking_id);
            s2f_json_end_object(f->json);
        }
        if (nonempty(tracking_uid)) {
            s2f_json_begin_object(f->json);
            s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "112040", "Tracking Unique Identifier");
            s2f_json_kv_string(f->json, "system", "urn:dicom:uid");
            s2f_json_kv_string(f->json, "value", s2f_fhir_oid(f, tracking_uid));
            s2f_json_end_object(f->json);
        }
        s2f_json_end_array(f->json);
    }
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("includedStructure"));
    s2f_json_begin_object(f->json);
    s2f_fhir_codeable(f, "structure", site->site);
    if (site->laterality)
        s2f_fhir_codeable(f, "laterality", site->laterality);
    if (site->modifier) {
        s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("qualifier"));
        write_codeable_element(f, site->modifier);
        s2f_json_end_array(f->json);
    }
    s2f_json_end_object(f->json);
    s2f_json_end_array(f->json);
    s2f_fhir_subject(f, "patient"); /* M4: patient = the subject's logical reference */
    s2f_fhir_end_entry(f, &rid);
}
