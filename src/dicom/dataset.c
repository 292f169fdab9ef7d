/*
 * dataset.c - lookups and value access on a read data set (see dataset.h).
 */
#include "dicom/dataset.h"

#include <string.h>

const s2f_elem *s2f_ds_find(const s2f_ds *ds, uint32_t tag)
{
    if (!ds)
        return NULL;
    if (ds->n <= 8) { /* a content item or code: a scan beats the search */
        for (uint32_t i = 0; i < ds->n && ds->elems[i].tag <= tag; i++)
            if (ds->elems[i].tag == tag)
                return &ds->elems[i];
        return NULL;
    }
    uint32_t lo = 0, hi = ds->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t t = ds->elems[mid].tag;
        if (t == tag)
            return &ds->elems[mid];
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const s2f_ds *s2f_ds_item(const s2f_ds *ds, uint32_t tag, uint32_t index)
{
    const s2f_elem *e = s2f_ds_find(ds, tag);
    if (!e || !e->is_seq || index >= e->n_items)
        return NULL;
    return e->items[index];
}

static int is_pad(uint8_t c) { return c == ' ' || c == '\0'; }

static int is_long_text_vr(uint16_t vr)
{
    return vr == S2F_VR('L', 'T') || vr == S2F_VR('S', 'T') || vr == S2F_VR('U', 'T');
}

uint32_t s2f_elem_string_count(const s2f_elem *e)
{
    if (!e || e->is_seq || e->len == 0)
        return 0;
    if (is_long_text_vr(e->vr))
        return 1; /* backslash is text in these VRs */
    uint32_t n = 1;
    for (uint32_t i = 0; i < e->len; i++)
        n += e->val[i] == '\\';
    return n;
}

/* One pass: skips `index` backslashes (none exist in LT/ST/UT, whose backslash is text),
 * then ends the value at the next one. */
int s2f_elem_string_raw(const s2f_elem *e, uint32_t index, const uint8_t **p, size_t *n)
{
    if (!e || e->is_seq || e->len == 0)
        return 0;
    const uint8_t *s = e->val, *end = e->val + e->len;
    int long_text = is_long_text_vr(e->vr);
    if (!long_text) {
        for (uint32_t k = 0; k < index; k++) {
            const uint8_t *bs = memchr(s, '\\', (size_t)(end - s));
            if (!bs)
                return 0;
            s = bs + 1;
        }
        const uint8_t *bs = memchr(s, '\\', (size_t)(end - s));
        if (bs)
            end = bs;
    } else if (index > 0) {
        return 0;
    }
    /* Leading spaces are significant only in LT/ST/UT, trailing padding never. */
    while (!long_text && s < end && *s == ' ')
        s++;
    while (end > s && is_pad(end[-1]))
        end--;
    *p = s;
    *n = (size_t)(end - s);
    return 1;
}

/* Facts about each VR, indexed by its two letters: one table lookup on the hot path. */
#define VRI(a, b) (((a) - 'A') * 26 + ((b) - 'A'))
const uint8_t s2f_vr_info[26 * 26] = {
    [VRI('A', 'E')] = S2F_VR_KNOWN | S2F_VR_STRING, [VRI('A', 'S')] = S2F_VR_KNOWN | S2F_VR_STRING,
    [VRI('A', 'T')] = S2F_VR_KNOWN | S2F_VR_SIZE4,  [VRI('C', 'S')] = S2F_VR_KNOWN | S2F_VR_STRING,
    [VRI('D', 'A')] = S2F_VR_KNOWN | S2F_VR_STRING, [VRI('D', 'S')] = S2F_VR_KNOWN | S2F_VR_STRING,
    [VRI('D', 'T')] = S2F_VR_KNOWN | S2F_VR_STRING, [VRI('F', 'D')] = S2F_VR_KNOWN | S2F_VR_SIZE8,
    [VRI('F', 'L')] = S2F_VR_KNOWN | S2F_VR_SIZE4,  [VRI('I', 'S')] = S2F_VR_KNOWN | S2F_VR_STRING,
    [VRI('L', 'O')] = S2F_VR_KNOWN | S2F_VR_STRING, [VRI('L', 'T')] = S2F_VR_KNOWN | S2F_VR_STRING,
    [VRI('O', 'B')] = S2F_VR_KNOWN | S2F_VR_LONG,   [VRI('O', 'D')] = S2F_VR_KNOWN | S2F_VR_LONG | S2F_VR_SIZE8,
    [VRI('O', 'F')] = S2F_VR_KNOWN | S2F_VR_LONG | S2F_VR_SIZE4,
    [VRI('O', 'L')] = S2F_VR_KNOWN | S2F_VR_LONG | S2F_VR_SIZE4,
    [VRI('O', 'V')] = S2F_VR_KNOWN | S2F_VR_LONG | S2F_VR_SIZE8,
    [VRI('O', 'W')] = S2F_VR_KNOWN | S2F_VR_LONG | S2F_VR_SIZE2,
    [VRI('P', 'N')] = S2F_VR_KNOWN | S2F_VR_STRING, [VRI('S', 'H')] = S2F_VR_KNOWN | S2F_VR_STRING,
    [VRI('S', 'L')] = S2F_VR_KNOWN | S2F_VR_SIZE4,  [VRI('S', 'Q')] = S2F_VR_KNOWN | S2F_VR_LONG,
    [VRI('S', 'S')] = S2F_VR_KNOWN | S2F_VR_SIZE2,  [VRI('S', 'T')] = S2F_VR_KNOWN | S2F_VR_STRING,
    [VRI('S', 'V')] = S2F_VR_KNOWN | S2F_VR_LONG | S2F_VR_SIZE8,
    [VRI('T', 'M')] = S2F_VR_KNOWN | S2F_VR_STRING, [VRI('U', 'C')] = S2F_VR_KNOWN | S2F_VR_STRING | S2F_VR_LONG,
    [VRI('U', 'I')] = S2F_VR_KNOWN | S2F_VR_STRING, [VRI('U', 'L')] = S2F_VR_KNOWN | S2F_VR_SIZE4,
    [VRI('U', 'N')] = S2F_VR_KNOWN | S2F_VR_LONG,   [VRI('U', 'R')] = S2F_VR_KNOWN | S2F_VR_STRING | S2F_VR_LONG,
    [VRI('U', 'S')] = S2F_VR_KNOWN | S2F_VR_SIZE2,  [VRI('U', 'T')] = S2F_VR_KNOWN | S2F_VR_STRING | S2F_VR_LONG,
    [VRI('U', 'V')] = S2F_VR_KNOWN | S2F_VR_LONG | S2F_VR_SIZE8,
};

uint32_t s2f_elem_binary_count(const s2f_elem *e)
{
    unsigned size = e ? s2f_vr_fixed_size(e->vr) : 0;
    return size ? e->len / size : 0;
}

static const uint8_t *binary_at(const s2f_elem *e, uint32_t index, unsigned size)
{
    if (!e || e->is_seq || s2f_vr_fixed_size(e->vr) != size || index >= e->len / size)
        return NULL;
    return e->val + (size_t)index * size;
}

static uint64_t le_bytes(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = (v << 8) | p[i];
    return v;
}

int s2f_elem_u16(const s2f_elem *e, uint32_t index, uint16_t *out)
{
    const uint8_t *p = binary_at(e, index, 2);
    if (!p)
        return 0;
    *out = (uint16_t)le_bytes(p, 2);
    return 1;
}

int s2f_elem_u32(const s2f_elem *e, uint32_t index, uint32_t *out)
{
    const uint8_t *p = binary_at(e, index, 4);
    if (!p)
        return 0;
    *out = (uint32_t)le_bytes(p, 4);
    return 1;
}

int s2f_elem_i32(const s2f_elem *e, uint32_t index, int32_t *out)
{
    uint32_t u;
    if (!s2f_elem_u32(e, index, &u))
        return 0;
    memcpy(out, &u, sizeof u);
    return 1;
}

int s2f_elem_f32(const s2f_elem *e, uint32_t index, float *out)
{
    uint32_t u;
    if (!s2f_elem_u32(e, index, &u))
        return 0;
    memcpy(out, &u, sizeof u);
    return 1;
}

int s2f_elem_f64(const s2f_elem *e, uint32_t index, double *out)
{
    const uint8_t *p = binary_at(e, index, 8);
    if (!p)
        return 0;
    uint64_t u = le_bytes(p, 8);
    memcpy(out, &u, sizeof u);
    return 1;
}
