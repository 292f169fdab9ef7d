/*
 * report.c - reads the SR content tree as a TID 1500 Measurement Report (see report.h).
 *
 * One walk from the root: the root's context items (M16), the three containers in either
 * placement (section 3 of MAPPING.md), each measurement group's children sorted into
 * finding, site, method, algorithm, image references, measurements and evaluations
 * (M17-M22), the derived container's NUMs and their groups (M14), and the document-level
 * evaluations (M15). Observation context is carried down as the walk descends. Every item
 * below a mapped container that no rule takes is listed (M26).
 */
#include "report/report.h"

#include <string.h>
#include <strings.h>

/* ---- concepts ------------------------------------------------------------------------ */

/* A concept as DICOM names it, and its legacy SNOMED RT id where real files still use one
 * (PS3.16 gives these equivalences; the full SRT table belongs to the code stage). */
typedef struct concept {
    const char *value, *scheme, *srt;
} concept;

static const concept C_REPORT = {"126000", "DCM", NULL};
static const concept C_IMAGING_MEASUREMENTS = {"126010", "DCM", NULL};
static const concept C_DERIVED_MEASUREMENTS = {"126011", "DCM", NULL};
static const concept C_DERIVED_MEASUREMENTS_TYPO = {"126001", "DCM", NULL}; /* M14: guide's typo */
static const concept C_QUALITATIVE_EVALUATIONS = {"C0034375", "UMLS", NULL};
static const concept C_MEASUREMENT_GROUP = {"125007", "DCM", NULL};
static const concept C_LANGUAGE = {"121049", "DCM", NULL};
static const concept C_COUNTRY_OF_LANGUAGE = {"121046", "DCM", NULL};
static const concept C_PROCEDURE_REPORTED = {"121058", "DCM", NULL};
static const concept C_IMAGE_LIBRARY = {"111028", "DCM", NULL};
static const concept C_TRACKING_ID = {"112039", "DCM", NULL};
static const concept C_TRACKING_UID = {"112040", "DCM", NULL};
static const concept C_FINDING = {"121071", "DCM", NULL};
static const concept C_FINDING_CATEGORY = {"276214006", "SCT", NULL};
static const concept C_FINDING_SITE = {"363698007", "SCT", "G-C0E3"};
static const concept C_LATERALITY = {"272741003", "SCT", "G-C171"};
static const concept C_TOPOGRAPHICAL_MODIFIER = {"106233006", "SCT", "G-A1F8"};
static const concept C_METHOD = {"370129005", "SCT", "G-C036"};
static const concept C_ALGORITHM_FAMILY = {"111000", "DCM", NULL};
static const concept C_ALGORITHM_NAME = {"111001", "DCM", NULL};
static const concept C_ALGORITHM_PARAMETERS = {"111002", "DCM", NULL};
static const concept C_ALGORITHM_VERSION = {"111003", "DCM", NULL};
static const concept C_IMAGE_REGION = {"111030", "DCM", NULL};
static const concept C_SEGMENT = {"121191", "DCM", NULL};
static const concept C_SOURCE_IMAGE_FOR_SEG = {"121233", "DCM", NULL};
static const concept C_SOURCE_SERIES_FOR_SEG = {"121232", "DCM", NULL};
static const concept C_SEGMENTATION_FRAME = {"121214", "DCM", NULL};
static const concept C_REGION_IN_SPACE = {"130488", "DCM", NULL};
static const concept C_VOLUME_SURFACE = {"121231", "DCM", NULL};
static const concept C_RWVM = {"126100", "DCM", NULL};
static const concept C_ILLUSTRATION_OF_ROI = {"121200", "DCM", NULL};
static const concept C_VISUAL_EXPLANATION = {"130401", "DCM", NULL};
static const concept C_ROI_NUMBER = {"130489", "DCM", NULL};
static const concept C_ACTIVITY_SESSION = {"C67447", "NCIt", NULL};
static const concept C_OBSERVER_TYPE = {"121005", "DCM", NULL};
static const concept C_DEVICE = {"121007", "DCM", NULL};
static const concept C_PERSON_NAME = {"121008", "DCM", NULL};
static const concept C_PERSON_ORGANIZATION = {"121009", "DCM", NULL};
static const concept C_PERSON_ROLE_IN_PROCEDURE = {"121011", "DCM", NULL};
static const concept C_PERSON_ID_IN_ROLE = {"128775", "DCM", NULL};
static const concept C_DEVICE_UID = {"121012", "DCM", NULL};
static const concept C_DEVICE_NAME = {"121013", "DCM", NULL};
static const concept C_DEVICE_MANUFACTURER = {"121014", "DCM", NULL};
static const concept C_DEVICE_MODEL = {"121015", "DCM", NULL};
static const concept C_DEVICE_SERIAL = {"121016", "DCM", NULL};
static const concept C_SUBJECT_CLASS = {"121024", "DCM", NULL};        /* TID 1006 */
static const concept C_SUBJECT_PATIENT = {"121025", "DCM", NULL};
static const concept C_SUBJECT_FETUS = {"121026", "DCM", NULL};
static const concept C_SUBJECT_SPECIMEN = {"121027", "DCM", NULL};
static const concept C_SUBJECT_DEVICE = {"121192", "DCM", NULL};
static const concept C_SUBJECT_UID = {"121028", "DCM", NULL};          /* TID 1008 */
static const concept C_SUBJECT_ID = {"121030", "DCM", NULL};
static const concept C_FETUS_NUMBER = {"121037", "DCM", NULL};
static const concept C_SPECIMEN_UID = {"121039", "DCM", NULL};         /* TID 1009 */
static const concept C_SPECIMEN_ID = {"121041", "DCM", NULL};
static const concept C_SPECIMEN_TYPE = {"371439000", "SCT", NULL};
static const concept C_DEVICE_SUBJECT_NAME = {"121193", "DCM", NULL};  /* TID 1010 */
static const concept C_DEVICE_SUBJECT_MANUFACTURER = {"121194", "DCM", NULL};
static const concept C_DEVICE_SUBJECT_MODEL = {"121195", "DCM", NULL};
static const concept C_DEVICE_SUBJECT_SERIAL = {"121196", "DCM", NULL};
static const concept C_DEVICE_SUBJECT_UID = {"121198", "DCM", NULL};

static int code_is_exactly(const s2f_codeval *c, const concept *k)
{
    if (k->srt && !strcmp(c->value, k->srt) && !strcmp(c->scheme, "SRT"))
        return 1;
    /* designators are case-sensitive in DICOM, but real files write "NCIT", "umls" (the
     * exact comparison first: it is the usual answer, and needs no locale's case tables) */
    return !strcmp(c->value, k->value) &&
           (!strcmp(c->scheme, k->scheme) || !strcasecmp(c->scheme, k->scheme));
}

/* Whether value v may be concept value k (of 2 bytes or more): its first two bytes, which
 * tell most codes asked about from the concept asked for, compared here. */
static inline int may_be(const char *v, const char *k)
{
    return v[0] == k[0] && v[1] == k[1];
}

static inline int code_is(const s2f_codeval *c, const concept *k)
{
    if (!c || (!may_be(c->value, k->value) && !(k->srt && may_be(c->value, k->srt))))
        return 0;
    return code_is_exactly(c, k);
}

static inline int named(const s2f_item *it, const concept *k) { return code_is(it->concept, k); }

/* Observer context items of TID 1002/1003/1004 (DCM 121005-121017). */
static int is_observer_item(const s2f_item *it)
{
    const s2f_codeval *c = it->concept;
    if (!c || strcmp(c->scheme, "DCM"))
        return 0;
    return strcmp(c->value, "121005") >= 0 && strcmp(c->value, "121017") <= 0 &&
           strlen(c->value) == 6;
}

static int is_algorithm_item(const s2f_item *it)
{
    return named(it, &C_ALGORITHM_NAME) || named(it, &C_ALGORITHM_VERSION) ||
           named(it, &C_ALGORITHM_PARAMETERS) || named(it, &C_ALGORITHM_FAMILY);
}

/* ---- the walk ------------------------------------------------------------------------ */

typedef struct walker {
    s2f_arena *a;
    s2f_report *r;
    const char **rule;                /* by item->seq: the rule that consumed it (M26) */
    int oom;
    const s2f_item *bad_subject;      /* a Subject Class no rule can place (issue 10 #4) */
    size_t cap_groups, cap_derived, cap_evaluations, cap_unmapped;
} walker;

/* M26: an item is consumed by naming the rule that maps it; what no rule names is listed.
 * Consuming an item does not consume its children: each is consumed by its own rule. */
static void consume(walker *w, const s2f_item *it, const char *rule) { w->rule[it->seq] = rule; }

static int consumed(const walker *w, const s2f_item *it) { return w->rule[it->seq] != NULL; }

/* Consumes an item and its whole subtree, for the few items whose rule takes the subtree as
 * one (the image library, a SELECTED FROM image; depth is bounded by the tree's limit). */
static void consume_tree(walker *w, const s2f_item *it, const char *rule)
{
    consume(w, it, rule);
    for (uint32_t i = 0; i < it->n_children; i++)
        consume_tree(w, it->children[i], rule);
}

/* Gives an empty arena array room for n elements at once (when n is known), so that
 * appending them copies nothing. */
static void reserve(walker *w, void **array, size_t *cap, size_t n, size_t size)
{
    if (*array || !n)
        return;
    if (!(*array = s2f_arena_alloc(w->a, n * size)))
        w->oom = 1;
    else
        *cap = n;
}

/* Appends one zeroed element to an arena array whose capacity *cap tracks. */
static void *append(walker *w, void **array, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        void *p = s2f_arena_realloc(w->a, *array, *cap * size, c * size);
        if (!p) {
            w->oom = 1;
            return NULL;
        }
        *array = p;
        *cap = c;
    }
    char *slot = (char *)*array + (*n)++ * size;
    memset(slot, 0, size);
    return slot;
}

static const char *text_of(const s2f_item *it)
{
    switch (it->vt) {
    case S2F_VT_TEXT: case S2F_VT_UIDREF: case S2F_VT_PNAME: case S2F_VT_DATETIME:
    case S2F_VT_DATE: case S2F_VT_TIME:
        return it->v.text;
    default:
        return NULL;
    }
}

static const s2f_codeval *code_of(const s2f_item *it)
{
    return it->vt == S2F_VT_CODE ? &it->v.code : NULL;
}

/* ---- observation context (M9, M10, PS3.3 C.17.5) ------------------------------------- */

/* TID 1003: Identifier within Person Observer's Role (DCM 128775), a HAS CONCEPT MOD child
 * of Person Observer's Role in this Procedure (DCM 121011); NULL when absent. */
static const char *person_id_in_role(walker *w, const s2f_item *role)
{
    for (uint32_t i = 0; i < role->n_children; i++) {
        const s2f_item *c = role->children[i];
        if (!c->by_reference && named(c, &C_PERSON_ID_IN_ROLE) && text_of(c) && *text_of(c)) {
            consume(w, c, S2F_RULE_OBSERVER);
            return text_of(c);
        }
    }
    return NULL;
}

/* One observer item into `o`; 1 when a rule maps it (M10: the Practitioner's name and
 * identifier, the Device's identity), 0 for what FHIR has no place for here (Observer
 * Organization: R5 Practitioner has no organization; Observer Type only sorts; others). */
static int set_observer_field(walker *w, s2f_observer *o, const s2f_item *it)
{
    const char *t = text_of(it);
    if (named(it, &C_PERSON_NAME))
        o->person_name = t;
    else if (named(it, &C_PERSON_ORGANIZATION)) {
        o->organization = t;
        return 0; /* issue 10 #5: listed (M26), see docs/decisions.md */
    } else if (named(it, &C_PERSON_ROLE_IN_PROCEDURE)) {
        o->person_id = person_id_in_role(w, it);
        return o->person_id != NULL;
    } else if (named(it, &C_OBSERVER_TYPE))
        return 1;
    else if (named(it, &C_DEVICE_UID))
        o->device_uid = t;
    else if (named(it, &C_DEVICE_NAME))
        o->device_name = t;
    else if (named(it, &C_DEVICE_MANUFACTURER))
        o->device_manufacturer = t;
    else if (named(it, &C_DEVICE_MODEL))
        o->device_model = t;
    else if (named(it, &C_DEVICE_SERIAL))
        o->device_serial = t;
    else
        return 0;
    return 1;
}

/* An observer starts at each Observer Type, or at the first observer item without one
 * (a device when that item is a device attribute, DCM 121012-121017). */
static int starts_observer(const s2f_item *it, const s2f_observer *cur, int *is_device)
{
    if (named(it, &C_OBSERVER_TYPE)) {
        *is_device = code_is(code_of(it), &C_DEVICE);
        return 1;
    }
    int device_item = strcmp(it->concept->value, "121012") >= 0;
    if (!cur || cur->is_device != device_item) {
        *is_device = device_item;
        return 1;
    }
    return 0;
}

/* The observers named by the HAS OBS CONTEXT children of `container`, consumed. */
static size_t read_observers(walker *w, const s2f_item *container, const s2f_observer **out)
{
    s2f_observer *list = NULL, *cur = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t i = 0; i < container->n_children; i++) {
        const s2f_item *c = container->children[i];
        if (c->rel != S2F_REL_HAS_OBS_CONTEXT || c->by_reference || !is_observer_item(c))
            continue;
        int is_device = 0;
        if (starts_observer(c, cur, &is_device)) {
            cur = append(w, (void **)&list, &n, &cap, sizeof *list);
            if (!cur)
                return 0;
            cur->is_device = is_device;
            cur->item = c;
        }
        if (set_observer_field(w, cur, c))
            consume(w, c, S2F_RULE_OBSERVER);
    }
    *out = list;
    return n;
}

/* ---- subject context (TID 1006-1010, M16, issue 10 defect 4) ---------------------------- */

/* One TID 1008-1010 item of subject `s`; 1 when a rule maps it. Items of the class it
 * does not belong to (or others, e.g. Mother of fetus 121036) stay listed (M26). */
static int set_subject_field(s2f_subject *s, const s2f_item *it)
{
    const char *t = text_of(it);
    switch (s->cls) {
    case S2F_SUBJECT_FETUS:
        if (named(it, &C_SUBJECT_UID) && t)
            return s->uid = t, 1;
        if (named(it, &C_SUBJECT_ID) && t)
            return s->id = t, 1;
        if (named(it, &C_FETUS_NUMBER) && it->vt == S2F_VT_NUM && it->v.num.text)
            return s->fetus_number = it->v.num.text, 1;
        return 0;
    case S2F_SUBJECT_SPECIMEN:
        if (named(it, &C_SPECIMEN_UID) && t)
            return s->uid = t, 1;
        if (named(it, &C_SPECIMEN_ID) && t)
            return s->id = t, 1;
        if (named(it, &C_SPECIMEN_TYPE) && code_of(it))
            return s->specimen_type = code_of(it), 1;
        return 0;
    case S2F_SUBJECT_DEVICE:
        if (named(it, &C_DEVICE_SUBJECT_UID) && t)
            return s->uid = t, 1;
        if (named(it, &C_DEVICE_SUBJECT_NAME) && t)
            return s->id = t, 1;
        if (named(it, &C_DEVICE_SUBJECT_MANUFACTURER) && t)
            return s->manufacturer = t, 1;
        if (named(it, &C_DEVICE_SUBJECT_MODEL) && t)
            return s->model = t, 1;
        if (named(it, &C_DEVICE_SUBJECT_SERIAL) && t)
            return s->serial = t, 1;
        return 0;
    default:
        return 0;
    }
}

/* The Subject Context among the HAS OBS CONTEXT children of `container`, NULL when it
 * names none. A class other than patient, fetus, specimen and device is refused. */
static const s2f_subject *read_subject(walker *w, const s2f_item *container)
{
    s2f_subject *s = NULL;
    for (uint32_t i = 0; i < container->n_children && !s; i++) {
        const s2f_item *c = container->children[i];
        if (c->by_reference || c->rel != S2F_REL_HAS_OBS_CONTEXT || !named(c, &C_SUBJECT_CLASS))
            continue;
        const s2f_codeval *v = code_of(c);
        s2f_subject_class cls;
        if (code_is(v, &C_SUBJECT_PATIENT))
            cls = S2F_SUBJECT_PATIENT;
        else if (code_is(v, &C_SUBJECT_FETUS))
            cls = S2F_SUBJECT_FETUS;
        else if (code_is(v, &C_SUBJECT_SPECIMEN))
            cls = S2F_SUBJECT_SPECIMEN;
        else if (code_is(v, &C_SUBJECT_DEVICE))
            cls = S2F_SUBJECT_DEVICE;
        else {
            if (!w->bad_subject)
                w->bad_subject = c;
            return NULL;
        }
        if (!(s = s2f_arena_calloc(w->a, 1, sizeof *s))) {
            w->oom = 1;
            return NULL;
        }
        s->cls = cls;
        s->item = c;
        consume(w, c, S2F_RULE_SUBJECT);
    }
    for (uint32_t i = 0; s && i < container->n_children; i++) {
        const s2f_item *c = container->children[i];
        if (!c->by_reference && c->rel == S2F_REL_HAS_OBS_CONTEXT && !consumed(w, c) &&
            set_subject_field(s, c))
            consume(w, c, S2F_RULE_SUBJECT);
    }
    return s;
}

/* The context inside `container`: its own observers replace the inherited ones. */
static s2f_context context_in(walker *w, const s2f_context *outer, const s2f_item *container)
{
    s2f_context ctx = *outer;
    const s2f_observer *obs;
    size_t n = read_observers(w, container, &obs);
    if (n) {
        ctx.observers = obs;
        ctx.n_observers = n;
    }
    if (container->observation_dt)
        ctx.observation_dt = container->observation_dt;
    const s2f_subject *subject = read_subject(w, container);
    if (subject) /* the patient class resets an inherited fetus, specimen or device */
        ctx.subject = subject->cls == S2F_SUBJECT_PATIENT ? NULL : subject;
    return ctx;
}

/* ---- parts of groups, measurements and evaluations ----------------------------------- */

/* Algorithm Identification (TID 4019) among the HAS CONCEPT MOD children of `it`. */
static const s2f_algorithm *read_algorithm(walker *w, const s2f_item *it)
{
    s2f_algorithm *alg = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; i < it->n_children; i++) {
        const s2f_item *c = it->children[i];
        if (c->by_reference || !is_algorithm_item(c))
            continue;
        if (!alg && !(alg = s2f_arena_calloc(w->a, 1, sizeof *alg))) {
            w->oom = 1;
            return NULL;
        }
        if (!alg->item)
            alg->item = c;
        if (named(c, &C_ALGORITHM_NAME))
            alg->name = text_of(c);
        else if (named(c, &C_ALGORITHM_VERSION))
            alg->version = text_of(c);
        else if (named(c, &C_ALGORITHM_FAMILY))
            alg->family = code_of(c);
        else {
            const char **p = append(w, (void **)&alg->parameters, &alg->n_parameters, &cap,
                                    sizeof *alg->parameters);
            if (p)
                *p = text_of(c);
        }
        consume(w, c, S2F_RULE_ALGORITHM);
    }
    return alg;
}

static void read_site(walker *w, const s2f_item *it, s2f_site *site)
{
    site->site = code_of(it);
    site->item = it;
    consume(w, it, S2F_RULE_SITE);
    for (uint32_t i = 0; i < it->n_children; i++) {
        const s2f_item *c = it->children[i];
        if (c->by_reference)
            continue;
        if (named(c, &C_LATERALITY))
            site->laterality = code_of(c);
        else if (named(c, &C_TOPOGRAPHICAL_MODIFIER))
            site->modifier = code_of(c);
        else
            continue;
        consume(w, c, S2F_RULE_SITE_DETAIL);
    }
}

/* The M19 kind of an image reference item; 0 when it is none. */
static int ref_kind_of(const s2f_item *it, s2f_ref_kind *kind)
{
    static const struct { const concept *c; s2f_vt vt; s2f_ref_kind kind; } kinds[] = {
        {&C_IMAGE_REGION, S2F_VT_SCOORD, S2F_REF_REGION_2D},
        {&C_IMAGE_REGION, S2F_VT_SCOORD3D, S2F_REF_REGION_3D},
        {&C_SEGMENT, S2F_VT_IMAGE, S2F_REF_SEGMENT},
        {&C_SOURCE_IMAGE_FOR_SEG, S2F_VT_IMAGE, S2F_REF_SOURCE_IMAGE_FOR_SEG},
        {&C_SOURCE_SERIES_FOR_SEG, S2F_VT_UIDREF, S2F_REF_SOURCE_SERIES_FOR_SEG},
        {&C_SEGMENTATION_FRAME, S2F_VT_IMAGE, S2F_REF_SEGMENTATION_FRAME},
        {&C_REGION_IN_SPACE, S2F_VT_COMPOSITE, S2F_REF_REGION_IN_SPACE},
        {&C_VOLUME_SURFACE, S2F_VT_SCOORD3D, S2F_REF_VOLUME_SURFACE},
        {&C_RWVM, S2F_VT_COMPOSITE, S2F_REF_REAL_WORLD_VALUE_MAP},
        {&C_ILLUSTRATION_OF_ROI, S2F_VT_IMAGE, S2F_REF_ILLUSTRATION_OF_ROI},
        {&C_VISUAL_EXPLANATION, S2F_VT_IMAGE, S2F_REF_VISUAL_EXPLANATION},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (it->vt == kinds[i].vt && named(it, kinds[i].c)) {
            *kind = kinds[i].kind;
            return 1;
        }
    return 0;
}

/* The IMAGE a region is SELECTED FROM: a child, or the target of a by-reference child. */
static const s2f_item *selected_image(walker *w, const s2f_item *region)
{
    for (uint32_t i = 0; i < region->n_children; i++) {
        const s2f_item *c = region->children[i];
        const s2f_item *img = c->by_reference ? c->ref_target : c;
        if (c->rel == S2F_REL_SELECTED_FROM && img && img->vt == S2F_VT_IMAGE) {
            consume_tree(w, c, S2F_RULE_IMAGE_REF);
            return img;
        }
    }
    return NULL;
}

/* Whether a UID is a valid DICOM UID (PS3.5 9.1: digits and dots, at most 64). */
static int valid_uid(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++)
        if (n >= 64 || !((s[n] >= '0' && s[n] <= '9') || s[n] == '.'))
            return 0;
    return n > 0;
}

static void add_ref(walker *w, s2f_image_ref **refs, size_t *n, size_t *cap, s2f_ref_kind kind,
                    const s2f_item *it)
{
    /* issue 10 defect 2: a Source series for segmentation becomes a selection's seriesUid
     * (FHIR id, at most 64); one whose UID cannot be that is left unmapped (M26), as the
     * 66-character one of the guide's own example */
    if (kind == S2F_REF_SOURCE_SERIES_FOR_SEG && !valid_uid(text_of(it)))
        return;
    s2f_image_ref *ref = append(w, (void **)refs, n, cap, sizeof **refs);
    if (!ref)
        return;
    ref->kind = kind;
    ref->item = it;
    consume(w, it, S2F_RULE_IMAGE_REF);
    if (it->vt == S2F_VT_SCOORD || it->vt == S2F_VT_SCOORD3D)
        ref->image = selected_image(w, it);
    if (kind == S2F_REF_REGION_IN_SPACE) /* its ROI Numbers are the selection's subset */
        for (uint32_t i = 0; i < it->n_children; i++)
            if (named(it->children[i], &C_ROI_NUMBER))
                consume(w, it->children[i], S2F_RULE_IMAGE_REF);
}

/* ---- measurements, evaluations, groups --------------------------------------------------- */

/* A NUM's own children: method, site, tracking ids, image references, and the rest of its
 * modifiers as components (M20, M19). */
static void read_num_children(walker *w, s2f_measurement *m)
{
    size_t cap_refs = 0, cap_comp = 0;
    const s2f_item *num = m->item;
    for (uint32_t i = 0; i < num->n_children; i++) {
        const s2f_item *c = num->children[i];
        s2f_ref_kind kind;
        if (c->by_reference || consumed(w, c))
            continue;
        if (named(c, &C_METHOD) && !m->method) {
            m->method = code_of(c);
            consume(w, c, S2F_RULE_MEASUREMENT);
        } else if (named(c, &C_FINDING_SITE) && !m->site.item) {
            read_site(w, c, &m->site);
        } else if (ref_kind_of(c, &kind)) {
            add_ref(w, &m->refs, &m->n_refs, &cap_refs, kind, c);
        } else if (c->rel == S2F_REL_INFERRED_FROM &&
                   (c->vt == S2F_VT_SCOORD || c->vt == S2F_VT_SCOORD3D)) {
            add_ref(w, &m->refs, &m->n_refs, &cap_refs, S2F_REF_REGION_OF_MEASUREMENT, c);
        } else if (named(c, &C_TRACKING_ID) && !m->tracking_id) {
            m->tracking_id = text_of(c);
            consume(w, c, S2F_RULE_TRACKING);
        } else if (named(c, &C_TRACKING_UID) && !m->tracking_uid) {
            m->tracking_uid = text_of(c);
            consume(w, c, S2F_RULE_TRACKING);
        } else if (c->rel == S2F_REL_HAS_CONCEPT_MOD || c->rel == S2F_REL_HAS_PROPERTIES ||
                   (c->rel == S2F_REL_INFERRED_FROM && c->vt != S2F_VT_CONTAINER)) {
            /* modifiers, properties and the values it was inferred from (TID 1419
             * parameters): components, so nothing is lost (M20) */
            const s2f_item **p = append(w, (void **)&m->components, &m->n_components, &cap_comp,
                                        sizeof *m->components);
            if (p)
                *p = c;
            consume(w, c, S2F_RULE_COMPONENT); /* its own children: listed (M26) */
        }
    }
}

static void read_measurement(walker *w, const s2f_item *num, const s2f_context *outer,
                             s2f_measurement *m)
{
    m->item = num;
    consume(w, num, S2F_RULE_MEASUREMENT);
    m->ctx = context_in(w, outer, num);
    m->algorithm = read_algorithm(w, num);
    read_num_children(w, m);
}

static void read_evaluation(walker *w, const s2f_item *it, const s2f_context *outer,
                            s2f_evaluation *e)
{
    e->item = it;
    consume(w, it, S2F_RULE_EVALUATION);
    e->ctx = context_in(w, outer, it);
    e->algorithm = read_algorithm(w, it);
}

/* M21: items a rule other than the qualitative evaluation one takes. */
static int taken_by_other_rule(const s2f_item *it)
{
    static const concept geometric_purpose = {"130400", "DCM", NULL};
    return named(it, &C_TRACKING_ID) || named(it, &C_FINDING) || named(it, &geometric_purpose) ||
           named(it, &C_ACTIVITY_SESSION) || named(it, &C_FINDING_CATEGORY) ||
           named(it, &C_FINDING_SITE) || named(it, &C_METHOD) || is_algorithm_item(it) ||
           named(it, &C_SOURCE_SERIES_FOR_SEG) || named(it, &C_SOURCE_IMAGE_FOR_SEG);
}

static int is_evaluation(const s2f_item *it)
{
    return !it->by_reference && it->rel == S2F_REL_CONTAINS &&
           (it->vt == S2F_VT_CODE || it->vt == S2F_VT_TEXT) && !taken_by_other_rule(it);
}

/* A group's identification and description items (M17, M18). 1 when `c` was one. */
static int read_group_attribute(walker *w, s2f_group *g, const s2f_item *c)
{
    const char *rule = S2F_RULE_GROUP;
    if (named(c, &C_TRACKING_ID) && !g->tracking_id)
        g->tracking_id = text_of(c), rule = S2F_RULE_TRACKING;
    else if (named(c, &C_TRACKING_UID) && !g->tracking_uid)
        g->tracking_uid = text_of(c), rule = S2F_RULE_TRACKING;
    else if (named(c, &C_FINDING) && !g->finding)
        g->finding = code_of(c);
    else if (named(c, &C_FINDING_CATEGORY) && !g->finding_category)
        g->finding_category = code_of(c);
    else if (named(c, &C_METHOD) && !g->method)
        g->method = code_of(c);
    else if (named(c, &C_FINDING_SITE) && !g->site.item) {
        read_site(w, c, &g->site);
        return 1;
    } else if (c->rel == S2F_REL_HAS_OBS_CONTEXT) {
        /* session, time point, a second tracking id, subject context: context, not
         * observations (M21); no rule maps them, so they stay listed (M26, issue 10 #5) */
        return 1;
    } else {
        return 0;
    }
    consume(w, c, rule); /* its children (e.g. a severity under the Finding): listed (M26) */
    return 1;
}

/* How many children of a group may be measurements (NUMs it CONTAINS). */
static size_t count_measurements(const s2f_item *group)
{
    size_t n = 0;
    for (uint32_t i = 0; i < group->n_children; i++) {
        const s2f_item *c = group->children[i];
        n += !c->by_reference && c->vt == S2F_VT_NUM && c->rel == S2F_REL_CONTAINS;
    }
    return n;
}

static s2f_group *read_group(walker *w, const s2f_item *it, const s2f_context *outer,
                             int derived)
{
    s2f_group *g = s2f_arena_calloc(w->a, 1, sizeof *g);
    if (!g) {
        w->oom = 1;
        return NULL;
    }
    size_t cap_m = 0, cap_e = 0, cap_r = 0;
    g->item = it;
    g->derived = derived;
    consume(w, it, S2F_RULE_GROUP);
    g->ctx = context_in(w, outer, it);
    g->algorithm = read_algorithm(w, it);
    reserve(w, (void **)&g->measurements, &cap_m, count_measurements(it),
            sizeof *g->measurements);
    for (uint32_t i = 0; i < it->n_children && !w->oom; i++) {
        const s2f_item *c = it->children[i];
        s2f_ref_kind kind;
        if (c->by_reference || consumed(w, c) || read_group_attribute(w, g, c))
            continue;
        if (ref_kind_of(c, &kind)) {
            add_ref(w, &g->refs, &g->n_refs, &cap_r, kind, c);
        } else if (c->vt == S2F_VT_NUM && c->rel == S2F_REL_CONTAINS) {
            s2f_measurement *m = append(w, (void **)&g->measurements, &g->n_measurements,
                                        &cap_m, sizeof *m);
            if (m)
                read_measurement(w, c, &g->ctx, m);
        } else if (is_evaluation(c)) {
            s2f_evaluation *e = append(w, (void **)&g->evaluations, &g->n_evaluations, &cap_e,
                                       sizeof *e);
            if (e)
                read_evaluation(w, c, &g->ctx, e);
        }
    }
    s2f_group **slot = append(w, (void **)&w->r->groups, &w->r->n_groups, &w->cap_groups,
                              sizeof *slot);
    if (slot)
        *slot = g;
    return g;
}

/* ---- the containers ---------------------------------------------------------------------- */

static int is_container(const s2f_item *it, const concept *k)
{
    return !it->by_reference && it->vt == S2F_VT_CONTAINER && named(it, k);
}

static int is_group(const s2f_item *it) { return is_container(it, &C_MEASUREMENT_GROUP); }

static int is_derived_container(const s2f_item *it)
{
    return is_container(it, &C_DERIVED_MEASUREMENTS) ||
           is_container(it, &C_DERIVED_MEASUREMENTS_TYPO);
}

/* M14: each NUM is a derived measurement; its own groups (TID 1420, under the NUM) and
 * the groups directly under the container are what it is derived from. */
static void read_derived_container(walker *w, const s2f_item *dc, const s2f_context *outer)
{
    consume(w, dc, S2F_RULE_CONTAINER);
    s2f_context ctx = context_in(w, outer, dc);
    s2f_group **shared = NULL;
    size_t n_shared = 0, cap_shared = 0;
    for (uint32_t i = 0; i < dc->n_children; i++) {
        const s2f_item *c = dc->children[i];
        if (!is_group(c))
            continue;
        s2f_group **slot = append(w, (void **)&shared, &n_shared, &cap_shared, sizeof *slot);
        if (slot)
            *slot = read_group(w, c, &ctx, 1);
    }
    for (uint32_t i = 0; i < dc->n_children && !w->oom; i++) {
        const s2f_item *num = dc->children[i];
        if (num->by_reference || num->vt != S2F_VT_NUM)
            continue;
        s2f_measurement *m = append(w, (void **)&w->r->derived, &w->r->n_derived,
                                    &w->cap_derived, sizeof *m);
        if (!m)
            return;
        size_t cap = 0;
        for (uint32_t k = 0; k < num->n_children; k++)
            if (is_group(num->children[k])) {
                s2f_group **slot = append(w, (void **)&m->groups, &m->n_groups, &cap,
                                          sizeof *slot);
                if (slot)
                    *slot = read_group(w, num->children[k], &ctx, 1);
            }
        for (size_t k = 0; k < n_shared; k++) {
            s2f_group **slot = append(w, (void **)&m->groups, &m->n_groups, &cap, sizeof *slot);
            if (slot)
                *slot = shared[k];
        }
        read_measurement(w, num, &ctx, m);
    }
}

/* M15: CODE and TEXT children are document-level qualitative evaluations. */
static void read_evaluations_container(walker *w, const s2f_item *qc, const s2f_context *outer)
{
    consume(w, qc, S2F_RULE_CONTAINER);
    s2f_context ctx = context_in(w, outer, qc);
    for (uint32_t i = 0; i < qc->n_children && !w->oom; i++) {
        const s2f_item *c = qc->children[i];
        if (!is_evaluation(c))
            continue;
        s2f_evaluation *e = append(w, (void **)&w->r->evaluations, &w->r->n_evaluations,
                                   &w->cap_evaluations, sizeof *e);
        if (e)
            read_evaluation(w, c, &ctx, e);
    }
}

/* The three containers of TID 1500, accepted under the root or (as the guide draws
 * them) the derived and qualitative containers inside Imaging Measurements. */
static void read_container(walker *w, const s2f_item *c, const s2f_context *ctx);

static void read_measurements_container(walker *w, const s2f_item *mc, const s2f_context *outer)
{
    consume(w, mc, S2F_RULE_CONTAINER);
    s2f_context ctx = context_in(w, outer, mc);
    for (uint32_t i = 0; i < mc->n_children && !w->oom; i++) {
        const s2f_item *c = mc->children[i];
        if (is_group(c))
            read_group(w, c, &ctx, 0);
        else
            read_container(w, c, &ctx);
    }
}

static void read_container(walker *w, const s2f_item *c, const s2f_context *ctx)
{
    if (is_container(c, &C_IMAGING_MEASUREMENTS))
        read_measurements_container(w, c, ctx);
    else if (is_derived_container(c))
        read_derived_container(w, c, ctx);
    else if (is_container(c, &C_QUALITATIVE_EVALUATIONS))
        read_evaluations_container(w, c, ctx);
}

/* M10: the Participant Sequence (0040,A07A) names document-level observers: they join the
 * root's observer context, so they are written like content-tree observers and inherited
 * (persons as performers) until a container names its own. A device participant equal to
 * the equipment of M7 becomes that Device (resources.c). */
static void add_participants(walker *w, s2f_context *ctx)
{
    const s2f_header *h = &w->r->doc->header;
    if (!h->n_participants)
        return;
    size_t n = ctx->n_observers + h->n_participants;
    s2f_observer *all = s2f_arena_calloc(w->a, n, sizeof *all);
    if (!all) {
        w->oom = 1;
        return;
    }
    if (ctx->n_observers)
        memcpy(all, ctx->observers, ctx->n_observers * sizeof *all);
    for (size_t i = 0; i < h->n_participants; i++) {
        const s2f_participant *p = &h->participants[i];
        s2f_observer *o = &all[ctx->n_observers + i];
        o->is_device = p->is_device;
        o->person_name = p->person_name;
        o->device_uid = p->device_uid;
        o->device_name = p->station_name;
        o->device_manufacturer = p->manufacturer;
        o->device_model = p->model;
        o->device_serial = p->serial;
    }
    ctx->observers = all;
    ctx->n_observers = n;
}

/* M16: the root's language, observers, procedure reported and image library are context. */
static void read_root(walker *w, const s2f_item *root)
{
    s2f_report *r = w->r;
    s2f_context none = {0};
    consume(w, root, S2F_RULE_CONTAINER);
    r->ctx = context_in(w, &none, root);
    add_participants(w, &r->ctx);
    for (uint32_t i = 0; i < root->n_children && !w->oom; i++) {
        const s2f_item *c = root->children[i];
        if (c->by_reference)
            continue;
        if (named(c, &C_LANGUAGE) && !r->language) {
            r->language = code_of(c);
            consume(w, c, S2F_RULE_ROOT_CONTEXT);
            for (uint32_t k = 0; k < c->n_children; k++) /* TID 1204: part of the language */
                if (!c->children[k]->by_reference && named(c->children[k], &C_COUNTRY_OF_LANGUAGE))
                    consume(w, c->children[k], S2F_RULE_ROOT_CONTEXT);
        } else if (named(c, &C_PROCEDURE_REPORTED)) {
            if (!r->procedure_reported)
                r->procedure_reported = code_of(c);
            consume(w, c, S2F_RULE_ROOT_CONTEXT);
        } else if (is_container(c, &C_IMAGE_LIBRARY)) {
            consume_tree(w, c, S2F_RULE_ROOT_CONTEXT); /* M16: references, not observations */
        } else {
            /* other root context (Time Point, Observer Organization, subject context...):
             * no rule maps it, so it stays listed (M26, issue 10 #5) */
            read_container(w, c, &r->ctx);
        }
    }
}

/* M26: items nobody took, in document order. */
static void list_unmapped(walker *w, const s2f_item *root)
{
    for (const s2f_item *it = root; it && !w->oom; it = s2f_item_next(it)) {
        if (consumed(w, it))
            continue;
        const s2f_item **slot = append(w, (void **)&w->r->unmapped, &w->r->n_unmapped,
                                       &w->cap_unmapped, sizeof *slot);
        if (slot)
            *slot = it;
    }
}

/* ---- M2 -------------------------------------------------------------------------------- */

static int is_sr_class(const char *uid)
{
    static const char *const classes[] = {
        "1.2.840.10008.5.1.4.1.1.88.11", /* Basic Text SR */
        "1.2.840.10008.5.1.4.1.1.88.22", /* Enhanced SR */
        "1.2.840.10008.5.1.4.1.1.88.33", /* Comprehensive SR */
        "1.2.840.10008.5.1.4.1.1.88.34", /* Comprehensive 3D SR */
        "1.2.840.10008.5.1.4.1.1.88.35", /* Extensible SR */
    };
    for (size_t i = 0; uid && i < sizeof classes / sizeof classes[0]; i++)
        if (!strcmp(uid, classes[i]))
            return 1;
    return 0;
}

static s2f_code check_tid1500(const s2f_doc *doc, s2f_error *err)
{
    const s2f_item *root = doc->tree.root;
    const char *cls = doc->header.sop_class;
    if (!is_sr_class(cls))
        return s2f_fail(err, S2F_ENOTTID1500,
                        "not a TID 1500 Measurement Report: SOP Class %s is not one of the SR "
                        "classes a Measurement Report uses (M2)", cls ? cls : "(absent)");
    int by_template = root->template_id && !strcmp(root->template_id, "1500") &&
                      (!root->template_resource || !strcmp(root->template_resource, "DCMR"));
    if (named(root, &C_REPORT) || by_template)
        return S2F_OK;
    if (!root->concept)
        return s2f_fail(err, S2F_ENOTTID1500,
                        "not a TID 1500 Measurement Report: root concept is absent");
    return s2f_fail(err, S2F_ENOTTID1500,
                    "not a TID 1500 Measurement Report: root concept is (%s, %s, \"%s\")",
                    root->concept->value, root->concept->scheme, root->concept->meaning);
}

/* ---- derived facts (issue 14) ------------------------------------------------------------ */

static int nonempty(const char *s)
{
    return s && *s;
}

static int same_code(const s2f_codeval *a, const s2f_codeval *b)
{
    if (!a || !b)
        return a == b;
    return !strcmp(a->value ? a->value : "", b->value ? b->value : "") &&
           !strcmp(a->scheme ? a->scheme : "", b->scheme ? b->scheme : "");
}

static int same_site(const s2f_site *a, const s2f_site *b)
{
    return same_code(a->site, b->site) && same_code(a->laterality, b->laterality) &&
           same_code(a->modifier, b->modifier);
}

/* s2f_measurement.applied_site and its tracking ids (report.h), of a measurement of group
 * g (NULL: derived, M14). */
static void apply_site(s2f_measurement *m, const s2f_group *g)
{
    m->applied_site = NULL;
    m->applied_tracking_id = m->applied_tracking_uid = NULL;
    if (m->site.site) {
        if (nonempty(m->tracking_id) || nonempty(m->tracking_uid)) {
            m->applied_tracking_id = m->tracking_id;
            m->applied_tracking_uid = m->tracking_uid;
            m->applied_site = &m->site;
            return;
        }
        if (!g || !g->site.site || !same_site(&m->site, &g->site)) {
            m->applied_site = &m->site; /* another structure than the group's lesion: not its ids */
            return;
        }
    } else if (!g || !g->site.site) {
        return;
    }
    m->applied_tracking_id = g->tracking_id;
    m->applied_tracking_uid = g->tracking_uid;
    m->applied_site = &g->site;
}

/* A method code that says something (a value); NULL otherwise. */
static const s2f_codeval *method_or_null(const s2f_codeval *c)
{
    return c && nonempty(c->value) ? c : NULL;
}

/* M22 (s2f_applied_device, report.h): own algorithm, else the first device observer of
 * the context, else the equipment. */
static s2f_applied_device apply_device(const s2f_algorithm *a, const s2f_context *ctx)
{
    if (a)
        return (s2f_applied_device){S2F_DEVICE_ALGORITHM, a, NULL};
    for (size_t i = 0; i < ctx->n_observers; i++)
        if (ctx->observers[i].is_device)
            return (s2f_applied_device){S2F_DEVICE_OBSERVER, NULL, &ctx->observers[i]};
    return (s2f_applied_device){S2F_DEVICE_EQUIPMENT, NULL, NULL};
}

/* The facts of a measurement of group g (NULL: derived, M14). */
static void derive_measurement(s2f_measurement *m, const s2f_group *g)
{
    apply_site(m, g);
    m->applied_method = method_or_null(m->method);
    if (!m->applied_method && g)
        m->applied_method = method_or_null(g->method); /* M17: the group's method */
    m->applied_device = apply_device(m->algorithm, &m->ctx);
}

static void derive_evaluations(s2f_evaluation *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        e[i].applied_device = apply_device(e[i].algorithm, &e[i].ctx);
}

/* The facts both passes of the FHIR stage read, worked out once the model is complete
 * (issue 14): the site, method and device of each item. */
static void derive_facts(s2f_report *r)
{
    for (size_t i = 0; i < r->n_groups; i++) {
        s2f_group *g = r->groups[i];
        g->applied_method = method_or_null(g->method);
        g->applied_device = apply_device(g->algorithm, &g->ctx);
        for (size_t k = 0; k < g->n_measurements; k++)
            derive_measurement(&g->measurements[k], g);
        derive_evaluations(g->evaluations, g->n_evaluations);
    }
    for (size_t i = 0; i < r->n_derived; i++)
        derive_measurement(&r->derived[i], NULL);
    derive_evaluations(r->evaluations, r->n_evaluations);
}

int s2f_report_has_body_structure(const s2f_site *site, const char *tracking_id,
                                  const char *tracking_uid)
{
    return site && site->site &&
           (site->laterality || site->modifier || nonempty(tracking_id) || nonempty(tracking_uid));
}


s2f_code s2f_report_read(const s2f_doc *doc, s2f_report *out, s2f_error *err)
{
    memset(out, 0, sizeof *out);
    s2f_code rc = check_tid1500(doc, err);
    if (rc)
        return rc;
    walker w = {.a = doc->arena, .r = out};
    w.rule = s2f_arena_calloc(doc->arena, doc->tree.n_items ? doc->tree.n_items : 1,
                              sizeof *w.rule);
    out->doc = doc;
    out->root = doc->tree.root;
    out->rule_of = w.rule;
    if (w.rule) {
        read_root(&w, doc->tree.root);
        list_unmapped(&w, doc->tree.root);
        derive_facts(out);
    }
    if (!w.rule || w.oom)
        return s2f_fail(err, s2f_arena_over_limit(doc->arena) ? S2F_ELIMIT : S2F_ENOMEM,
                        "out of memory while reading the measurement report");
    if (w.bad_subject) { /* issue 10 #4: never file another subject's data on the patient */
        char pos[1024];
        const s2f_codeval *v = code_of(w.bad_subject);
        s2f_item_position(w.bad_subject, pos, sizeof pos);
        return s2f_fail(err, S2F_EUNSUPPORTED,
                        "subject context at content item %s: Subject Class (%s, %s, \"%s\") is not "
                        "patient, fetus, specimen or device, so its observations have no subject "
                        "(M16)", pos, v ? v->value : "?", v ? v->scheme : "?",
                        v ? v->meaning : "(no code)");
    }
    return S2F_OK;
}
