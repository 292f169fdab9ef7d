/*
 * dump.c - the human-readable dump of a read SR (`sr2fhir dump`), format specified in
 * docs/dump-format.md: a header summary, a blank line, one line per content item.
 */
#include <stdio.h>
#include <string.h>

#include "document.h"
#include "../dicom/dictionary.h"

static void put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20 || *p == 0x7F)
                fprintf(out, "\\x%02X", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void put_code(FILE *out, const s2f_codeval *c)
{
    fprintf(out, "(%s,%s", c->value, c->scheme);
    if (c->version)
        fprintf(out, "[%s]", c->version);
    fputc(',', out);
    put_quoted(out, c->meaning);
    fputc(')', out);
}

static void put_float(FILE *out, double v) { fprintf(out, "%.9g", v); }

static void put_num(FILE *out, const s2f_item *it)
{
    if (it->v.num.has_value && it->v.num.text)
        put_quoted(out, it->v.num.text);
    else
        fputs("(no value)", out);
    if (it->v.num.units) {
        fputc(' ', out);
        put_code(out, it->v.num.units);
    }
    if (it->v.num.has_float)
        fprintf(out, " fp=%.17g", it->v.num.fp);
    if (it->v.num.rational)
        fprintf(out, " rational=%s", it->v.num.rational);
    if (it->v.num.qualifier) {
        fputs(" qualifier=", out);
        put_code(out, it->v.num.qualifier);
    }
}

static void put_sopref(FILE *out, const s2f_sopref *r)
{
    fprintf(out, "(%s,%s)", r->sop_class ? r->sop_class : "", r->sop_instance ? r->sop_instance : "");
    for (uint32_t i = 0; i < r->n_frames; i++)
        fprintf(out, "%s%d", i ? "," : " frames=", (int)r->frames[i]);
    for (uint32_t i = 0; i < r->n_segments; i++)
        fprintf(out, "%s%u", i ? "," : " segments=", (unsigned)r->segments[i]);
    for (uint32_t i = 0; i + 1 < r->n_channels; i += 2)
        fprintf(out, "%s%u/%u", i ? "," : " channels=", (unsigned)r->channels[i],
                (unsigned)r->channels[i + 1]);
    if (r->pstate_instance)
        fprintf(out, " pstate=(%s,%s)", r->pstate_class ? r->pstate_class : "", r->pstate_instance);
}

static void put_coord(FILE *out, const s2f_item *it, unsigned dims)
{
    fprintf(out, "(%s", it->v.coord.graphic_type ? it->v.coord.graphic_type : "");
    if (dims == 3) {
        fputc(',', out);
        put_quoted(out, it->v.coord.frame_of_reference);
    }
    for (uint32_t i = 0; i < it->v.coord.n; i++) {
        fputc(i % dims == 0 ? ',' : '/', out);
        put_float(out, it->v.coord.data[i]);
    }
    fputc(')', out);
}

static void put_tcoord(FILE *out, const s2f_item *it)
{
    fprintf(out, "(%s", it->v.tcoord.range_type ? it->v.tcoord.range_type : "");
    for (uint32_t i = 0; i < it->v.tcoord.n_samples; i++)
        fprintf(out, "%s%u", i ? "/" : ",samples=", (unsigned)it->v.tcoord.samples[i]);
    for (uint32_t i = 0; i < it->v.tcoord.n_offsets; i++) {
        fputs(i ? "/" : ",offsets=", out);
        put_float(out, it->v.tcoord.offsets[i]);
    }
    for (uint32_t i = 0; i < it->v.tcoord.n_datetimes; i++)
        fprintf(out, "%s%s", i ? "/" : ",datetimes=",
                it->v.tcoord.datetimes[i] ? it->v.tcoord.datetimes[i] : "");
    fputc(')', out);
}

static void put_value(FILE *out, const s2f_item *it)
{
    switch (it->vt) {
    case S2F_VT_CONTAINER: fputs(it->v.container.separate ? "SEPARATE" : "CONTINUOUS", out); break;
    case S2F_VT_TEXT: case S2F_VT_DATETIME: case S2F_VT_DATE: case S2F_VT_TIME:
    case S2F_VT_UIDREF: case S2F_VT_PNAME:
        put_quoted(out, it->v.text);
        break;
    case S2F_VT_CODE: put_code(out, &it->v.code); break;
    case S2F_VT_NUM: put_num(out, it); break;
    case S2F_VT_COMPOSITE: case S2F_VT_IMAGE: case S2F_VT_WAVEFORM:
        put_sopref(out, &it->v.ref);
        break;
    case S2F_VT_SCOORD: put_coord(out, it, 2); break;
    case S2F_VT_SCOORD3D: put_coord(out, it, 3); break;
    case S2F_VT_TCOORD: put_tcoord(out, it); break;
    case S2F_VT_TABLE: fprintf(out, "(%u x %u)", it->v.table.rows, it->v.table.columns); break;
    case S2F_VT_UNKNOWN: fputs("(unknown value type)", out); break;
    }
}

static void put_annotations(FILE *out, const s2f_item *it)
{
    if (!it->observation_uid && !it->observation_dt && !it->template_id)
        return;
    const char *sep = " {";
    if (it->observation_uid)
        fprintf(out, "%suid=%s", sep, it->observation_uid), sep = " ";
    if (it->observation_dt)
        fprintf(out, "%sdt=%s", sep, it->observation_dt), sep = " ";
    if (it->template_id)
        fprintf(out, "%stemplate=%s/%s", sep, it->template_resource ? it->template_resource : "",
                it->template_id);
    fputc('}', out);
}

static void put_item(FILE *out, const s2f_item *it)
{
    char pos[4096];
    s2f_item_position(it, pos, sizeof pos);
    fprintf(out, "%s  ", pos);
    if (it->parent)
        fprintf(out, "%s ", it->rel == S2F_REL_UNKNOWN ? (it->rel_text ? it->rel_text : "?")
                                                       : s2f_rel_name(it->rel));
    if (it->by_reference) {
        fputs("->", out);
        for (uint32_t i = 0; i < it->ref_path_len; i++)
            fprintf(out, "%c%u", i ? '.' : ' ', (unsigned)it->ref_path[i]);
        fputc('\n', out);
        return;
    }
    fputs(it->vt == S2F_VT_UNKNOWN && it->vt_text ? it->vt_text : s2f_vt_name(it->vt), out);
    if (it->concept) {
        fputc(' ', out);
        put_code(out, it->concept);
    }
    fputs(" = ", out);
    put_value(out, it);
    put_annotations(out, it);
    fputc('\n', out);
}

/* Depth-first without recursion, so dumping never needs stack proportional to depth. */
static void put_tree(FILE *out, const s2f_item *root)
{
    const s2f_item *it = root;
    while (it) {
        put_item(out, it);
        if (it->n_children) {
            it = it->children[0];
            continue;
        }
        while (it && it->parent && it->index >= it->parent->n_children)
            it = it->parent;
        it = it && it->parent ? it->parent->children[it->index] : NULL;
    }
}

static void kv(FILE *out, const char *key, const char *value)
{
    if (value && *value)
        fprintf(out, "%s: %s\n", key, value);
}

static void kv_uid(FILE *out, const char *key, const char *uid)
{
    if (!uid)
        return;
    const char *name = s2f_uid_name(uid);
    if (name)
        fprintf(out, "%s: %s (%s)\n", key, uid, name);
    else
        kv(out, key, uid);
}

static void kv_issuer(FILE *out, const char *key, const s2f_issuer *is)
{
    if (is->universal)
        fprintf(out, "%s: %s (%s)\n", key, is->universal,
                is->universal_type ? is->universal_type : "no type");
}

static void put_header(FILE *out, const s2f_doc *doc)
{
    const s2f_header *h = &doc->header;
    if (doc->ds->utf8)
        kv(out, "Format", "DICOM JSON");
    else
        kv_uid(out, "Format", doc->transfer_syntax);
    kv_uid(out, "SOP Class", h->sop_class);
    kv(out, "SOP Instance", h->sop_instance);
    kv(out, "Character Set", h->charset);
    kv(out, "Patient Name", h->patient_name);
    kv(out, "Patient ID", h->patient_id);
    kv(out, "Issuer of Patient ID", h->patient_issuer.local);
    kv_issuer(out, "Patient ID Issuer", &h->patient_issuer);
    kv(out, "Birth Date", h->birth_date);
    kv(out, "Sex", h->sex);
    kv(out, "Study UID", h->study_uid);
    kv(out, "Study ID", h->study_id);
    kv(out, "Study Date", h->study_date);
    kv(out, "Study Time", h->study_time);
    kv(out, "Accession Number", h->accession);
    kv_issuer(out, "Accession Issuer", &h->accession_issuer);
    kv(out, "Series UID", h->series_uid);
    kv(out, "Series Number", h->series_number);
    kv(out, "Modality", h->modality);
    kv(out, "Manufacturer", h->manufacturer);
    kv(out, "Model", h->model);
    kv(out, "Device UID", h->device_uid);
    kv(out, "Device Serial", h->device_serial);
    kv(out, "Software Versions", h->software_versions);
    for (size_t i = 0; i < h->n_udi; i++)
        kv(out, "UDI", h->udi[i]);
    kv(out, "Preliminary Flag", h->preliminary);
    kv(out, "Completion Flag", h->completion);
    kv(out, "Verification Flag", h->verification);
    kv(out, "Content Date", h->content_date);
    kv(out, "Content Time", h->content_time);
    kv(out, "Timezone Offset", h->timezone);
    if (h->n_evidence)
        fprintf(out, "Evidence: %zu current requested procedure, %zu pertinent other instance(s)\n",
                h->n_current_evidence, h->n_pertinent_evidence);
    fprintf(out, "Items: %zu\n", doc->tree.n_items);
    if (doc->warnings.n)
        fprintf(out, "Warnings: %zu\n", doc->warnings.n + doc->warnings.dropped);
}

s2f_code s2f_dump(const s2f_doc *doc, FILE *out, s2f_error *err)
{
    put_header(out, doc);
    fputc('\n', out);
    put_tree(out, doc->tree.root);
    if (ferror(out))
        return s2f_fail(err, S2F_EIO, "cannot write the dump");
    return S2F_OK;
}
