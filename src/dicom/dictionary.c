/*
 * dictionary.c - lookups in the generated data dictionary and UID tables (see
 * dictionary.h; the tables come from tools/gen_dictionary.py).
 */
#include "dicom/dictionary.h"

#include <stddef.h>
#include <string.h>

#include "dicom/dataset.h"

/* No pointers in the tables: each would be a load-time relocation (thousands of them). */
typedef struct s2f_dict_entry {
    uint32_t tag;
    uint16_t vr;
    uint32_t keyword;       /* offset into s2f_dict_keywords */
} s2f_dict_entry;

typedef struct s2f_uid_entry {
    char uid[36];
    char name[96];
} s2f_uid_entry;

#include "dicom/dictionary_table.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const s2f_dict_entry *find_tag(uint32_t tag)
{
    size_t lo = 0, hi = COUNT(s2f_dict_table);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t t = s2f_dict_table[mid].tag;
        if (t == tag)
            return &s2f_dict_table[mid];
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int is_private_creator(uint32_t tag)
{
    uint16_t elem = S2F_TAG_ELEM(tag);
    return (S2F_TAG_GROUP(tag) & 1) && elem >= 0x0010 && elem <= 0x00FF;
}

uint16_t s2f_dict_vr(uint32_t tag)
{
    if (S2F_TAG_GROUP(tag) == 0xFFFE)
        return 0;
    if (S2F_TAG_ELEM(tag) == 0)
        return S2F_VR('U', 'L'); /* group length, PS3.5 7.2 */
    if (is_private_creator(tag))
        return S2F_VR('L', 'O'); /* PS3.5 7.8.1 */
    const s2f_dict_entry *d = find_tag(tag);
    return d ? d->vr : 0;
}

const char *s2f_dict_keyword(uint32_t tag)
{
    const s2f_dict_entry *d = find_tag(tag);
    return d ? s2f_dict_keywords + d->keyword : NULL;
}

const char *s2f_uid_name(const char *uid)
{
    if (!uid)
        return NULL;
    size_t lo = 0, hi = COUNT(s2f_uid_table);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s2f_uid_table[mid].uid, uid);
        if (c == 0)
            return s2f_uid_table[mid].name;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
