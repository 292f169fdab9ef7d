/*
 * ids.c - every identity of the FHIR stage, in one file (M24, see fhir.h): the Bundle's,
 * each resource's made from one content item (its position), the shared resources' within
 * the SR (a canonical text of their content) and by business identity (issue 10 defect 7:
 * what the resource is, not the SR). Writers and the driver ask here; nothing here writes.
 * Its caches (the memo of identities, item positions and Observation identities) are its
 * own: struct s2f_fhir_ids.
 */
#include <string.h>

#include "fhir/fhir.h"
#include "util/hash.h"

#define PARENT_POSITION_MAX 64 /* a parent's position kept (item_position) */

/* The identities' state and caches (one per conversion). */
struct s2f_fhir_ids {
    s2f_uuid_scope scope;       /* hashing state of the identities' shared prefix (M24) */
    s2f_hash_key memo_key;      /* the rid memo's hash key, drawn at random */
    struct s2f_rid_memo *rid_memo; /* identities already computed, */
    size_t rid_memo_cap, rid_memo_evictions; /* its slots and misses that evicted one */
    const char **item_keys;     /* item positions already made, by item seq */
    s2f_rid **observation_rids; /* Observation identities computed, by item seq */
    const s2f_item *pos_parent; /* the parent of the last item whose position was asked */
    size_t pos_len;             /* for, and its own position, pos_len bytes */
    char pos[PARENT_POSITION_MAX]; /* (not NUL-terminated) */
};

static void fail(s2f_fhir *f, s2f_code code, const char *what)
{
    if (!f->code)
        f->code = s2f_fail(f->err, code, "%s", what);
}

s2f_fhir_ids *s2f_fhir_ids_new(s2f_arena *a, const char *sop_uid)
{
    s2f_fhir_ids *x = s2f_arena_calloc(a, 1, sizeof *x);
    if (!x)
        return NULL;
    s2f_uuid_scope_init(&x->scope, sop_uid);
    s2f_hash_key_random(&x->memo_key);
    return x;
}

/* ---- identities within the SR: the memo, item positions, Observations ----------------- */

/* Identities are asked for again and again (every Observation names the equipment, its
 * group, its selections): a direct-mapped memo in front of the hashing. It starts small (a
 * short report pays for a few slots, not for a big zeroed table) and grows when keys keep
 * evicting each other, up to RID_MEMO_MAX slots. */
#define RID_MEMO_MIN 16
#define RID_MEMO_MAX 1024
struct s2f_rid_memo {
    const char *kind, *key;
    uint64_t hash;
    s2f_rid rid;
};

static void compute_rid(s2f_fhir *f, const char *type, const char *kind, const char *key,
                        s2f_rid *rid)
{
    s2f_uuid u;
    rid->type = type;
    s2f_uuid_scope_id(&f->ids->scope, kind, key, &u);
    s2f_uuid_format(&u, rid->id);
    memcpy(rid->urn, "urn:uuid:", 9);
    memcpy(rid->urn + 9, rid->id, sizeof rid->id);
}

/* A memo of cap slots holding the entries of the old one that still fit: 0, or -1 when
 * memory ran out (the old one stays). */
static int rid_memo_resize(s2f_fhir *f, size_t cap)
{
    struct s2f_rid_memo *m = s2f_arena_calloc(f->arena, cap, sizeof *m);
    if (!m)
        return -1;
    for (size_t i = 0; i < f->ids->rid_memo_cap; i++)
        if (f->ids->rid_memo[i].key)
            m[f->ids->rid_memo[i].hash & (cap - 1)] = f->ids->rid_memo[i];
    f->ids->rid_memo = m;
    f->ids->rid_memo_cap = cap;
    f->ids->rid_memo_evictions = 0;
    return 0;
}

void s2f_fhir_rid(s2f_fhir *f, const char *type, const char *kind, const char *key, s2f_rid *rid)
{
    if (!f->ids->rid_memo && rid_memo_resize(f, RID_MEMO_MIN) != 0) {
        compute_rid(f, type, kind, key, rid);
        return;
    }
    uint64_t h = s2f_hash_text(&f->ids->memo_key, key, strlen(key)) ^ (uintptr_t)kind;
    struct s2f_rid_memo *m = &f->ids->rid_memo[h & (f->ids->rid_memo_cap - 1)];
    if (m->kind != kind || !m->key || strcmp(m->key, key)) {
        if (m->key && ++f->ids->rid_memo_evictions > f->ids->rid_memo_cap &&
            f->ids->rid_memo_cap < RID_MEMO_MAX &&
            rid_memo_resize(f, f->ids->rid_memo_cap * 4) == 0)
            m = &f->ids->rid_memo[h & (f->ids->rid_memo_cap - 1)];
        /* keys are arena strings or literals: they outlive the conversion */
        compute_rid(f, type, kind, key, &m->rid);
        m->kind = kind;
        m->key = key;
        m->hash = h;
    }
    *rid = m->rid;
    rid->type = type;
}

/* M24 amended (issue 10 defect 7): the identity of a resource that outlives one report,
 * from its business identity, not from the SR (uuid.h). */
void s2f_fhir_identity_rid(s2f_fhir *f, const char *type, const char *kind, const char *key,
                           s2f_rid *rid)
{
    (void)f;
    s2f_uuid u;
    rid->type = type;
    s2f_uuid_identity(kind, key, &u);
    s2f_uuid_format(&u, rid->id);
    memcpy(rid->urn, "urn:uuid:", 9);
    memcpy(rid->urn + 9, rid->id, sizeof rid->id);
}

/* Digits of v written backwards, ending at `end`; returns where they start. */
static char *decimal_before(char *end, uint32_t v)
{
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

/* s2f_item_position(it, pos, S2F_POSITION_MAX), from its parent's position kept from the
 * last call: siblings come one after another, and the walk up the tree is done once per
 * parent. Items whose parent's position is too long to keep are asked of the tree each
 * time. */
static void item_position(s2f_fhir *f, const s2f_item *it, char pos[S2F_POSITION_MAX])
{
    if (it->parent && it->parent != f->ids->pos_parent) {
        s2f_item_position(it->parent, pos, S2F_POSITION_MAX); /* pos as scratch */
        size_t n = strlen(pos);
        f->ids->pos_len = n < sizeof f->ids->pos ? n : SIZE_MAX; /* SIZE_MAX: not kept */
        if (n < sizeof f->ids->pos)
            memcpy(f->ids->pos, pos, n);
        f->ids->pos_parent = it->parent;
    }
    if (!it->parent || f->ids->pos_len == SIZE_MAX) {
        s2f_item_position(it, pos, S2F_POSITION_MAX);
        return;
    }
    char num[12];
    char *digits = decimal_before(num + sizeof num, it->index);
    size_t n = (size_t)(num + sizeof num - digits);
    memcpy(pos, f->ids->pos, f->ids->pos_len);
    pos[f->ids->pos_len] = '.';
    memcpy(pos + f->ids->pos_len + 1, digits, n);
    pos[f->ids->pos_len + 1 + n] = '\0';
}

const char *s2f_fhir_item_key(s2f_fhir *f, const s2f_item *it)
{
    if (!f->ids->item_keys)
        f->ids->item_keys =
            s2f_arena_calloc(f->arena, f->doc->tree.n_items, sizeof *f->ids->item_keys);
    if (f->ids->item_keys && f->ids->item_keys[it->seq])
        return f->ids->item_keys[it->seq];
    char pos[S2F_POSITION_MAX];
    item_position(f, it, pos);
    const char *s = s2f_arena_strdup(f->arena, pos);
    if (!s) {
        fail(f, S2F_ELIMIT, "out of memory while writing FHIR");
        return "";
    }
    if (f->ids->item_keys)
        f->ids->item_keys[it->seq] = s;
    return s;
}

/* Every Observation's identity is asked for at least twice (its group's hasMember lists it
 * before it is written), more often than the memo above can hold: kept per item. */
void s2f_fhir_observation_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid)
{
    if (!f->ids->observation_rids)
        f->ids->observation_rids =
            s2f_arena_calloc(f->arena, f->doc->tree.n_items, sizeof *f->ids->observation_rids);
    s2f_rid **slot = f->ids->observation_rids ? &f->ids->observation_rids[it->seq] : NULL;
    if (slot && *slot) {
        *rid = **slot;
        return;
    }
    /* the key is hashed once here: kept only when something else made it already */
    const char *key = f->ids->item_keys ? f->ids->item_keys[it->seq] : NULL;
    char pos[S2F_POSITION_MAX];
    if (!key) {
        item_position(f, it, pos);
        key = pos;
    }
    compute_rid(f, "Observation", S2F_KIND_OBSERVATION, key, rid);
    if (slot && (*slot = s2f_arena_alloc(f->arena, sizeof **slot)))
        **slot = *rid;
}

/* ---- canonical keys (M24) --------------------------------------------------------------- */

static void fail_oom(s2f_fhir *f)
{
    if (f->code == S2F_OK)
        f->code = s2f_fail(f->err, S2F_ELIMIT, "out of memory while writing FHIR");
}

/* A growing string in the arena (scratch for keys). */
typedef struct keybuf {
    s2f_fhir *f;
    char *p;
    size_t len, cap;
    int failed;
} keybuf;

static void kb_putc(keybuf *k, char c)
{
    if (k->failed)
        return;
    if (k->len + 2 > k->cap) {
        size_t ncap = k->cap ? 2 * k->cap : 64;
        char *np = s2f_arena_realloc(k->f->arena, k->p, k->cap, ncap);
        if (!np) {
            k->failed = 1;
            return;
        }
        k->p = np;
        k->cap = ncap;
    }
    k->p[k->len++] = c;
    k->p[k->len] = '\0';
}

/* One field, escaped: '\', '|' and ';' are preceded by '\'. NULL is the empty field. */
static void kb_field(keybuf *k, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '|' || *s == ';')
            kb_putc(k, '\\');
        kb_putc(k, *s);
    }
}

/* A code as its M23 system and code (so that, for example, SRT T-28000 and SCT 39607008
 * give the same key), else as designator and value. */
static void kb_code(keybuf *k, const s2f_codeval *c)
{
    if (!c)
        return;
    s2f_coding cd;
    if (s2f_codes_coding_from_dicom(c, k->f->h ? k->f->h->schemes : NULL,
                                    k->f->h ? k->f->h->n_schemes : 0, k->f->arena,
                                    &cd) == S2F_OK && cd.system) {
        kb_field(k, cd.system);
        kb_putc(k, ';');
        kb_field(k, cd.code);
    } else {
        kb_field(k, c->scheme);
        kb_putc(k, ';');
        kb_field(k, c->value);
    }
}

/* The finished key ("" when nothing was added); NULL (and f->code set) when memory ran out. */
static const char *kb_done(keybuf *k)
{
    if (k->failed) {
        fail_oom(k->f);
        return NULL;
    }
    return k->p ? k->p : "";
}

static int nonempty(const char *s)
{
    return s && *s;
}

static int running(const s2f_fhir *f)
{
    return f->code == S2F_OK;
}

/* M22: "name|version|param;param;..." of an algorithm, the part of its key that is also
 * its identity (algorithm_identity). */
static void kb_algorithm(keybuf *k, const s2f_algorithm *a)
{
    kb_field(k, a->name);
    kb_putc(k, '|');
    kb_field(k, a->version);
    kb_putc(k, '|');
    for (size_t i = 0; i < a->n_parameters; i++) {
        if (i)
            kb_putc(k, ';');
        kb_field(k, a->parameters[i]);
    }
}

/* M22: name|version|param;param;...|family system;code */
static const char *algorithm_key(s2f_fhir *f, const s2f_algorithm *a)
{
    keybuf k = {f, NULL, 0, 0, 0};
    kb_algorithm(&k, a);
    kb_putc(&k, '|');
    kb_code(&k, a->family);
    return kb_done(&k);
}

/* M10: "person|" + PN text; "device|uid|" + UID; without a UID
 * "device||name|manufacturer|model|serial". */
static const char *observer_key(s2f_fhir *f, const s2f_observer *o)
{
    keybuf k = {f, NULL, 0, 0, 0};
    if (!o->is_device) {
        kb_field(&k, "person");
        kb_putc(&k, '|');
        kb_field(&k, o->person_name);
    } else if (nonempty(o->device_uid)) {
        kb_field(&k, "device|uid"); /* escaped: cannot collide with the form below */
        kb_putc(&k, '|');
        kb_field(&k, o->device_uid);
    } else {
        kb_field(&k, "device");
        kb_putc(&k, '|');
        kb_putc(&k, '|');
        kb_field(&k, o->device_name);
        kb_putc(&k, '|');
        kb_field(&k, o->device_manufacturer);
        kb_putc(&k, '|');
        kb_field(&k, o->device_model);
        kb_putc(&k, '|');
        kb_field(&k, o->device_serial);
    }
    return kb_done(&k);
}

/* M18: site|laterality|modifier|tracking id|tracking uid */
static const char *body_structure_key(s2f_fhir *f, const s2f_site *site, const char *tracking_id,
                                      const char *tracking_uid)
{
    keybuf k = {f, NULL, 0, 0, 0};
    kb_code(&k, site ? site->site : NULL);
    kb_putc(&k, '|');
    kb_code(&k, site ? site->laterality : NULL);
    kb_putc(&k, '|');
    kb_code(&k, site ? site->modifier : NULL);
    kb_putc(&k, '|');
    kb_field(&k, tracking_id);
    kb_putc(&k, '|');
    kb_field(&k, tracking_uid);
    return kb_done(&k);
}

/* ---- business identities (M24 amended, issue 10 defect 7) ------------------------------- */

/* The identity of a shared resource: `shared` when it comes from what the resource is
 * (the same in every report: s2f_fhir_identity_rid), else scoped to the SR (s2f_fhir_rid).
 * kind is also the set of s2f_fhir_first_time: the shared kinds below differ from the
 * SR-scoped S2F_KIND_... ones. key NULL: memory ran out (f->code is set). */

#define KIND_ID_DEVICE "id-device"       /* equipment and device observers (one namespace) */
#define KIND_ID_ALGORITHM "id-algorithm"
#define KIND_ID_PERSON "id-person"
#define KIND_ID_LESION "id-lesion"
#define KIND_ID_FETUS "id-fetus"       /* issue 10 #4: subjects (subjects.c) */
#define KIND_ID_SPECIMEN "id-specimen"

void s2f_fhir_rid_of_identity(s2f_fhir *f, const char *type, const s2f_fhir_identity *id,
                              s2f_rid *rid)
{
    if (id->shared)
        s2f_fhir_identity_rid(f, type, id->kind, id->key ? id->key : "", rid);
    else
        s2f_fhir_rid(f, type, id->kind, id->key ? id->key : "", rid);
}

/* A PN without trailing component separators and spaces ("Smith^John^^" = "Smith^John"). */
static void kb_person_name(keybuf *k, const char *pn)
{
    size_t n = pn ? strlen(pn) : 0;
    while (n && (pn[n - 1] == '^' || pn[n - 1] == ' ' || pn[n - 1] == '='))
        n--;
    for (size_t i = 0; i < n; i++) {
        if (pn[i] == '\\' || pn[i] == '|' || pn[i] == ';')
            kb_putc(k, '\\');
        kb_putc(k, pn[i]);
    }
}

/* The patient (M4): "issuer system|issuer local|Patient ID"; NULL without a Patient ID
 * (then no lesion has an identity beyond its report). */
static const char *patient_key(s2f_fhir *f)
{
    const s2f_header *h = f->h;
    if (!h || !nonempty(h->patient_id))
        return NULL;
    int oom = 0;
    const char *system = s2f_fhir_issuer_system(f->arena, &h->patient_issuer, &oom);
    if (oom) {
        fail_oom(f);
        return NULL;
    }
    keybuf k = {f, NULL, 0, 0, 0};
    kb_field(&k, system);
    kb_putc(&k, '|');
    kb_field(&k, h->patient_issuer.local);
    kb_putc(&k, '|');
    kb_field(&k, h->patient_id);
    return kb_done(&k);
}

/* A physical device: "uid|" + Device UID; without one, "mms|manufacturer|model|serial"
 * when it has a serial number (manufacturer and model alone name a product, not one
 * device); else NULL: no identity beyond the report. */
static const char *device_key(s2f_fhir *f, const char *uid, const char *manufacturer,
                              const char *model, const char *serial)
{
    keybuf k = {f, NULL, 0, 0, 0};
    if (nonempty(uid)) {
        kb_field(&k, "uid");
        kb_putc(&k, '|');
        kb_field(&k, uid);
    } else if (nonempty(serial)) {
        kb_field(&k, "mms");
        kb_putc(&k, '|');
        kb_field(&k, manufacturer);
        kb_putc(&k, '|');
        kb_field(&k, model);
        kb_putc(&k, '|');
        kb_field(&k, serial);
    } else {
        return NULL;
    }
    return kb_done(&k);
}

/* M7: the equipment's identity (Device UID (0018,1002), else manufacturer, model, serial
 * (0008,0070), (0008,1090), (0018,1000)); without either, the one equipment of the SR. */
s2f_fhir_identity s2f_fhir_equipment_identity(s2f_fhir *f)
{
    const s2f_header *h = f->h;
    const char *key = h ? device_key(f, h->device_uid, h->manufacturer, h->model, h->device_serial)
                        : NULL;
    if (key)
        return (s2f_fhir_identity){KIND_ID_DEVICE, key, 1};
    return (s2f_fhir_identity){S2F_KIND_EQUIPMENT, "", 0};
}

/* M22: an algorithm is its name, version and parameters (the family only describes it);
 * without a name and a version, its content within the SR. */
s2f_fhir_identity s2f_fhir_algorithm_identity(s2f_fhir *f, const s2f_algorithm *a)
{
    if (!nonempty(a->name) && !nonempty(a->version))
        return (s2f_fhir_identity){S2F_KIND_ALGORITHM, algorithm_key(f, a), 0};
    keybuf k = {f, NULL, 0, 0, 0};
    kb_algorithm(&k, a);
    return (s2f_fhir_identity){KIND_ID_ALGORITHM, kb_done(&k), 1};
}

/* M10: a person is the name (PN, trailing separators dropped) and the Identifier within
 * Person Observer's Role (DCM 128775); a device as device_key; without either, the
 * observer's content within the SR. */
s2f_fhir_identity s2f_fhir_observer_identity(s2f_fhir *f, const s2f_observer *o)
{
    if (!o->is_device && (nonempty(o->person_name) || nonempty(o->person_id))) {
        keybuf k = {f, NULL, 0, 0, 0};
        kb_person_name(&k, o->person_name);
        kb_putc(&k, '|');
        kb_field(&k, o->person_id);
        return (s2f_fhir_identity){KIND_ID_PERSON, kb_done(&k), 1};
    }
    if (o->is_device) {
        const char *key = device_key(f, o->device_uid, o->device_manufacturer, o->device_model,
                                     o->device_serial);
        if (key)
            return (s2f_fhir_identity){KIND_ID_DEVICE, key, 1};
    }
    return (s2f_fhir_identity){o->is_device ? S2F_KIND_PARTICIPANT_DEVICE : S2F_KIND_PRACTITIONER,
                      observer_key(f, o), 0};
}

/* M18: a lesion followed across reports is the patient and its Tracking UID (DCM 112040);
 * a Tracking Identifier alone (DCM 112039, a label: two lesions of one patient may carry
 * "Lesion 1" in unrelated reports) identifies it within the SR only; so no two
 * BodyStructures of a Bundle carry one tracking identifier. An untracked site (with its
 * laterality or modifier) is that structure of the patient: patient + the site's content.
 * Without a Patient ID, everything is scoped to the SR. */
s2f_fhir_identity s2f_fhir_body_structure_identity(s2f_fhir *f, const s2f_site *site,
                                        const char *tracking_id, const char *tracking_uid)
{
    keybuf k = {f, NULL, 0, 0, 0};
    const char *patient = patient_key(f);
    if (!running(f))
        return (s2f_fhir_identity){S2F_KIND_BODY_STRUCTURE, NULL, 0};
    if (nonempty(tracking_uid)) {
        kb_field(&k, "uid");
        kb_putc(&k, '|');
        kb_field(&k, patient);
        kb_putc(&k, '|');
        kb_field(&k, tracking_uid);
        return (s2f_fhir_identity){patient ? KIND_ID_LESION : S2F_KIND_BODY_STRUCTURE, kb_done(&k),
                          patient != NULL};
    }
    if (nonempty(tracking_id)) {
        kb_field(&k, "id");
        kb_putc(&k, '|');
        kb_field(&k, tracking_id);
        return (s2f_fhir_identity){S2F_KIND_BODY_STRUCTURE, kb_done(&k), 0};
    }
    kb_field(&k, "site");
    kb_putc(&k, '|');
    kb_field(&k, patient);
    kb_putc(&k, '|');
    kb_field(&k, body_structure_key(f, site, NULL, NULL));
    return (s2f_fhir_identity){patient ? KIND_ID_LESION : S2F_KIND_BODY_STRUCTURE, kb_done(&k),
                      patient != NULL};
}

/* Issue 10 #4 follow-up of #7 (M16, M24 amended): a fetus, specimen or device subject
 * (Observation.focus) outlives its report like a lesion. A fetus is the patient + its
 * Subject UID, else + its Subject ID (a Fetus Number alone is a label within one
 * pregnancy); a specimen its Specimen UID, else the patient + Specimen Identifier; a device
 * as device_key, in the equipment's and device observers' kind, so a device subject that
 * is the equipment or an observer is the same Device. Returns 1 and sets *kind, *key (key
 * NULL when memory ran out) for such an identity; 0: scoped to the SR (no Patient ID, or
 * nothing identifying). */
static int business_subject_identity(s2f_fhir *f, const s2f_subject *s, const char **kind,
                                     const char **key)
{
    if (s->cls == S2F_SUBJECT_DEVICE) {
        *kind = KIND_ID_DEVICE;
        *key = device_key(f, s->uid, s->manufacturer, s->model, s->serial);
        return *key != NULL;
    }
    int fetus = s->cls == S2F_SUBJECT_FETUS;
    if (!fetus && s->cls != S2F_SUBJECT_SPECIMEN)
        return 0;
    keybuf k = {f, NULL, 0, 0, 0};
    *kind = fetus ? KIND_ID_FETUS : KIND_ID_SPECIMEN;
    if (!fetus && nonempty(s->uid)) {
        kb_field(&k, "uid");
        kb_putc(&k, '|');
        kb_field(&k, s->uid);
        *key = kb_done(&k);
        return 1;
    }
    const char *patient = patient_key(f);
    const char *which = fetus && nonempty(s->uid) ? "uid" : nonempty(s->id) ? "id" : NULL;
    if (!patient || !which)
        return 0;
    kb_field(&k, which);
    kb_putc(&k, '|');
    kb_field(&k, patient);
    kb_putc(&k, '|');
    kb_field(&k, which[0] == 'u' ? s->uid : s->id);
    *key = kb_done(&k);
    return 1;
}

void s2f_fhir_equipment_rid(s2f_fhir *f, s2f_rid *rid)
{
    s2f_fhir_identity id = s2f_fhir_equipment_identity(f);
    s2f_fhir_rid_of_identity(f, "Device", &id, rid);
}

void s2f_fhir_algorithm_rid(s2f_fhir *f, const s2f_algorithm *a, s2f_rid *rid)
{
    s2f_fhir_identity id = s2f_fhir_algorithm_identity(f, a);
    s2f_fhir_rid_of_identity(f, "Device", &id, rid);
}

/* A device observer whose UID is the equipment's Device UID (0018,1002), or whose device
 * identity is the equipment's, is the M7 device ("not created twice"): its identity is the
 * equipment's and nothing more is written. */
int s2f_fhir_observer_is_equipment(s2f_fhir *f, const s2f_observer *o)
{
    if (!o->is_device)
        return 0;
    if (nonempty(o->device_uid) && f->h && nonempty(f->h->device_uid))
        return strcmp(o->device_uid, f->h->device_uid) == 0;
    s2f_fhir_identity eq = s2f_fhir_equipment_identity(f), me = s2f_fhir_observer_identity(f, o);
    return eq.shared && me.shared && eq.key && me.key && !strcmp(eq.key, me.key);
}

void s2f_fhir_observer_rid(s2f_fhir *f, const s2f_observer *o, s2f_rid *rid)
{
    if (s2f_fhir_observer_is_equipment(f, o)) {
        s2f_fhir_equipment_rid(f, rid);
        return;
    }
    s2f_fhir_identity id = s2f_fhir_observer_identity(f, o);
    s2f_fhir_rid_of_identity(f, o->is_device ? "Device" : "Practitioner", &id, rid);
}

int s2f_fhir_performer_rid(s2f_fhir *f, const s2f_context *ctx, size_t i, s2f_rid *rid)
{
    if (ctx->observers[i].is_device)
        return 0;
    s2f_fhir_observer_rid(f, &ctx->observers[i], rid);
    for (size_t k = 0; k < i; k++) {
        if (ctx->observers[k].is_device)
            continue;
        s2f_rid other;
        s2f_fhir_observer_rid(f, &ctx->observers[k], &other);
        if (!strcmp(other.id, rid->id))
            return 0;
    }
    return 1;
}

void s2f_fhir_body_structure_rid(s2f_fhir *f, const s2f_site *site, const char *tracking_id,
                                 const char *tracking_uid, s2f_rid *rid)
{
    s2f_fhir_identity id = s2f_fhir_body_structure_identity(f, site, tracking_id, tracking_uid);
    s2f_fhir_rid_of_identity(f, "BodyStructure", &id, rid);
}

/* ---- Observations (M13-M22) ------------------------------------------------------------ */

static void item_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid)
{
    s2f_fhir_observation_rid(f, it, rid);
}

void s2f_fhir_group_rid(s2f_fhir *f, const s2f_group *g, s2f_rid *rid)
{
    item_rid(f, g->item, rid);
}

void s2f_fhir_measurement_rid(s2f_fhir *f, const s2f_measurement *m, s2f_rid *rid)
{
    item_rid(f, m->item, rid);
}

void s2f_fhir_evaluation_rid(s2f_fhir *f, const s2f_evaluation *e, s2f_rid *rid)
{
    item_rid(f, e->item, rid);
}

/* ---- ImagingSelections (M12, M19) and subjects (M16) --------------------------------- */

void s2f_fhir_selection_rid(s2f_fhir *f, const s2f_image_ref *ref, s2f_rid *rid)
{
    /* M19, M24: one selection per reference item, keyed by its position */
    s2f_fhir_rid(f, "ImagingSelection", S2F_KIND_SELECTION, s2f_fhir_item_key(f, ref->item), rid);
}

void s2f_fhir_source_item_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid)
{
    /* M12, M24 */
    s2f_fhir_rid(f, "ImagingSelection", S2F_KIND_SOURCE_ITEM, s2f_fhir_item_key(f, it), rid);
}

/* The selection rid of a reference item that is not at hand as an s2f_image_ref. */
void s2f_fhir_item_selection_rid(s2f_fhir *f, const s2f_item *it, s2f_rid *rid)
{
    s2f_fhir_rid(f, "ImagingSelection", S2F_KIND_SELECTION, s2f_fhir_item_key(f, it), rid);
}

#define KIND_SUBJECT "subject"

static const char *resource_type(const s2f_subject *s)
{
    switch (s->cls) {
    case S2F_SUBJECT_FETUS: return "BodyStructure";
    case S2F_SUBJECT_SPECIMEN: return "Specimen";
    default: return "Device";
    }
}

/* The identity: the business identity of business_subject_identity (above: patient +
 * Subject UID / ID, Specimen UID, Device UID or manufacturer + model + serial), else the
 * Subject Class item's position within the SR. *set and *key are those of
 * s2f_fhir_first_time; *key NULL when memory ran out. */
void s2f_fhir_subject_identity(s2f_fhir *f, const s2f_subject *s, const char **set,
                               const char **key, s2f_rid *rid)
{
    if (business_subject_identity(f, s, set, key)) {
        if (*key)
            s2f_fhir_identity_rid(f, resource_type(s), *set, *key, rid);
        return;
    }
    *set = KIND_SUBJECT;
    *key = f->code ? NULL : s2f_fhir_item_key(f, s->item);
    if (*key)
        s2f_fhir_rid(f, resource_type(s), KIND_SUBJECT, *key, rid);
}

void s2f_fhir_subject_rid(s2f_fhir *f, const s2f_subject *s, s2f_rid *rid)
{
    const char *set, *key;
    s2f_fhir_subject_identity(f, s, &set, &key, rid);
}
