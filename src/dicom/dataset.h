/*
 * dataset.h - the in-memory DICOM data set every reader produces (stage 1 of the pipeline).
 *
 * Both readers (part10.c for binary files, dicomjson.c for PS3.18 Annex F JSON) build the
 * same structure, so the SR stage never knows where a data set came from:
 *
 *   - elements are kept in ascending tag order (readers sort when a file is out of order);
 *   - binary values (US SS UL SL FL FD AT OB OW OF OD OL OV UN ...) are little-endian: the
 *     big-endian reader swaps them, the JSON reader encodes its numbers that way;
 *   - string values (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT) are the raw bytes
 *     with backslash-separated multiplicity, NOT NUL-terminated; in a Part 10 file they are
 *     in the Specific Character Set of the data set, in JSON they are already UTF-8
 *     (ds->utf8 = 1). PN from JSON is rebuilt as "Alphabetic=Ideographic=Phonetic";
 *     DS/IS from JSON numbers keep the number's text exactly as written;
 *   - a sequence (SQ, or UN / implicit-VR values that hold one) has items, each a data set
 *     whose parent is the data set holding the sequence.
 *
 * Values point into the input buffer whenever possible (zero copy); everything else is in
 * the reading arena. Ownership: the arena owns all of it.
 */
#ifndef S2F_DATASET_H
#define S2F_DATASET_H

#include <stdint.h>
#include <stddef.h>

#include "sr2fhir.h"
#include "util/arena.h"
#include "util/error.h"

#define S2F_TAG(g, e) ((uint32_t)(((uint32_t)(g) << 16) | (uint32_t)(e)))
#define S2F_TAG_GROUP(t) ((uint16_t)((t) >> 16))
#define S2F_TAG_ELEM(t) ((uint16_t)((t)&0xFFFF))
#define S2F_VR(a, b) ((uint16_t)(((unsigned)(a) << 8) | (unsigned)(b)))

typedef struct s2f_ds s2f_ds;

/* 32 bytes: a large report holds hundreds of thousands of these. */
typedef struct s2f_elem {
    uint32_t tag;
    uint16_t vr;           /* S2F_VR('P','N'), ...; S2F_VR('U','N') when not known */
    uint8_t is_seq;        /* 1 for SQ and for UN values parsed as a sequence */
    uint32_t len;          /* value length in bytes (0 for a sequence) */
    uint32_t n_items;      /* number of sequence items */
    union {
        const uint8_t *val;    /* value bytes (see the header comment); NULL when len == 0 */
        s2f_ds **items;        /* sequence items, when is_seq */
    };
    size_t offset;         /* where the element starts in the (inflated) input, for messages */
} s2f_elem;

struct s2f_ds {
    s2f_elem *elems;       /* ascending tag order */
    const s2f_ds *parent;  /* NULL for the top level */
    size_t offset;         /* where the item starts in the input */
    uint32_t n;
    int utf8;              /* 1: strings are UTF-8 already (DICOM JSON) */
};

/*
 * Streaming of the content tree (Part 10 reader): when a sink is given, each item of a
 * Content Sequence (0040,A730) of the top-level data set or of such an item is handed to
 * end() as soon as it is complete, after a begin() when it started; the Content Sequence
 * element itself is then left empty (is_seq, no items). Everything the reader allocates
 * inside a content item goes to `scratch` and is released when end() returns, so memory
 * stays the size of one item instead of the whole document. A callback's non-zero code
 * stops the reader and is returned as is (the callback fills the error).
 */
typedef struct s2f_content_sink {
    void *user;
    s2f_code (*begin)(void *user);
    s2f_code (*end)(void *user, const s2f_ds *item);
    s2f_arena *scratch;
} s2f_content_sink;

/* What both readers share while reading one input. */
typedef struct s2f_read_ctx {
    s2f_arena *arena;
    s2f_warnings *warnings;
    unsigned max_depth;    /* maximum sequence nesting depth (>= 1) */
    size_t max_inflated;   /* maximum bytes a deflated data set may inflate to */
    int strict;            /* refuse lenient cases (M1) */
    const char *transfer_syntax; /* out: UID the data set was read with, or "DICOM-JSON" */
    const s2f_content_sink *content; /* Part 10 only: stream content items (NULL: don't) */
    s2f_elem top_charset;  /* out: the top-level (0008,0005) as soon as it is read ... */
    int has_top_charset;   /* ... for streaming consumers, who need it before the end */
} s2f_read_ctx;

/* Readers. Each returns S2F_OK and the top-level data set, or a code and a one-line
 * message naming the place (byte offset, JSON path) where the input is wrong. */
s2f_code s2f_part10_read(const uint8_t *data, size_t len, s2f_read_ctx *ctx, s2f_ds **out,
                         s2f_error *err);
s2f_code s2f_dicomjson_read(const uint8_t *data, size_t len, s2f_read_ctx *ctx, s2f_ds **out,
                            s2f_error *err);

/* The DICOM JSON reader feeding its parser `chunk` bytes at a time (0: the default 1 MiB);
 * for tests of tokens split across chunks (issue 9 defect 2). */
s2f_code s2f_dicomjson_read_chunked(const uint8_t *data, size_t len, s2f_read_ctx *ctx,
                                    s2f_ds **out, s2f_error *err, size_t chunk);
/* 1 when the buffer looks like DICOM JSON (first non-blank byte is '{' or '['; dicomjson.c). */
int s2f_dicomjson_looks_like(const uint8_t *data, size_t len);

/* Lookups (dataset.c). */
const s2f_elem *s2f_ds_find(const s2f_ds *ds, uint32_t tag);
/* Item `index` of sequence `tag`, or NULL. */
const s2f_ds *s2f_ds_item(const s2f_ds *ds, uint32_t tag, uint32_t index);
/* Number of backslash-separated values of a string element (0 when empty). */
uint32_t s2f_elem_string_count(const s2f_elem *e);
/* Raw bytes of string value `index`, leading/trailing spaces (and NUL padding) removed. */
int s2f_elem_string_raw(const s2f_elem *e, uint32_t index, const uint8_t **p, size_t *n);
/* Number of binary values for fixed-size VRs (US=2, UL=4, FD=8, ...). */
uint32_t s2f_elem_binary_count(const s2f_elem *e);
int s2f_elem_u16(const s2f_elem *e, uint32_t index, uint16_t *out);
int s2f_elem_u32(const s2f_elem *e, uint32_t index, uint32_t *out);
int s2f_elem_i32(const s2f_elem *e, uint32_t index, int32_t *out);
int s2f_elem_f32(const s2f_elem *e, uint32_t index, float *out);
int s2f_elem_f64(const s2f_elem *e, uint32_t index, double *out);
/* Facts about VRs, inline because the readers ask them for every element. */
enum { S2F_VR_KNOWN = 1, S2F_VR_STRING = 2, S2F_VR_LONG = 4, S2F_VR_SIZE2 = 8, S2F_VR_SIZE4 = 16,
       S2F_VR_SIZE8 = 32 };
extern const uint8_t s2f_vr_info[26 * 26]; /* indexed by the two letters, dataset.c */

static inline unsigned s2f_vr_flags(uint16_t vr)
{
    unsigned a = (unsigned)(vr >> 8) - 'A', b = (unsigned)(vr & 0xFF) - 'A';
    return a < 26 && b < 26 ? s2f_vr_info[a * 26 + b] : 0;
}

/* Byte size of one value of a fixed-size binary VR, 0 for others. */
static inline unsigned s2f_vr_fixed_size(uint16_t vr)
{
    unsigned f = s2f_vr_flags(vr);
    return f & S2F_VR_SIZE2 ? 2 : f & S2F_VR_SIZE4 ? 4 : f & S2F_VR_SIZE8 ? 8 : 0;
}

/* 1 for VRs whose value is text (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT). */
static inline int s2f_vr_is_string(uint16_t vr)
{
    return (s2f_vr_flags(vr) & S2F_VR_STRING) != 0;
}

/* 1 for a VR two-letter code DICOM defines. */
static inline int s2f_vr_is_known(uint16_t vr)
{
    return (s2f_vr_flags(vr) & S2F_VR_KNOWN) != 0;
}

/* 1 for the VRs whose explicit encoding has 2 reserved bytes and a 4-byte length
 * (OB OD OF OL OV OW SQ SV UC UN UR UT UV, PS3.5 7.1.2). */
static inline int s2f_vr_has_long_length(uint16_t vr)
{
    return (s2f_vr_flags(vr) & S2F_VR_LONG) != 0;
}

#endif
