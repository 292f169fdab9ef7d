/*
 * content.h - the SR content tree (stage 2 of the pipeline): content items with their
 * value types, relationships, concept names and decoded values, built from a data set.
 *
 * Everything here is decoded: text is UTF-8 (M3), codes carry the value from Code Value,
 * Long Code Value or URN Code Value, numbers keep their DICOM text as well as a parsed
 * double. Positions are the DICOM "1.4.2" paths (1-based child indexes from the root).
 * By-reference relationships (Referenced Content Item Identifier) are resolved to the
 * target item when the path exists; otherwise `ref_target` stays NULL and a warning names
 * the dangling path. All memory is in the document's arena.
 */
#ifndef S2F_CONTENT_H
#define S2F_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "dicom/dataset.h"
#include "dicom/charset.h"
#include "util/hindex.h"

typedef enum s2f_vt {
    S2F_VT_UNKNOWN = 0, S2F_VT_CONTAINER, S2F_VT_TEXT, S2F_VT_CODE, S2F_VT_NUM,
    S2F_VT_DATETIME, S2F_VT_DATE, S2F_VT_TIME, S2F_VT_UIDREF, S2F_VT_PNAME,
    S2F_VT_COMPOSITE, S2F_VT_IMAGE, S2F_VT_WAVEFORM, S2F_VT_SCOORD, S2F_VT_SCOORD3D,
    S2F_VT_TCOORD, S2F_VT_TABLE
} s2f_vt;

typedef enum s2f_rel {
    S2F_REL_NONE = 0,        /* the root */
    S2F_REL_CONTAINS, S2F_REL_HAS_OBS_CONTEXT, S2F_REL_HAS_ACQ_CONTEXT,
    S2F_REL_HAS_CONCEPT_MOD, S2F_REL_HAS_PROPERTIES, S2F_REL_INFERRED_FROM,
    S2F_REL_SELECTED_FROM, S2F_REL_UNKNOWN
} s2f_rel;

/* A coded concept (PS3.3 Table 8.8-1). */
/* What a NUM's Numeric Value text is (issue 9 defect 9, M20): a number FHIR can carry, not
 * a Decimal String at all (NaN, inf, 0x10, 1,5), or a DS whose value no IEEE double holds
 * (1e999, -1e999: beyond +-1.7976931348623157e308, or a non-zero value that underflows to
 * 0). Only the first is ever written as valueQuantity.value. */
enum { S2F_NUM_TEXT_OK = 0, S2F_NUM_TEXT_NOT_DS, S2F_NUM_TEXT_OUT_OF_RANGE };

typedef struct s2f_codeval {
    const char *value;       /* from CodeValue, LongCodeValue or URNCodeValue */
    const char *scheme;      /* Coding Scheme Designator ("" when absent) */
    const char *version;     /* Coding Scheme Version or NULL */
    const char *meaning;     /* Code Meaning ("" when absent) */
    int value_kind;          /* 0 CodeValue, 1 LongCodeValue, 2 URNCodeValue */
} s2f_codeval;

/* A reference to another composite object (COMPOSITE, IMAGE, WAVEFORM). */
typedef struct s2f_sopref {
    const char *sop_class;
    const char *sop_instance;
    int32_t *frames; uint32_t n_frames;        /* Referenced Frame Number (IS) */
    uint32_t *segments; uint32_t n_segments;   /* Referenced Segment Number (US) */
    uint16_t *channels; uint32_t n_channels;   /* Referenced Waveform Channels (pairs) */
    const char *pstate_class, *pstate_instance; /* presentation state, IMAGE only */
} s2f_sopref;

typedef struct s2f_item s2f_item;

struct s2f_item {
    s2f_vt vt;
    s2f_rel rel;
    const char *vt_text;          /* Value Type as written (for UNKNOWN) */
    const char *rel_text;         /* Relationship Type as written (for UNKNOWN) */
    const s2f_codeval *concept;   /* Concept Name Code, NULL when absent */
    const char *observation_uid;  /* (0040,A171) */
    const char *observation_dt;   /* (0040,A032) */
    const char *template_id;      /* Content Template Sequence TID, e.g. "1500" */
    const char *template_resource;/* Mapping Resource, e.g. "DCMR" */

    union {
        struct { int separate; } container;                 /* CONTAINER: continuity */
        const char *text;                                   /* TEXT DATETIME DATE TIME UIDREF PNAME */
        s2f_codeval code;                                   /* CODE */
        struct {
            const char *text;         /* Numeric Value as written (trimmed), NULL if absent */
            double value;             /* parsed Numeric Value */
            int has_float;            /* Floating Point Value present */
            double fp;                /* Floating Point Value (0040,A161) */
            const s2f_codeval *units; /* Measurement Units Code Sequence */
            const s2f_codeval *qualifier; /* Numeric Value Qualifier Code Sequence */
            int has_value;            /* Measured Value Sequence had an item */
            const char *rational;     /* "num/den" when Rational Numerator/Denominator given */
            int text_state;           /* S2F_NUM_TEXT_*: what the Numeric Value text is */
        } num;
        s2f_sopref ref;                                     /* COMPOSITE IMAGE WAVEFORM */
        struct {
            const char *graphic_type; /* POINT MULTIPOINT POLYLINE CIRCLE ELLIPSE ELLIPSOID POLYGON */
            float *data; uint32_t n;  /* Graphic Data: pairs (SCOORD) or triples (SCOORD3D) */
            const char *frame_of_reference; /* SCOORD3D */
            int fiducial;             /* has a Fiducial UID */
        } coord;
        struct {
            const char *range_type;   /* POINT MULTIPOINT SEGMENT MULTISEGMENT BEGIN END */
            uint32_t *samples; uint32_t n_samples;          /* Referenced Sample Positions */
            double *offsets; uint32_t n_offsets;            /* Referenced Time Offsets */
            const char **datetimes; uint32_t n_datetimes;   /* Referenced DateTime */
        } tcoord;
        struct {
            uint32_t rows, columns;   /* Number of Table Rows / Columns */
            uint32_t n_cells;         /* items of the Cell Values Sequence */
        } table;
    } v;

    /* By-reference relationship: this item only points at another one. */
    int by_reference;
    uint32_t *ref_path; uint32_t ref_path_len;  /* Referenced Content Item Identifier */
    const s2f_item *ref_target;

    s2f_item *parent;
    s2f_item **children;
    uint32_t n_children;
    uint32_t index;          /* 1-based position among its siblings */
    uint32_t depth;          /* root = 0 */
    uint32_t seq;            /* 0-based number in document (pre-)order: root = 0 */
    size_t offset;           /* byte offset of the item in the input */
};

typedef struct s2f_tree {
    s2f_item *root;
    size_t n_items;
    uint32_t depth;          /* depth of the deepest item (root = 0) */
    s2f_hindex_work code_memo_work; /* what the reader's code memo lookups cost (a
                                       statistic for tests, issue 9 defect 11) */
} s2f_tree;

/*
 * Building the tree. Items arrive bottom-up: s2f_tree_begin when an item of a Content
 * Sequence starts, s2f_tree_end with its complete data set (which may be discarded once
 * the call returns: everything the tree keeps is copied into the arena), then
 * s2f_tree_finish with the top-level data set, which is the root item. The character set
 * must be set before the first s2f_tree_end. Problems in items become warnings naming
 * their positions; only a missing or non-CONTAINER root, the depth limit and memory fail.
 */
typedef struct s2f_tree_builder s2f_tree_builder;

s2f_tree_builder *s2f_tree_builder_new(s2f_arena *a, s2f_warnings *w, unsigned max_depth,
                                       s2f_error *err);
void s2f_tree_set_charset(s2f_tree_builder *b, s2f_charset *cs);
s2f_code s2f_tree_begin(s2f_tree_builder *b);
s2f_code s2f_tree_end(s2f_tree_builder *b, const s2f_ds *item);
s2f_code s2f_tree_finish(s2f_tree_builder *b, const s2f_ds *top, s2f_tree *out);

/* The item after `it` in document (pre-)order, NULL after the last: a walk of the whole
 * tree without recursion is `for (it = root; it; it = s2f_item_next(it))`. */
const s2f_item *s2f_item_next(const s2f_item *it);

/* Writes the "1.4.2" position of an item into buf (always NUL-terminated). */
void s2f_item_position(const s2f_item *it, char *buf, size_t size);

const char *s2f_vt_name(s2f_vt vt);      /* "CONTAINER", ... */
const char *s2f_rel_name(s2f_rel rel);   /* "CONTAINS", "HAS OBS CONTEXT", ... */
/* The value type / relationship a defined term names (S2F_VT_UNKNOWN / S2F_REL_UNKNOWN). */
s2f_vt s2f_vt_from(const uint8_t *term, size_t n);
s2f_rel s2f_rel_from(const uint8_t *term, size_t n);

#endif
