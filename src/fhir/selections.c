/*
 * selections.c - the ImagingSelections of a Measurement Report (MAPPING rules M12, M19).
 *
 * One ImagingSelection per image reference content item (M19) and one per source SR content
 * item (M12), each written once per Bundle (a group's references are referred to by the
 * group and by every Observation made from its children). R4 has no ImagingSelection
 * (M25): the writers write nothing then.
 *
 * Members, in the R5 element order: status "available", subject (M4), basedOn (M6), code
 * (the item's concept name, M23), studyUid, derivedFrom (the ImagingStudy, M5), seriesUid,
 * frameOfReferenceUid, focus, instance [{uid, sopClass, subset, imageRegion2D}]. A member
 * is written only when it has content.
 *
 * Decisions (docs/decisions.md):
 *  - sopClass (M19 amended, docs/decisions.md): the system the guide's profiles fix
 *    (S2F_SYSTEM_SOP_CLASS, its part04 sect_B.5 page) with the bare SOP Class UID as code,
 *    display the PS3.6 name ("CT Image Storage"): the profiles pick instances by this
 *    pattern, and MAPPING's urn:ietf:rfc:3986 form fails them.
 *  - studyUid / seriesUid of a referenced instance: its evidence entry (0040,A375 /
 *    0040,A385, M19); studyUid falls back to the SR's own Study Instance UID; derivedFrom
 *    names the ImagingStudy of that studyUid (the SR's study unless the evidence says the
 *    instance belongs to another one).
 *  - Source series for segmentation (UIDREF DCM 121232, issue 10 defect 2): with source
 *    images beside it, it gives their selection its seriesUid (the profile's TID 1411
 *    mapping). Alone, it is a selection of its own, which the segment's selection refers to
 *    by focus: source-image-for-segmentation (code 121233) with the series' instances as
 *    the evidence sequences list them, else a plain ImagingSelection (code 121232,
 *    seriesUid, no profile: the profile needs instances). A UID that cannot be a seriesUid
 *    (over 64 characters: the guide's own example) stays unmapped (M26; report.c).
 *  - Source image for segmentation (IMAGE 121233): seriesUid from the evidence, else from a
 *    sibling Source series for segmentation (the guide's TID 1411 mapping).
 *  - focus (linking, M19): the selection of a Referenced Segment, Referenced Segmentation
 *    Frame or Volume Surface refers by focus to the selection of the first Source image for
 *    segmentation of the same parent (else of its Source series for segmentation) (one: the profiles' slice
 *    sourceImageForSegmentation is 0..1; siblings are refs of the same group, so convert.c
 *    writes them, and their identities are computed here from their positions); every
 *    selection made from a measurement group's child also refers by focus to the group's
 *    source-sr-content-item selection when the group has an Observation UID (convert.c
 *    writes that one for every such group, M12), as the guide's referenced-segment example.
 *  - Coordinates: Graphic Data is FL (float32); each value is written as the shortest
 *    decimal that reads back as the same float (0.25 -> 0.25, 0.1f -> 0.1, not
 *    0.10000000149011612). A region with a non-finite coordinate or an unknown Graphic Type
 *    is left out (nothing invalid is written).
 *  - 2D (M19): POINT point, POLYLINE polyline, CIRCLE circle, ELLIPSE ellipse, coordinates
 *    as given (column,row pairs). MULTIPOINT: R5 has no 2D multipoint and the
 *    image-region-2d profile allows one imageRegion2D per instance, so one point region per
 *    point is one instance element (same uid, sopClass, subset) per point.
 *  - 3D: R5 (5.0.0) has imageRegion3D only inside an instance (uid 1..1), which a SCOORD3D
 *    does not name; the resource-level imageRegion3D of M19 is the R6 draft (FHIR-41429)
 *    and the R5 validator rejects it. So frameOfReferenceUid only, like the guide's own
 *    example (the resource-level writer, never compiled, was removed in issue 14: git history
 *    has it for the R6 form).
 *  - UIDs go to elements of type id (studyUid, seriesUid, frameOfReferenceUid,
 *    instance.uid): one that is not a valid id (over 64 characters, other characters) is
 *    left out, an instance without a valid uid too, rather than invalidate the Bundle.
 *  - subset: the Referenced Segment Numbers of the IMAGE / COMPOSITE when it lists any,
 *    else its Referenced Frame Numbers (R5: segment numbers of a segmentation, frame
 *    numbers of a multi-frame image). Region In Space: also the TEXT children DCM 130489
 *    (the guide's mapping of the RT structure set's ROI numbers). The referenced-segment
 *    and referenced-segmentation-frame profiles allow one subset value per instance (1..1):
 *    several numbers are one instance element each, as MULTIPOINT (issue 10 defect 8).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir.h"
#include "fhir/id.h"
#include "dicom/dictionary.h"
#include "sr/header.h"

#define SOP_CLASS_SEGMENTATION "1.2.840.10008.5.1.4.1.1.66.4"
#define SOP_CLASS_RT_STRUCTURE_SET "1.2.840.10008.5.1.4.1.1.481.3" /* M19: correct UID */

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

/* A DICOM UID as a FHIR `id` (fhir/id.h): the type of studyUid, seriesUid,
 * frameOfReferenceUid and instance.uid. A DICOM UID is at most 64 characters of digits and
 * dots, so every valid UID is one; an invalid one (the guide's own example input has a
 * 66-character series UID) is left out rather than make the whole Bundle invalid. */
static int valid_id(const char *s)
{
    return s && s2f_fhir_id_valid(s, strlen(s));
}

/* ---- small writers ---------------------------------------------------------------------- */

/* "status": "available" (every selection of the guide's examples). */
static void write_status(s2f_fhir *f)
{
    s2f_json_kv_string(f->json, "status", "available");
}

/* M5: "derivedFrom": [ the ImagingStudy by identifier ] (the profiles' imagingStudyRef
 * slice: identifier.type DCM 110180, system urn:dicom:uid, value urn:oid:<Study UID>). */
static void write_derived_from_study(s2f_fhir *f, const char *study_uid)
{
    s2f_json *j = f->json;
    if (!has_text(study_uid))
        return;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("derivedFrom"));
    s2f_json_begin_object(j);
    if (f->h->study_uid && !strcmp(study_uid, f->h->study_uid)) /* the study delivery found */
        s2f_json_kv_string(j, "reference", f->opt.imaging_study_ref);
    s2f_json_kv_string(j, "type", "ImagingStudy");
    s2f_json_lit_begin_object(j, S2F_JSON_LIT("identifier"));
    s2f_fhir_codeable_fixed(f, "type", S2F_SYSTEM_DCM, "110180", "Study Instance UID");
    s2f_json_kv_string(j, "system", "urn:dicom:uid");
    s2f_json_kv_string(j, "value", s2f_fhir_oid(f, study_uid));
    s2f_json_end_object(j);
    s2f_json_end_object(j);
    s2f_json_end_array(j);
}

/* The PS3.6 name of a SOP class ("CT Image Storage"): s2f_uid_name drops a trailing
 * " Storage", which is put back. NULL when the UID is unknown. */
static const char *sop_class_display(s2f_fhir *f, const char *uid)
{
    const char *name = s2f_uid_name(uid);
    if (!name)
        return NULL;
    if (strstr(name, "Storage"))  /* "... Storage - For Presentation" kept its word */
        return name;
    return s2f_arena_printf(f->arena, "%s Storage", name);
}

/* M19 amended: "sopClass": {the profiles' system, the bare UID, display}. */
static void write_sop_class(s2f_fhir *f, const char *uid)
{
    s2f_json *j = f->json;
    const char *display;
    if (!has_text(uid))
        return;
    display = sop_class_display(f, uid);
    s2f_json_lit_begin_object(j, S2F_JSON_LIT("sopClass"));
    s2f_json_kv_string(j, "system", S2F_SYSTEM_SOP_CLASS); /* M19 amended: the profiles' */
    s2f_json_kv_string(j, "code", uid);
    s2f_json_kv_string(j, "display", display);
    s2f_json_end_object(j);
}

/* The shortest decimal text that reads back as the same float (Graphic Data is FL). */
static int write_float(s2f_json *j, float v)
{
    char buf[48];
    if (!isfinite(v))
        return -1;
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    /* the double nearest that decimal: s2f_json_double writes it back as the same short
     * text, in plain notation where %g uses it ("50", not "5e+01") */
    return s2f_json_double(j, strtod(buf, NULL));
}

static int all_finite(const float *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* One region object {regionType, coordinate: [v[0..n)]}. */
static void write_region(s2f_fhir *f, const char *type, const float *v, uint32_t n)
{
    s2f_json *j = f->json;
    s2f_json_begin_object(j);
    s2f_json_kv_string(j, "regionType", type);
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("coordinate"));
    for (uint32_t i = 0; i < n; i++)
        write_float(j, v[i]);
    s2f_json_end_array(j);
    s2f_json_end_object(j);
}

static int graphic_is(const s2f_item *it, const char *type)
{
    return it->v.coord.graphic_type && strcmp(it->v.coord.graphic_type, type) == 0;
}

/* M19: the R5 2D region type of a SCOORD (ImagingSelection2DGraphicType: point,
 * polyline, interpolated, circle, ellipse), or NULL when it has none: another Graphic
 * Type, odd or empty data, non-finite values. MULTIPOINT (not an R5 2D type) gives "point"
 * with *per_point set: one point region per point (M19). */
static const char *region_2d_type(const s2f_item *sc, int *per_point)
{
    static const struct { const char *dicom, *fhir; } types[] = {
        {"POINT", "point"}, {"POLYLINE", "polyline"}, {"INTERPOLATED", "interpolated"},
        {"CIRCLE", "circle"}, {"ELLIPSE", "ellipse"}, {"MULTIPOINT", "point"},
    };
    const float *v = sc->v.coord.data;
    uint32_t n = sc->v.coord.n;
    *per_point = 0;
    if (sc->vt != S2F_VT_SCOORD || !v || n == 0 || n % 2 != 0 || !all_finite(v, n))
        return NULL;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        if (graphic_is(sc, types[t].dicom)) {
            *per_point = !strcmp(types[t].dicom, "MULTIPOINT");
            return types[t].fhir;
        }
    return NULL;
}

/* Region In Space: the TEXT children DCM 130489 of the COMPOSITE (the guide's mapping of
 * instance.subset), counted or written. */
static size_t region_in_space_numbers(s2f_fhir *f, const s2f_item *it, int write)
{
    size_t n = 0;
    for (uint32_t i = 0; i < it->n_children; i++) {
        const s2f_item *c = it->children[i];
        if (c->by_reference || c->vt != S2F_VT_TEXT || !named_dcm(c, "130489") ||
            !has_text(c->v.text))
            continue;
        if (write)
            s2f_json_string(f->json, c->v.text);
        n++;
    }
    return n;
}

/* "subset": segment numbers when the reference lists any, else frame numbers (M19). */
static void write_subset(s2f_fhir *f, const s2f_sopref *r, const s2f_item *region_in_space)
{
    s2f_json *j = f->json;
    char buf[16];
    size_t extra = region_in_space ? region_in_space_numbers(f, region_in_space, 0) : 0;
    if (r->n_segments == 0 && r->n_frames == 0 && extra == 0)
        return;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("subset"));
    if (r->n_segments > 0) {
        for (uint32_t i = 0; i < r->n_segments; i++) {
            snprintf(buf, sizeof buf, "%u", (unsigned)r->segments[i]);
            s2f_json_string(j, buf);
        }
    } else {
        for (uint32_t i = 0; i < r->n_frames; i++) {
            snprintf(buf, sizeof buf, "%ld", (long)r->frames[i]);
            s2f_json_string(j, buf);
        }
    }
    if (extra)
        region_in_space_numbers(f, region_in_space, 1);
    s2f_json_end_array(j);
}

/* Whether the kind's profile allows one subset value per instance element: the
 * referenced-segment and referenced-segmentation-frame profiles (subset 1..1). */
static int one_subset_per_instance(const s2f_image_ref *ref)
{
    return ref->kind == S2F_REF_SEGMENT || ref->kind == S2F_REF_SEGMENTATION_FRAME;
}

/* "subset": [the one segment number, else frame number, at `at`] (issue 10 defect 8). */
static void write_subset_at(s2f_fhir *f, const s2f_sopref *r, uint32_t at)
{
    char buf[24];
    if (r->n_segments > 0)
        snprintf(buf, sizeof buf, "%u", (unsigned)r->segments[at]);
    else
        snprintf(buf, sizeof buf, "%ld", (long)r->frames[at]);
    s2f_json_lit_begin_array(f->json, S2F_JSON_LIT("subset"));
    s2f_json_string(f->json, buf);
    s2f_json_end_array(f->json);
}

/* "instance" of a referenced instance (M19). The image-region-2d profile allows one
 * imageRegion2D per instance, so a MULTIPOINT's one point region per point is one instance
 * element per point; the referenced-segment and referenced-segmentation-frame profiles
 * allow one subset value per instance, so several segment or frame numbers are one
 * instance element (same uid and sopClass) per number (issue 10 defect 8). */
static void write_instances(s2f_fhir *f, const s2f_image_ref *ref, const s2f_sopref *inst,
                            const char *sop_class)
{
    s2f_json *j = f->json;
    const s2f_item *it = ref->item;
    int per_point;
    const char *type = it->vt == S2F_VT_SCOORD ? region_2d_type(it, &per_point) : NULL;
    uint32_t step = type ? (per_point ? 2 : it->v.coord.n) : 0;
    uint32_t n_numbers = inst->n_segments > 0 ? inst->n_segments : inst->n_frames;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("instance"));
    if (one_subset_per_instance(ref) && n_numbers > 1) {
        for (uint32_t at = 0; at < n_numbers; at++) {
            s2f_json_begin_object(j);
            s2f_json_kv_string(j, "uid", inst->sop_instance);
            write_sop_class(f, sop_class);
            write_subset_at(f, inst, at);
            s2f_json_end_object(j);
        }
        s2f_json_end_array(j);
        return;
    }
    for (uint32_t at = 0; at == 0 || (type && at < it->v.coord.n); at += step ? step : 1) {
        s2f_json_begin_object(j);
        s2f_json_kv_string(j, "uid", inst->sop_instance);
        write_sop_class(f, sop_class);
        write_subset(f, inst, ref->kind == S2F_REF_REGION_IN_SPACE ? it : NULL);
        if (type) {
            s2f_json_lit_begin_array(j, S2F_JSON_LIT("imageRegion2D"));
            write_region(f, type, it->v.coord.data + at, step);
            s2f_json_end_array(j);
        }
        s2f_json_end_object(j);
    }
    s2f_json_end_array(j);
}

/* ---- the selection of one image reference (M19) ----------------------------------------- */

static const char *profile_of(const s2f_image_ref *ref)
{
    switch (ref->kind) {
    case S2F_REF_REGION_2D: return S2F_PROFILE_BASE "image-region-2d";
    case S2F_REF_REGION_3D: return S2F_PROFILE_BASE "image-region-3d";
    case S2F_REF_SEGMENT: return S2F_PROFILE_BASE "referenced-segment";
    case S2F_REF_SOURCE_IMAGE_FOR_SEG:
    case S2F_REF_SOURCE_SERIES_FOR_SEG: return S2F_PROFILE_BASE "source-image-for-segmentation";
    case S2F_REF_SEGMENTATION_FRAME: return S2F_PROFILE_BASE "referenced-segmentation-frame";
    case S2F_REF_REGION_IN_SPACE: return S2F_PROFILE_BASE "region-in-space";
    case S2F_REF_VOLUME_SURFACE: return S2F_PROFILE_BASE "volume-surface";
    case S2F_REF_REAL_WORLD_VALUE_MAP: return S2F_PROFILE_BASE "real-world-value-map";
    case S2F_REF_ILLUSTRATION_OF_ROI: return S2F_PROFILE_BASE "illustration-of-roi";
    case S2F_REF_VISUAL_EXPLANATION: return S2F_PROFILE_BASE "visual-explanation";
    case S2F_REF_REGION_OF_MEASUREMENT:
        return ref->item->vt == S2F_VT_SCOORD3D ? S2F_PROFILE_BASE "image-region-3d"
                                                : S2F_PROFILE_BASE "image-region-2d";
    }
    return NULL;
}

/* The DCM code and display (PS3.16) each kind's profile fixes; the source series, whose
 * profile fixes 121233, keeps its own code. */
static void kind_code(const s2f_image_ref *ref, const char **code, const char **display)
{
    static const struct { s2f_ref_kind kind; const char *code, *display; } codes[] = {
        {S2F_REF_REGION_2D, "111030", "Image Region"},
        {S2F_REF_REGION_3D, "111030", "Image Region"},
        {S2F_REF_REGION_OF_MEASUREMENT, "111030", "Image Region"},
        {S2F_REF_SEGMENT, "121191", "Referenced Segment"},
        {S2F_REF_SOURCE_IMAGE_FOR_SEG, "121233", "Source image for segmentation"},
        {S2F_REF_SOURCE_SERIES_FOR_SEG, "121232", "Source series for segmentation"},
        {S2F_REF_SEGMENTATION_FRAME, "121214", "Referenced Segmentation Frame"},
        {S2F_REF_REGION_IN_SPACE, "130488", "Region In Space"},
        {S2F_REF_VOLUME_SURFACE, "121231", "Volume Surface"},
        {S2F_REF_REAL_WORLD_VALUE_MAP, "126100", "Real World Value Map used for measurement"},
        {S2F_REF_ILLUSTRATION_OF_ROI, "121200", "Illustration of ROI"},
        {S2F_REF_VISUAL_EXPLANATION, "130401", "Visual Explanation"},
    };
    *code = *display = NULL;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].kind == ref->kind) {
            *code = codes[i].code;
            *display = codes[i].display;
        }
}

/* "code" (1..1 in R5): the item's concept name (M23). When it is the DCM code the kind's
 * profile fixes, the PS3.16 display is written, as the profile's pattern requires (producers
 * vary the Code Meaning's case: "Source Image for Segmentation"); an item without a concept
 * name (a region a NUM is inferred from, as dcmjs writes them) gets the kind's code. */
static void write_code(s2f_fhir *f, const s2f_image_ref *ref)
{
    const char *code, *display;
    kind_code(ref, &code, &display);
    if (code && (!ref->item->concept || named_dcm(ref->item, code)))
        s2f_fhir_codeable_fixed(f, "code", S2F_SYSTEM_DCM, code, display);
    else if (ref->item->concept)
        s2f_fhir_codeable(f, "code", ref->item->concept);
}

/* The referenced instance of a selection: the IMAGE / COMPOSITE itself, or the IMAGE a
 * SCOORD is selected from. NULL when there is none (3D regions, series, a region without
 * its image). */
static const s2f_sopref *instance_of(const s2f_image_ref *ref)
{
    const s2f_item *it = ref->item;
    if (it->vt == S2F_VT_IMAGE || it->vt == S2F_VT_COMPOSITE)
        return valid_id(it->v.ref.sop_instance) ? &it->v.ref : NULL;
    if (it->vt == S2F_VT_SCOORD && ref->image && ref->image->vt == S2F_VT_IMAGE)
        return valid_id(ref->image->v.ref.sop_instance) ? &ref->image->v.ref : NULL;
    return NULL;
}

/* The Source series for segmentation UID among the siblings of `it`, or NULL. */
static const char *sibling_source_series(const s2f_item *it)
{
    const s2f_item *p = it->parent;
    if (!p)
        return NULL;
    for (uint32_t i = 0; i < p->n_children; i++)
        if (s2f_fhir_refs_is_seg_source(p->children[i], 1))
            return p->children[i]->v.text;
    return NULL;
}

/* The measurement group container an item is a child of, when it has an Observation UID
 * (then M12 gives the group a source-sr-content-item selection). */
static const s2f_item *group_with_source_item(const s2f_item *it)
{
    const s2f_item *p = it->parent;
    if (p && p->vt == S2F_VT_CONTAINER && named_dcm(p, "125007") &&
        has_text(p->observation_uid))
        return p;
    return NULL;
}

/* The first Source image for segmentation among the siblings of `it`, else the first
 * Source series for segmentation that is a selection of its own, else NULL. */
static const s2f_item *sibling_seg_source(const s2f_item *it)
{
    const s2f_item *p = it->parent;
    for (uint32_t i = 0; p && i < p->n_children; i++)
        if (p->children[i] != it && s2f_fhir_refs_is_seg_source(p->children[i], 0))
            return p->children[i];
    for (uint32_t i = 0; p && i < p->n_children; i++)
        if (s2f_fhir_refs_is_seg_source(p->children[i], 1) && s2f_fhir_refs_series_is_own_selection(p->children[i]))
            return p->children[i];
    return NULL;
}

/* "focus" (M19, M12): for a segment, a segmentation frame or a volume surface, the
 * selection of the Source image for segmentation of the same parent: one, as the profiles' sourceImageForSegmentation slice allows 0..1 (the others
 * stay in the group's derivedFrom); and the group's source SR content item selection. */
static void write_focus(s2f_fhir *f, const s2f_image_ref *ref)
{
    s2f_json *j = f->json;
    const s2f_item *group = group_with_source_item(ref->item);
    const s2f_item *source = NULL;
    s2f_rid rid;
    if (ref->kind == S2F_REF_SEGMENT || ref->kind == S2F_REF_SEGMENTATION_FRAME ||
        ref->kind == S2F_REF_VOLUME_SURFACE)
        source = sibling_seg_source(ref->item);
    if (!source && !group)
        return;
    s2f_json_lit_begin_array(j, S2F_JSON_LIT("focus"));
    if (source) {
        s2f_fhir_item_selection_rid(f, source, &rid);
        s2f_fhir_reference(f, NULL, &rid);
    }
    if (group) {
        s2f_fhir_source_item_rid(f, group, &rid);
        s2f_fhir_reference(f, NULL, &rid);
    }
    s2f_json_end_array(j);
}

/* qsort order of evidence entries: by SOP Instance UID, then by position. */
static int by_instance_then_position(const void *pa, const void *pb)
{
    const s2f_evidence *a = *(const s2f_evidence *const *)pa;
    const s2f_evidence *b = *(const s2f_evidence *const *)pb;
    int r = strcmp(a->sop_instance, b->sop_instance);
    return r ? r : (a > b) - (a < b);
}

/* The evidence entries (M19: 0040,A375 / 0040,A385) of series `uid` with a valid instance
 * UID, each instance once (its first entry), in evidence order: how many, into *out (an
 * arena array). Sorting makes the duplicate check O(n log n) whatever the input; -1 when
 * the arena refuses. */
static long series_evidence(s2f_fhir *f, const char *uid, const s2f_evidence ***out)
{
    const s2f_header *h = f->h;
    size_t n = 0, k = 0;
    const s2f_evidence **list, **sorted;
    unsigned char *dup;
    *out = NULL;
    for (size_t i = 0; i < h->n_evidence; i++)
        n += h->evidence[i].series_uid && !strcmp(h->evidence[i].series_uid, uid) &&
             valid_id(h->evidence[i].sop_instance);
    if (!n)
        return 0;
    list = s2f_arena_alloc(f->arena, 2 * n * sizeof *list);
    dup = s2f_arena_calloc(f->arena, h->n_evidence, 1);
    if (!list || !dup)
        return -1;
    sorted = list + n;
    for (size_t i = 0; i < h->n_evidence; i++) {
        const s2f_evidence *e = &h->evidence[i];
        if (e->series_uid && !strcmp(e->series_uid, uid) && valid_id(e->sop_instance)) {
            list[k] = sorted[k] = e;
            k++;
        }
    }
    qsort(sorted, n, sizeof *sorted, by_instance_then_position);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(sorted[i]->sop_instance, sorted[i - 1]->sop_instance))
            dup[sorted[i] - h->evidence] = 1;
    k = 0;
    for (size_t i = 0; i < n; i++)
        if (!dup[list[i] - h->evidence])
            list[k++] = list[i];
    *out = list;
    return (long)k;
}

/* The selection of a Source series for segmentation (UIDREF DCM 121232) with no Source
 * image beside it (issue 10 defect 2, docs/decisions.md). The guide's TID 1411 mapping
 * sends the series UID to seriesUid of a source-image-for-segmentation selection, whose
 * profile needs instances and code 121233: with the series' instances listed by the
 * evidence sequences, it is that selection (those instances, code 121233); without, a
 * plain ImagingSelection (no profile) with seriesUid and the item's own code 121232. */
static void write_source_series(s2f_fhir *f, const s2f_image_ref *ref, const s2f_rid *rid)
{
    s2f_json *j = f->json;
    const s2f_header *h = f->h;
    const char *uid = ref->item->v.text;
    const s2f_evidence **ev;
    long n = series_evidence(f, uid, &ev);
    const char *study = n > 0 && has_text(ev[0]->study_uid) ? ev[0]->study_uid : h->study_uid;

    if (n < 0) {
        f->code = s2f_fail(f->err, S2F_ELIMIT, "out of memory while writing FHIR");
        return;
    }

    s2f_fhir_begin_entry(f, rid, n ? S2F_PROFILE_BASE "source-image-for-segmentation" : NULL);
    write_status(f);
    s2f_fhir_subject(f, "subject");
    s2f_fhir_based_on(f);
    if (n)
        s2f_fhir_codeable_fixed(f, "code", S2F_SYSTEM_DCM, "121233",
                                "Source image for segmentation");
    else
        write_code(f, ref);
    s2f_json_kv_string(j, "studyUid", valid_id(study) ? study : NULL);
    write_derived_from_study(f, study);
    s2f_json_kv_string(j, "seriesUid", uid);
    write_focus(f, ref);
    if (n) {
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("instance"));
        for (long i = 0; i < n; i++) {
            s2f_json_begin_object(j);
            s2f_json_kv_string(j, "uid", ev[i]->sop_instance);
            write_sop_class(f, ev[i]->sop_class);
            s2f_json_end_object(j);
        }
        s2f_json_end_array(j);
    }
    s2f_fhir_end_entry(f, rid);
}

void s2f_fhir_write_selection(s2f_fhir *f, const s2f_image_ref *ref)
{
    s2f_json *j;
    const s2f_item *it;
    const s2f_sopref *inst;
    const s2f_evidence *ev = NULL;
    const char *key, *study, *series = NULL, *sop_class = NULL;
    int is3d;
    s2f_rid rid;

    if (f->code || !ref || !ref->item || f->opt.r4 || !s2f_fhir_refs_is_resource(ref))
        return; /* M25: no ImagingSelection in R4 */
    it = ref->item;
    key = s2f_fhir_item_key(f, it);
    if (f->code || !key || !s2f_fhir_first_time(f, S2F_KIND_SELECTION, key))
        return;
    s2f_fhir_selection_rid(f, ref, &rid);
    if (f->code)
        return;
    if (ref->kind == S2F_REF_SOURCE_SERIES_FOR_SEG) {
        write_source_series(f, ref, &rid);
        return;
    }
    j = f->json;
    is3d = it->vt == S2F_VT_SCOORD3D;
    inst = instance_of(ref);

    /* M19: study and series of the referenced instance from the evidence sequences */
    if (inst)
        ev = s2f_header_find_evidence(f->h, inst->sop_instance);
    study = ev && has_text(ev->study_uid) ? ev->study_uid : f->h->study_uid;
    if (ev && has_text(ev->series_uid))
        series = ev->series_uid;
    else if (ref->kind == S2F_REF_SOURCE_IMAGE_FOR_SEG)
        series = sibling_source_series(it);   /* the guide's TID 1411 mapping */
    if (inst) {
        sop_class = inst->sop_class;
        if (!has_text(sop_class) && ev)
            sop_class = ev->sop_class;
        if (ref->kind == S2F_REF_REGION_IN_SPACE && !has_text(sop_class))
            sop_class = SOP_CLASS_RT_STRUCTURE_SET;   /* M19: the correct UID */
        else if ((ref->kind == S2F_REF_SEGMENT || ref->kind == S2F_REF_SEGMENTATION_FRAME) &&
                 !has_text(sop_class))
            sop_class = SOP_CLASS_SEGMENTATION;
    }

    s2f_fhir_begin_entry(f, &rid, profile_of(ref));
    write_status(f);
    s2f_fhir_subject(f, "subject");
    s2f_fhir_based_on(f);
    write_code(f, ref);
    s2f_json_kv_string(j, "studyUid", valid_id(study) ? study : NULL);
    write_derived_from_study(f, study);
    s2f_json_kv_string(j, "seriesUid", valid_id(series) ? series : NULL);
    if (is3d && valid_id(it->v.coord.frame_of_reference))
        s2f_json_kv_string(j, "frameOfReferenceUid", it->v.coord.frame_of_reference);
    write_focus(f, ref);
    if (inst)
        write_instances(f, ref, inst, sop_class);
    s2f_fhir_end_entry(f, &rid);
}

/* ---- the source SR content item (M12) --------------------------------------------------- */

void s2f_fhir_write_source_item(s2f_fhir *f, const s2f_item *it)
{
    s2f_json *j;
    const s2f_header *h;
    const char *key;
    s2f_rid rid;

    if (f->code || !it || f->opt.r4 || !has_text(it->observation_uid))   /* M25, M12 */
        return;
    key = s2f_fhir_item_key(f, it);
    if (f->code || !key || !s2f_fhir_first_time(f, S2F_KIND_SOURCE_ITEM, key))
        return;
    s2f_fhir_source_item_rid(f, it, &rid);
    if (f->code)
        return;
    j = f->json;
    h = f->h;

    s2f_fhir_begin_entry(f, &rid, S2F_PROFILE_BASE "source-sr-content-item");
    write_status(f);
    s2f_fhir_subject(f, "subject");
    s2f_fhir_based_on(f);
    s2f_fhir_codeable_fixed(f, "code", S2F_SYSTEM_DCM, "111040", "Original Source");
    s2f_json_kv_string(j, "studyUid", valid_id(h->study_uid) ? h->study_uid : NULL);
    write_derived_from_study(f, h->study_uid);
    s2f_json_kv_string(j, "seriesUid", valid_id(h->series_uid) ? h->series_uid : NULL);
    if (valid_id(h->sop_instance)) {
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("instance"));
        s2f_json_begin_object(j);
        s2f_json_kv_string(j, "uid", h->sop_instance);
        write_sop_class(f, h->sop_class);
        s2f_json_lit_begin_array(j, S2F_JSON_LIT("subset"));
        s2f_json_string(j, it->observation_uid);
        s2f_json_end_array(j);
        s2f_json_end_object(j);
        s2f_json_end_array(j);
    }
    s2f_fhir_end_entry(f, &rid);
}
