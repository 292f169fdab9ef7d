/*
 * item.c - decodes one content item from its data set: relationship, value type, concept
 * name, observation UID and date/time, template, and the value of each value type
 * (PS3.3 C.17.3, C.18). Children are not its concern (content.c assembles the tree).
 * Problems are noted against the item and reported with its position once the tree is
 * whole, since a streamed item does not know its position yet.
 */
#include "sr/item.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sr/tags.h"
#include "util/hash.h"
#include "util/hindex.h"

static void warn_at(s2f_item_reader *rd, const s2f_item *it, const char *what)
{
    if (rd->n_notes == rd->cap_notes) {
        if (rd->cap_notes >= S2F_WARN_MAX) { /* as many as can be shown */
            rd->dropped_notes++;
            return;
        }
        size_t cap = rd->cap_notes ? rd->cap_notes * 2 : 16;
        s2f_item_note *l = s2f_arena_realloc(rd->arena, rd->notes, rd->cap_notes * sizeof *l,
                                             cap * sizeof *l);
        if (!l) {
            rd->text.oom = 1;
            return;
        }
        rd->notes = l;
        rd->cap_notes = cap;
    }
    rd->notes[rd->n_notes].item = it;
    rd->notes[rd->n_notes++].what = what;
}

/* ---- the elements of an item, found in one pass ------------------------------------ */

/* The elements of a content item the decoder reads (all in group 0040), found in one
 * pass over its data set (sorted, a handful of elements) instead of a search for each. */
#define ITEM_ELEMS(X)                                                                      \
    X(E_REL, T_RelationshipType) X(E_OBS_DT, T_ObservationDateTime) X(E_VT, T_ValueType)  \
    X(E_CONCEPT, T_ConceptNameCodeSequence) X(E_CONTINUITY, T_ContinuityOfContent)        \
    X(E_DATETIME, T_DateTime) X(E_DATE, T_Date) X(E_TIME, T_Time)                          \
    X(E_PNAME, T_PersonName) X(E_UID, T_UID) X(E_TEXT, T_TextValue)                        \
    X(E_CONCEPT_CODE, T_ConceptCodeSequence) X(E_OBS_UID, T_ObservationUID)                \
    X(E_MEASURED, T_MeasuredValueSequence) X(E_QUALIFIER, T_NumericValueQualifierCodeSequence) \
    X(E_TEMPLATE, T_ContentTemplateSequence) X(E_REF_ID, T_ReferencedContentItemIdentifier)

#define AS_ENUM(k, tag) k,
enum { ITEM_ELEMS(AS_ENUM) N_ITEM_ELEMS };
#define AS_TAG(k, tag) tag,
static const uint32_t item_tags[N_ITEM_ELEMS] = {ITEM_ELEMS(AS_TAG)};
#define AS_CASE(k, tag) case tag: return k;

static int item_elem_of(uint32_t tag)
{
    switch (tag) {
    ITEM_ELEMS(AS_CASE)
    default: return -1;
    }
}

/* Fills el[k] with the element of ds whose tag is tags[k] (NULL when absent), as
 * s2f_ds_find would find them, in one pass over its sorted elements; slot_of(tag) is
 * that k, or -1 for a tag not asked for. */
static void elems_by_tag(const s2f_ds *ds, const uint32_t *tags, int n,
                         int (*slot_of)(uint32_t), const s2f_elem **el)
{
    memset(el, 0, (size_t)n * sizeof *el);
    for (uint32_t i = 0; i < ds->n; i++) {
        const s2f_elem *e = &ds->elems[i];
        if (i && e->tag == e[-1].tag) { /* a repeated tag: leave the choice to the search */
            for (int k = 0; k < n; k++)
                el[k] = s2f_ds_find(ds, tags[k]);
            return;
        }
        int k = slot_of(e->tag);
        if (k >= 0)
            el[k] = e;
    }
}

static int content_slot(uint32_t tag)
{
    return S2F_TAG_GROUP(tag) == 0x0040 ? item_elem_of(tag) : -1;
}

/* The elements of a content item the decoders read, found in one pass. */
static void item_elems_of(const s2f_ds *ds, const s2f_elem *el[N_ITEM_ELEMS])
{
    elems_by_tag(ds, item_tags, N_ITEM_ELEMS, content_slot, el);
}

/* Item `0` of a sequence element, or NULL. */
static const s2f_ds *first_item(const s2f_elem *e)
{
    return e && e->is_seq && e->n_items ? e->items[0] : NULL;
}

static uint64_t load64(const uint8_t *p);
static uint32_t load32(const uint8_t *p);

/* 1 when p[0..n) (n <= 16) holds a backslash: two words compared a byte at a time (the
 * words overlap when n is not 8 or 16); reads no byte outside p[0..n). */
static int short_has_backslash(const uint8_t *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, bs = ones * '\\';
    uint64_t a, b;
    if (n >= 8) {
        a = load64(p) ^ bs;
        b = load64(p + n - 8) ^ bs;
    } else if (n >= 4) {
        a = (load32(p) | (uint64_t)load32(p + n - 4) << 32) ^ bs;
        b = ~(uint64_t)0;
    } else {
        for (size_t i = 0; i < n; i++)
            if (p[i] == '\\')
                return 1;
        return 0;
    }
    /* a byte of a or b is zero where there was a backslash */
    return (((a - ones) & ~a) | ((b - ones) & ~b)) & (ones * 0x80) ? 1 : 0;
}

/* The trimmed raw bytes of the first value of a string element, or 0 when absent or
 * empty. A short term (a Value or Relationship Type) without a backslash or a leading space
 * is trimmed here, which is what s2f_elem_string_raw would do with it. */
static int raw_value(const s2f_elem *e, const uint8_t **p, size_t *n)
{
    if (e && !e->is_seq && e->len && e->len <= 16 && e->val[0] != ' ') {
        size_t len = e->len;
        while (len && (e->val[len - 1] == ' ' || e->val[len - 1] == '\0'))
            len--;
        if (!short_has_backslash(e->val, len)) {
            *p = e->val;
            *n = len;
            return len > 0;
        }
    }
    return s2f_elem_string_raw(e, 0, p, n) && *n > 0;
}

/* ---- codes: each distinct one decoded once ---------------------------------------------- */

/* A report repeats its few hundred distinct codes thousands of times (every measurement
 * names its concept and its units), so a Code Sequence item is looked up by its bytes
 * before anything is decoded: an equal item gets the first one's code, which equal codes
 * therefore share (strings and pointer). */
enum { C_VALUE, C_LONG_VALUE, C_URN, C_SCHEME, C_VERSION, C_MEANING, N_CODE_ELEMS };

/* What decoding takes from one element: which of the six it is and, when it has a text
 * form (s2f_text_elem), its VR and bytes, which point into the input: it outlives the
 * reading. Everything but the bytes is packed in one word, so that comparing two items is
 * a word per element and a comparison of the bytes. */
typedef struct code_elem {
    const uint8_t *val;
    uint64_t shape;          /* PRESENT | which | TEXT | VR | length */
} code_elem;

#define SHAPE_PRESENT ((uint64_t)1 << 48)
#define SHAPE_TEXT ((uint64_t)1 << 49)
#define SHAPE_WHICH(k) ((uint64_t)(k) << 52)
#define SHAPE_VR(vr) ((uint64_t)(vr) << 32)

static int shape_text(uint64_t shape) { return (shape & SHAPE_TEXT) != 0; }
static uint32_t shape_len(uint64_t shape) { return (uint32_t)shape; }
static uint16_t shape_vr(uint64_t shape) { return (uint16_t)(shape >> 32); }
static unsigned shape_which(uint64_t shape) { return (unsigned)(shape >> 52); }

/* The elements of a Code Sequence item the code is made of, in tag order: the key the
 * memo looks codes up by. */
typedef struct code_key {
    unsigned n;
    unsigned present;        /* bit C_* for each element there */
    code_elem elems[N_CODE_ELEMS];
} code_key;

typedef struct code_entry {
    code_key key;
    const s2f_codeval *code;
    unsigned replaced;       /* U+FFFD substitutions its decoding made */
} code_entry;

/* The memo: codes already decoded, by a keyed hash of all their bytes (util/hindex.h). */
struct s2f_code_memo {
    const s2f_charset *cs;   /* the decoder the strings come from */
    s2f_hindex index;        /* code_entry by code_hash */
};

/* Which code element a tag from (0008,0100) on is, by its distance from it; 0 for none,
 * else C_* + 1. */
static const uint8_t code_elem_at[T_URNCodeValue - T_CodeValue + 1] = {
    [T_CodeValue - T_CodeValue] = C_VALUE + 1,
    [T_LongCodeValue - T_CodeValue] = C_LONG_VALUE + 1,
    [T_URNCodeValue - T_CodeValue] = C_URN + 1,
    [T_CodingSchemeDesignator - T_CodeValue] = C_SCHEME + 1,
    [T_CodingSchemeVersion - T_CodeValue] = C_VERSION + 1,
    [T_CodeMeaning - T_CodeValue] = C_MEANING + 1,
};

/* Counts and flags are kept in locals and each element written once: the key escapes to
 * the memo, so the compiler would otherwise keep them in memory. */
static void code_key_of(const s2f_ds *ds, code_key *key)
{
    unsigned n = 0, present = 0;
    /* an empty data set may have elems == NULL (both readers): no arithmetic on it */
    const s2f_elem *e = ds && ds->n ? ds->elems : NULL, *end = e ? e + ds->n : NULL;
    for (; e != end && e->tag <= T_URNCodeValue; e++) {
        uint32_t d = e->tag - T_CodeValue;
        if (d >= sizeof code_elem_at || !code_elem_at[d])
            continue;
        unsigned k = code_elem_at[d] - 1u;
        n -= (present >> k) & 1u; /* a repeated tag (sorted: the last one): it wins */
        present |= 1u << k;
        uint64_t shape = SHAPE_PRESENT | SHAPE_WHICH(k);
        const uint8_t *val = NULL;
        if (!e->is_seq && e->len && (s2f_vr_is_string(e->vr) || e->vr == S2F_VR('U', 'N'))) {
            shape |= SHAPE_TEXT | SHAPE_VR(e->vr) | e->len;
            val = e->val;
        }
        key->elems[n].shape = shape;
        key->elems[n].val = val;
        n++;
    }
    key->n = n;
    key->present = present;
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static uint32_t load32(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

static uint16_t load16(const uint8_t *p)
{
    uint16_t w;
    memcpy(&w, p, 2);
    return w;
}

/* Hashes the shapes and the whole bytes of each text with the memo's key (util/hash.h):
 * codes that differ anywhere differ in hash, and an input cannot tell which collide. */
static uint64_t code_hash(const code_key *key, const s2f_hash_key *hk)
{
    s2f_sip s;
    s2f_sip_init(&s, hk);
    for (unsigned i = 0; i < key->n; i++) {
        uint64_t shape = key->elems[i].shape;
        s2f_sip_word(&s, shape);
        if (shape_text(shape)) /* the shape holds the length */
            s2f_sip_text(&s, key->elems[i].val, shape_len(shape));
    }
    return s2f_sip_final(&s);
}

/* Compares words, the last one overlapping the one before when n is not a multiple. */
static int same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (a == b)
        return 1;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (load64(a + i) != load64(b + i))
                return 0;
        return load64(a + n - 8) == load64(b + n - 8);
    }
    if (n >= 4)
        return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
    if (n >= 2)
        return load16(a) == load16(b) && load16(a + n - 2) == load16(b + n - 2);
    return n == 0 || a[0] == b[0];
}

static int same_code_key(const code_key *a, const code_key *b)
{
    if (a->n != b->n)
        return 0;
    for (unsigned i = 0; i < a->n; i++) {
        uint64_t shape = a->elems[i].shape;
        if (shape != b->elems[i].shape)
            return 0;
        if (shape_text(shape) && !same_bytes(a->elems[i].val, b->elems[i].val, shape_len(shape)))
            return 0;
    }
    return 1;
}

static const char *code_text(s2f_item_reader *rd, const code_elem *el)
{
    if (!el || !shape_text(el->shape))
        return NULL;
    s2f_elem e = {.vr = shape_vr(el->shape), .len = shape_len(el->shape), .val = el->val};
    return s2f_text_elem(&rd->text, &e);
}

/* Decodes the Code Sequence Macro: every string is set ("" when absent, the version NULL). */
static s2f_codeval *decode_code(s2f_item_reader *rd, const code_key *key)
{
    const code_elem *el[N_CODE_ELEMS] = {NULL};
    for (unsigned i = 0; i < key->n; i++)
        el[shape_which(key->elems[i].shape)] = &key->elems[i];
    s2f_codeval *c = s2f_arena_calloc(rd->arena, 1, sizeof *c);
    if (!c) {
        rd->text.oom = 1;
        return NULL;
    }
    c->value = code_text(rd, el[C_VALUE]);
    if (!c->value && (c->value = code_text(rd, el[C_LONG_VALUE])))
        c->value_kind = 1;
    if (!c->value && (c->value = code_text(rd, el[C_URN])))
        c->value_kind = 2;
    c->scheme = code_text(rd, el[C_SCHEME]);
    c->version = code_text(rd, el[C_VERSION]);
    c->meaning = code_text(rd, el[C_MEANING]);
    if (!c->scheme)
        c->scheme = "";
    if (!c->meaning)
        c->meaning = "";
    if (!c->value)
        c->value = "";
    return c;
}

static int same_code_entry(const void *entry, const void *key)
{
    return same_code_key(&((const code_entry *)entry)->key, key);
}

/* The memo's slot for key, *h its hash: its entry, or the free slot where it goes. NULL
 * when memory ran out or the index is crowded there (the code is then decoded without
 * the memo). */
static s2f_hslot *memo_find(s2f_item_reader *rd, const code_key *key, uint64_t *h)
{
    struct s2f_code_memo *m = rd->codes;
    if (!m && !(m = rd->codes = s2f_arena_calloc(rd->arena, 1, sizeof *m)))
        return NULL;
    if (m->cs != rd->text.cs) { /* strings of another decoder: start again */
        m->cs = rd->text.cs;
        m->index = (s2f_hindex){0};
    }
    *h = code_hash(key, s2f_hindex_key(&m->index));
    return s2f_hindex_find(&m->index, rd->arena, *h, same_code_entry, key);
}

s2f_hindex_work s2f_item_memo_work(const s2f_item_reader *r)
{
    return r->codes ? r->codes->index.work : (s2f_hindex_work){0, 0, 0};
}

#define NAMING_ELEMS (1u << C_VALUE | 1u << C_LONG_VALUE | 1u << C_URN | 1u << C_MEANING)

/* The code of one Code Sequence item (ds may be NULL), shared with every equal item;
 * *named = 0 when it has neither a code value nor a meaning. NULL when memory ran out. */
static const s2f_codeval *read_code(s2f_item_reader *rd, const s2f_ds *ds, int *named)
{
    code_key key;
    code_key_of(ds, &key);
    *named = (key.present & NAMING_ELEMS) != 0;
    uint64_t h = 0;
    s2f_hslot *slot = memo_find(rd, &key, &h);
    if (slot && slot->entry) {
        const code_entry *known = slot->entry;
        rd->text.replaced += known->replaced;
        return known->code;
    }
    unsigned before = rd->text.replaced;
    const s2f_codeval *c = decode_code(rd, &key);
    code_entry *e = slot && c && !rd->text.oom ? s2f_arena_alloc(rd->arena, sizeof *e) : NULL;
    if (e) {
        e->key = key;
        e->code = c;
        e->replaced = rd->text.replaced - before;
        s2f_hindex_put(&rd->codes->index, slot, h, e);
    }
    return c;
}

/* The code of a Code Sequence's first item, NULL when there is none or it names nothing. */
static const s2f_codeval *read_named_code(s2f_item_reader *rd, const s2f_ds *item)
{
    int named;
    if (!item)
        return NULL;
    const s2f_codeval *c = read_code(rd, item, &named);
    return named ? c : NULL;
}

/* The exponent after 'e' or 'E' ([+-]digits, at most 4 of them); 0 when it is not one. */
static int plain_exponent(const char *s, int *e)
{
    int negative = *s == '-', n = 0, v = 0;
    if (*s == '-' || *s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++, n++)
        if (n < 4)
            v = v * 10 + (*s - '0');
    if (*s || !n || n > 4)
        return 0;
    *e = negative ? -v : v;
    return 1;
}

/* The common Numeric Value, [+-]digits[.digits][E[+-]digits] with at most 15 significant
 * digits and a scale of at most 10^22 either way, read without strtod: the digits and the
 * power of ten are exact doubles, so one multiplication or division gives the correctly
 * rounded result strtod gives. 0 for any other form (strtod reads those). */
static int plain_decimal(const char *s, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int negative = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    uint64_t m = 0;
    int digits = 0, significant = 0, frac = -1;
    for (;; s++) {
        if (*s == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (*s < '0' || *s > '9')
            break;
        digits++;
        if (m || *s != '0')
            significant++;
        m = m * 10 + (uint64_t)(*s - '0');
        if (frac >= 0)
            frac++;
        if (significant > 15)
            return 0;
    }
    int e = 0;
    if (!digits || (*s && !((*s == 'e' || *s == 'E') && plain_exponent(s + 1, &e))))
        return 0;
    int scale = e - (frac > 0 ? frac : 0);
    if (scale < -22 || scale > 22)
        return 0;
    double v = scale < 0 ? (double)m / pow10[-scale] : (double)m * pow10[scale];
    *out = negative ? -v : v;
    return 1;
}

/* 1 when text is a Decimal String (PS3.5 6.2 DS): [+-]digits[.[digits]] or [+-].digits,
 * then optionally (e|E)[+-]digits; the reader has trimmed its spaces. "NaN", "inf",
 * "0x10", "1,5" are not (strtod would read the first three). */
static int ds_syntax(const char *s)
{
    size_t whole = 0, frac = 0, exp = 0;
    if (*s == '+' || *s == '-')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        whole++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            frac++;
    if (!whole && !frac)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        for (; *s >= '0' && *s <= '9'; s++)
            exp++;
        if (!exp)
            return 0;
    }
    return *s == '\0';
}

/* 1 when a mantissa digit before the exponent is not 0. */
static int has_nonzero_digit(const char *s)
{
    for (; *s && *s != 'e' && *s != 'E'; s++)
        if (*s >= '1' && *s <= '9')
            return 1;
    return 0;
}

/* The Numeric Value as a double and what its text is (S2F_NUM_TEXT_*, issue 9 defect 9):
 * not a Decimal String, or a DS no double holds: it overflows (1e999) or a non-zero value
 * underflows to 0 (1e-999); a JSON reader would get infinity or 0, so such a value is
 * never written (M20: data-absent). Subnormal values are kept. */
static int parse_numeric(const char *text, double *out)
{
    if (plain_decimal(text, out))
        return S2F_NUM_TEXT_OK;
    *out = 0;
    if (!ds_syntax(text))
        return S2F_NUM_TEXT_NOT_DS;
    double v = strtod(text, NULL);
    if (isinf(v) || isnan(v) || (v == 0 && has_nonzero_digit(text)))
        return S2F_NUM_TEXT_OUT_OF_RANGE;
    *out = v;
    return S2F_NUM_TEXT_OK;
}

/* The longest Decimal String PS3.5 allows. */
#define DS_MAX_CHARS 16

/* The elements of a Measured Value Sequence item read_num reads, found in one pass as for
 * the content item (item_elems_of). */
enum { MV_UNITS, MV_FLOAT, MV_NUMERATOR, MV_DENOMINATOR, MV_NUMERIC, N_MV_ELEMS };

static const uint32_t mv_tags[N_MV_ELEMS] = {
    T_MeasurementUnitsCodeSequence, T_FloatingPointValue, T_RationalNumeratorValue,
    T_RationalDenominatorValue, T_NumericValue};

static int mv_slot(uint32_t tag)
{
    for (int k = 0; k < N_MV_ELEMS; k++)
        if (tag == mv_tags[k])
            return k;
    return -1;
}

static void measured_elems_of(const s2f_ds *mv, const s2f_elem *el[N_MV_ELEMS])
{
    elems_by_tag(mv, mv_tags, N_MV_ELEMS, mv_slot, el);
}

/* Issue 9 defect 9: every Numeric Value that is not written as it is gets a warning. A DS
 * longer than 16 characters is still used when it is a number (decision: the value is
 * unambiguous, dropping it would lose the measurement; docs/decisions.md). */
static void check_numeric_text(s2f_item_reader *rd, s2f_item *it)
{
    const char *text = it->v.num.text;
    it->v.num.text_state = parse_numeric(text, &it->v.num.value);
    if (it->v.num.text_state == S2F_NUM_TEXT_NOT_DS)
        warn_at(rd, it, "Numeric Value is not a decimal string (written as data-absent)");
    else if (it->v.num.text_state == S2F_NUM_TEXT_OUT_OF_RANGE)
        warn_at(rd, it, "Numeric Value is out of the range of a double (written as "
                        "data-absent)");
    else if (strlen(text) > DS_MAX_CHARS)
        warn_at(rd, it, "Numeric Value is longer than the 16 characters of a DS (used as "
                        "written)");
}

static void read_num(s2f_item_reader *rd, s2f_item *it, const s2f_elem *const el[N_ITEM_ELEMS])
{
    const s2f_ds *mv = first_item(el[E_MEASURED]);
    it->v.num.qualifier = read_named_code(rd, first_item(el[E_QUALIFIER]));
    if (!mv) {
        if (!it->v.num.qualifier)
            warn_at(rd, it, "NUM without Measured Value Sequence item or Numeric Value Qualifier");
        return;
    }
    const s2f_elem *m[N_MV_ELEMS];
    measured_elems_of(mv, m);
    it->v.num.has_value = 1;
    it->v.num.text = s2f_text_elem(&rd->text, m[MV_NUMERIC]);
    if (!it->v.num.text)
        warn_at(rd, it, "Measured Value Sequence item without Numeric Value");
    else
        check_numeric_text(rd, it);
    it->v.num.has_float = s2f_elem_f64(m[MV_FLOAT], 0, &it->v.num.fp);
    int32_t num;
    uint32_t den;
    if (s2f_elem_i32(m[MV_NUMERATOR], 0, &num) && s2f_elem_u32(m[MV_DENOMINATOR], 0, &den))
        it->v.num.rational = s2f_arena_printf(rd->arena, "%d/%u", num, den);
    it->v.num.units = read_named_code(rd, first_item(m[MV_UNITS]));
    if (!it->v.num.units)
        warn_at(rd, it, "NUM without Measurement Units Code Sequence");
}

/* Copies all values of an IS element into an int array. */
static uint32_t read_is_list(s2f_item_reader *rd, const s2f_ds *ds, uint32_t tag, int32_t **out)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    uint32_t n = s2f_elem_string_count(e);
    *out = NULL;
    if (!n)
        return 0;
    int32_t *v = s2f_arena_alloc(rd->arena, n * sizeof *v);
    if (!v)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t len;
        char tmp[32] = "";
        if (s2f_elem_string_raw(e, i, &p, &len) && len < sizeof tmp)
            memcpy(tmp, p, len), tmp[len] = 0;
        v[i] = (int32_t)strtol(tmp, NULL, 10);
    }
    *out = v;
    return n;
}

static uint32_t read_u16_list(s2f_item_reader *rd, const s2f_ds *ds, uint32_t tag, uint16_t **out)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    uint32_t n = s2f_elem_binary_count(e);
    *out = NULL;
    if (!n || s2f_vr_fixed_size(e->vr) != 2)
        return 0;
    uint16_t *v = s2f_arena_alloc(rd->arena, n * sizeof *v);
    if (!v)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        s2f_elem_u16(e, i, &v[i]);
    *out = v;
    return n;
}

static uint32_t read_u32_list(s2f_item_reader *rd, const s2f_ds *ds, uint32_t tag, uint32_t **out)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    uint32_t n = s2f_elem_binary_count(e);
    *out = NULL;
    if (!n)
        return 0;
    uint32_t *v = s2f_arena_alloc(rd->arena, n * sizeof *v);
    if (!v)
        return 0;
    unsigned size = s2f_vr_fixed_size(e->vr);
    for (uint32_t i = 0; i < n; i++) {
        uint16_t s;
        if (size == 4)
            s2f_elem_u32(e, i, &v[i]);
        else if (size == 2 && s2f_elem_u16(e, i, &s))
            v[i] = s;
        else
            v[i] = 0;
    }
    *out = v;
    return n;
}

static void read_sopref(s2f_item_reader *rd, s2f_item *it, const s2f_ds *ds)
{
    const s2f_ds *ref = s2f_ds_item(ds, T_ReferencedSOPSequence, 0);
    s2f_sopref *r = &it->v.ref;
    if (!ref) {
        warn_at(rd, it, "reference without Referenced SOP Sequence item");
        return;
    }
    r->sop_class = s2f_text_value(&rd->text, ref, T_ReferencedSOPClassUID);
    r->sop_instance = s2f_text_value(&rd->text, ref, T_ReferencedSOPInstanceUID);
    r->n_frames = read_is_list(rd, ref, T_ReferencedFrameNumber, &r->frames);
    r->n_segments = read_u32_list(rd, ref, T_ReferencedSegmentNumber, &r->segments);
    r->n_channels = read_u16_list(rd, ref, T_ReferencedWaveformChannels, &r->channels);
    const s2f_ds *ps = s2f_ds_item(ref, T_ReferencedSOPSequence, 0);
    if (ps) {
        r->pstate_class = s2f_text_value(&rd->text, ps, T_ReferencedSOPClassUID);
        r->pstate_instance = s2f_text_value(&rd->text, ps, T_ReferencedSOPInstanceUID);
    }
    if (!r->sop_class || !r->sop_instance)
        warn_at(rd, it, "reference without SOP Class or SOP Instance UID");
}

static void read_coord(s2f_item_reader *rd, s2f_item *it, const s2f_ds *ds, unsigned dims)
{
    const s2f_elem *e = s2f_ds_find(ds, T_GraphicData);
    it->v.coord.graphic_type = s2f_text_value(&rd->text, ds, T_GraphicType);
    uint32_t n = s2f_elem_binary_count(e);
    unsigned size = e ? s2f_vr_fixed_size(e->vr) : 0;
    if (n && (size == 4 || size == 8)) {
        float *v = s2f_arena_alloc(rd->arena, n * sizeof *v);
        if (v) {
            for (uint32_t i = 0; i < n; i++) {
                double d;
                if (size == 4)
                    s2f_elem_f32(e, i, &v[i]);
                else if (s2f_elem_f64(e, i, &d))
                    v[i] = (float)d;
            }
            it->v.coord.data = v;
            it->v.coord.n = n;
        }
    }
    if (!it->v.coord.n || it->v.coord.n % dims)
        warn_at(rd, it, dims == 2 ? "SCOORD Graphic Data is not a list of (column,row) pairs"
                                 : "SCOORD3D Graphic Data is not a list of (x,y,z) triplets");
    if (dims == 3) {
        it->v.coord.frame_of_reference =
            s2f_text_value(&rd->text, ds, T_ReferencedFrameOfReferenceUID);
        if (!it->v.coord.frame_of_reference)
            warn_at(rd, it, "SCOORD3D without Referenced Frame of Reference UID");
    }
    it->v.coord.fiducial = s2f_ds_find(ds, T_FiducialUID) != NULL;
}

static void read_tcoord(s2f_item_reader *rd, s2f_item *it, const s2f_ds *ds)
{
    it->v.tcoord.range_type = s2f_text_value(&rd->text, ds, T_TemporalRangeType);
    it->v.tcoord.n_samples = read_u32_list(rd, ds, T_ReferencedSamplePositions,
                                           &it->v.tcoord.samples);
    const s2f_elem *off = s2f_ds_find(ds, T_ReferencedTimeOffsets);
    uint32_t n = s2f_elem_string_count(off);
    if (n && (it->v.tcoord.offsets = s2f_arena_alloc(rd->arena, n * sizeof(double)))) {
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p;
            size_t len;
            char tmp[40] = "";
            if (s2f_elem_string_raw(off, i, &p, &len) && len < sizeof tmp)
                memcpy(tmp, p, len), tmp[len] = 0;
            it->v.tcoord.offsets[i] = strtod(tmp, NULL);
        }
        it->v.tcoord.n_offsets = n;
    }
    const s2f_elem *dt = s2f_ds_find(ds, T_ReferencedDateTime);
    n = s2f_elem_string_count(dt);
    if (n && (it->v.tcoord.datetimes = s2f_arena_alloc(rd->arena, n * sizeof(char *)))) {
        for (uint32_t i = 0; i < n; i++)
            it->v.tcoord.datetimes[i] = s2f_text_value_at(&rd->text, ds, T_ReferencedDateTime, i);
        it->v.tcoord.n_datetimes = n;
    }
}

/* TABLE (Table Content Item Macro): its size and how many cells it carries. */
static void read_table(s2f_item_reader *rd, s2f_item *it, const s2f_ds *ds)
{
    const s2f_elem *cells = s2f_ds_find(ds, T_CellValuesSequence);
    if (!s2f_elem_u32(s2f_ds_find(ds, T_NumberOfTableRows), 0, &it->v.table.rows) ||
        !s2f_elem_u32(s2f_ds_find(ds, T_NumberOfTableColumns), 0, &it->v.table.columns))
        warn_at(rd, it, "TABLE without Number of Table Rows / Columns");
    it->v.table.n_cells = cells && cells->is_seq ? cells->n_items : 0;
}

static void read_value(s2f_item_reader *rd, s2f_item *it, const s2f_ds *ds,
                       const s2f_elem *const el[N_ITEM_ELEMS])
{
    switch (it->vt) {
    case S2F_VT_CONTAINER: {
        const char *c = s2f_text_elem(&rd->text, el[E_CONTINUITY]);
        it->v.container.separate = c && strcmp(c, "SEPARATE") == 0;
        if (!c)
            warn_at(rd, it, "CONTAINER without Continuity Of Content");
        break;
    }
    case S2F_VT_TEXT: it->v.text = s2f_text_elem(&rd->text, el[E_TEXT]); break;
    case S2F_VT_DATETIME: it->v.text = s2f_text_elem(&rd->text, el[E_DATETIME]); break;
    case S2F_VT_DATE: it->v.text = s2f_text_elem(&rd->text, el[E_DATE]); break;
    case S2F_VT_TIME: it->v.text = s2f_text_elem(&rd->text, el[E_TIME]); break;
    case S2F_VT_UIDREF: it->v.text = s2f_text_elem(&rd->text, el[E_UID]); break;
    case S2F_VT_PNAME: it->v.text = s2f_text_elem(&rd->text, el[E_PNAME]); break;
    case S2F_VT_CODE: {
        int named;
        const s2f_codeval *c = read_code(rd, first_item(el[E_CONCEPT_CODE]), &named);
        if (c)
            it->v.code = *c;
        if (!named)
            warn_at(rd, it, "CODE without Concept Code Sequence item");
        break;
    }
    case S2F_VT_NUM: read_num(rd, it, el); break;
    case S2F_VT_COMPOSITE: case S2F_VT_IMAGE: case S2F_VT_WAVEFORM:
        read_sopref(rd, it, ds);
        break;
    case S2F_VT_SCOORD: read_coord(rd, it, ds, 2); break;
    case S2F_VT_SCOORD3D: read_coord(rd, it, ds, 3); break;
    case S2F_VT_TCOORD: read_tcoord(rd, it, ds); break;
    case S2F_VT_TABLE: read_table(rd, it, ds); break;
    case S2F_VT_UNKNOWN: break;
    }
}

static void read_template(s2f_item_reader *rd, s2f_item *it, const s2f_elem *seq)
{
    const s2f_ds *t = first_item(seq);
    if (!t)
        return;
    it->template_id = s2f_text_value(&rd->text, t, T_TemplateIdentifier);
    it->template_resource = s2f_text_value(&rd->text, t, T_MappingResource);
}

static int remember_byref(s2f_item_reader *rd, s2f_item *it)
{
    if (rd->n_byref == rd->cap_byref) {
        size_t cap = rd->cap_byref ? rd->cap_byref * 2 : 16;
        s2f_item **l = s2f_arena_realloc(rd->arena, rd->byref, rd->cap_byref * sizeof *l, cap * sizeof *l);
        if (!l)
            return 0;
        rd->byref = l;
        rd->cap_byref = cap;
    }
    rd->byref[rd->n_byref++] = it;
    return 1;
}

static int read_reference(s2f_item_reader *rd, s2f_item *it, const s2f_ds *ds)
{
    const s2f_elem *e = s2f_ds_find(ds, T_ReferencedContentItemIdentifier);
    it->by_reference = 1;
    it->ref_path_len = read_u32_list(rd, ds, T_ReferencedContentItemIdentifier, &it->ref_path);
    if (!it->ref_path_len || s2f_vr_fixed_size(e->vr) != 4)
        warn_at(rd, it, "Referenced Content Item Identifier is empty or not UL");
    return remember_byref(rd, it);
}

/* PS3.3 Table C.17-6: Concept Name Code Sequence is required for these Value Types (issue 9
 * defect 9: a NUM without one passed silently; its Observation.code is then only text). */
static int needs_concept_name(s2f_vt vt)
{
    switch (vt) {
    case S2F_VT_TEXT: case S2F_VT_NUM: case S2F_VT_CODE: case S2F_VT_DATETIME:
    case S2F_VT_DATE: case S2F_VT_TIME: case S2F_VT_UIDREF: case S2F_VT_PNAME:
        return 1;
    default:
        return 0;
    }
}

int s2f_item_read(s2f_item_reader *rd, s2f_item *it, const s2f_ds *ds, int is_root)
{
    const s2f_elem *el[N_ITEM_ELEMS];
    const uint8_t *p;
    size_t n;
    item_elems_of(ds, el);
    it->offset = ds->offset;
    if (!is_root) {
        int has_rel = raw_value(el[E_REL], &p, &n);
        it->rel = has_rel ? s2f_rel_from(p, n) : S2F_REL_UNKNOWN;
        it->rel_text = it->rel != S2F_REL_UNKNOWN ? s2f_rel_name(it->rel)
                                                   : s2f_text_elem(&rd->text, el[E_REL]);
        if (!has_rel)
            warn_at(rd, it, "no Relationship Type");
        if (el[E_REF_ID] && !el[E_VT])
            return read_reference(rd, it, ds) && !rd->text.oom ? 0 : -1;
    }
    int has_vt = raw_value(el[E_VT], &p, &n);
    it->vt = has_vt ? s2f_vt_from(p, n) : S2F_VT_UNKNOWN;
    it->vt_text = it->vt != S2F_VT_UNKNOWN ? s2f_vt_name(it->vt) : s2f_text_elem(&rd->text, el[E_VT]);
    if (it->vt == S2F_VT_UNKNOWN)
        warn_at(rd, it, has_vt ? "unknown Value Type" : "no Value Type");
    it->concept = read_named_code(rd, first_item(el[E_CONCEPT]));
    it->observation_uid = s2f_text_elem(&rd->text, el[E_OBS_UID]);
    it->observation_dt = s2f_text_elem(&rd->text, el[E_OBS_DT]);
    read_template(rd, it, el[E_TEMPLATE]);
    read_value(rd, it, ds, el);
    if (!is_root && needs_concept_name(it->vt) && (!it->concept || !it->concept->value ||
                                                   !*it->concept->value))
        warn_at(rd, it, "no Concept Name code (required for this Value Type; M26)");
    return rd->text.oom ? -1 : 0;
}
