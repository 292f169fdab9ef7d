/*
 * refs.c - which image references of the report become ImagingSelections (M19, issue 10
 * defect 2): a shared piece of the FHIR stage (fhir.h) that the Observations writer
 * (which references it lists) and the ImagingSelections writer (which it writes) both ask,
 * so the two agree and neither writer calls the other.
 */
#include <string.h>

#include "fhir/fhir.h"
#include "fhir/id.h"

static int has_text(const char *s)
{
    return s && *s;
}

/* Whether an item's concept name is DCM `code`. */
static int named_dcm(const s2f_item *it, const char *code)
{
    return it && it->concept && it->concept->value && it->concept->scheme &&
           strcmp(it->concept->value, code) == 0 && strcmp(it->concept->scheme, "DCM") == 0;
}

/* A DICOM UID as a FHIR `id` (fhir/id.h), as selections.c checks it. */
static int valid_id(const char *s)
{
    return s && s2f_fhir_id_valid(s, strlen(s));
}

/* A sibling (same parent, by value) that is a Source image (IMAGE DCM 121233) or Source
 * series (UIDREF DCM 121232) for segmentation; `series` chooses which. */
int s2f_fhir_refs_is_seg_source(const s2f_item *c, int series)
{
    if (c->by_reference)
        return 0;
    if (series)
        return c->vt == S2F_VT_UIDREF && named_dcm(c, "121232") && has_text(c->v.text);
    return c->vt == S2F_VT_IMAGE && named_dcm(c, "121233");
}

/* Whether a Source series for segmentation item is an ImagingSelection of its own: when
 * no Source image for segmentation beside it names the images (then it only gives their
 * selection its seriesUid) and its UID can be a seriesUid (issue 10 defect 2). */
int s2f_fhir_refs_series_is_own_selection(const s2f_item *series)
{
    const s2f_item *p = series->parent;
    for (uint32_t i = 0; p && i < p->n_children; i++)
        if (s2f_fhir_refs_is_seg_source(p->children[i], 0))
            return 0;
    return valid_id(series->v.text);
}

int s2f_fhir_refs_is_resource(const s2f_image_ref *ref)
{
    /* issue 10 defect 2: a Source series for segmentation with Source images beside it
     * gives their selection its seriesUid; alone, it is a selection of its own */
    return ref->kind != S2F_REF_SOURCE_SERIES_FOR_SEG ||
           s2f_fhir_refs_series_is_own_selection(ref->item);
}
