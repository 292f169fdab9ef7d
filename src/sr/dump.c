/*
 * dump.c - the human-readable dump of a read SR (`sr2fhir dump`), format specified in
 * docs/dump-format.md: a header summary, a blank line, one line per content item.
 * Written through a buffered sink; positions are built incrementally while walking the
 * tree, so a 100,000-item report costs no per-line formatting beyond its values.
 */
#include <stdlib.h>
#include <string.h>

#include "sr/document.h"
#include "dicom/dictionary.h"
#include "util/escape.h"
#include "util/sink.h"

/* Outside text, escaped (issue 9 defect 8, src/util/escape.h): bare, or quoted. */
static void put_text(s2f_sink *s, const char *str)
{
    if (str)
        s2f_escape_to_sink(s, str, strlen(str), 0);
}

static void put_quoted(s2f_sink *s, const char *str)
{
    s2f_sink_putc(s, '"');
    if (str)
        s2f_escape_to_sink(s, str, strlen(str), S2F_ESC_QUOTED);
    s2f_sink_putc(s, '"');
}

static void put_code(s2f_sink *s, const s2f_codeval *c)
{
    s2f_sink_putc(s, '(');
    put_text(s, c->value);
    s2f_sink_putc(s, ',');
    put_text(s, c->scheme);
    if (c->version) {
        s2f_sink_putc(s, '[');
        put_text(s, c->version);
        s2f_sink_putc(s, ']');
    }
    s2f_sink_putc(s, ',');
    put_quoted(s, c->meaning);
    s2f_sink_putc(s, ')');
}

static void put_float(s2f_sink *s, double v) { s2f_sink_printf(s, "%.9g", v); }

static void put_num(s2f_sink *s, const s2f_item *it)
{
    if (it->v.num.has_value && it->v.num.text)
        put_quoted(s, it->v.num.text);
    else
        s2f_sink_puts(s, "(no value)");
    if (it->v.num.units) {
        s2f_sink_putc(s, ' ');
        put_code(s, it->v.num.units);
    }
    if (it->v.num.has_float)
        s2f_sink_printf(s, " fp=%.17g", it->v.num.fp);
    if (it->v.num.rational) {
        s2f_sink_puts(s, " rational=");
        put_text(s, it->v.num.rational);
    }
    if (it->v.num.qualifier) {
        s2f_sink_puts(s, " qualifier=");
        put_code(s, it->v.num.qualifier);
    }
}

static void put_sopref(s2f_sink *s, const s2f_sopref *r)
{
    s2f_sink_putc(s, '(');
    put_text(s, r->sop_class);
    s2f_sink_putc(s, ',');
    put_text(s, r->sop_instance);
    s2f_sink_putc(s, ')');
    for (uint32_t i = 0; i < r->n_frames; i++) {
        s2f_sink_puts(s, i ? "," : " frames=");
        s2f_sink_i64(s, r->frames[i]);
    }
    for (uint32_t i = 0; i < r->n_segments; i++) {
        s2f_sink_puts(s, i ? "," : " segments=");
        s2f_sink_u64(s, r->segments[i]);
    }
    for (uint32_t i = 0; i + 1 < r->n_channels; i += 2) {
        s2f_sink_puts(s, i ? "," : " channels=");
        s2f_sink_u64(s, r->channels[i]);
        s2f_sink_putc(s, '/');
        s2f_sink_u64(s, r->channels[i + 1]);
    }
    if (r->pstate_instance)
    {
        s2f_sink_puts(s, " pstate=(");
        put_text(s, r->pstate_class);
        s2f_sink_putc(s, ',');
        put_text(s, r->pstate_instance);
        s2f_sink_putc(s, ')');
    }
}

static void put_coord(s2f_sink *s, const s2f_item *it, unsigned dims)
{
    s2f_sink_putc(s, '(');
    put_text(s, it->v.coord.graphic_type);
    if (dims == 3) {
        s2f_sink_putc(s, ',');
        put_quoted(s, it->v.coord.frame_of_reference);
    }
    for (uint32_t i = 0; i < it->v.coord.n; i++) {
        s2f_sink_putc(s, i % dims == 0 ? ',' : '/');
        put_float(s, it->v.coord.data[i]);
    }
    s2f_sink_putc(s, ')');
}

static void put_tcoord(s2f_sink *s, const s2f_item *it)
{
    s2f_sink_putc(s, '(');
    put_text(s, it->v.tcoord.range_type);
    for (uint32_t i = 0; i < it->v.tcoord.n_samples; i++) {
        s2f_sink_puts(s, i ? "/" : ",samples=");
        s2f_sink_u64(s, it->v.tcoord.samples[i]);
    }
    for (uint32_t i = 0; i < it->v.tcoord.n_offsets; i++) {
        s2f_sink_puts(s, i ? "/" : ",offsets=");
        put_float(s, it->v.tcoord.offsets[i]);
    }
    for (uint32_t i = 0; i < it->v.tcoord.n_datetimes; i++) {
        s2f_sink_puts(s, i ? "/" : ",datetimes=");
        put_text(s, it->v.tcoord.datetimes[i]);
    }
    s2f_sink_putc(s, ')');
}

static void put_value(s2f_sink *s, const s2f_item *it)
{
    switch (it->vt) {
    case S2F_VT_CONTAINER:
        s2f_sink_puts(s, it->v.container.separate ? "SEPARATE" : "CONTINUOUS");
        break;
    case S2F_VT_TEXT: case S2F_VT_DATETIME: case S2F_VT_DATE: case S2F_VT_TIME:
    case S2F_VT_UIDREF: case S2F_VT_PNAME:
        put_quoted(s, it->v.text);
        break;
    case S2F_VT_CODE: put_code(s, &it->v.code); break;
    case S2F_VT_NUM: put_num(s, it); break;
    case S2F_VT_COMPOSITE: case S2F_VT_IMAGE: case S2F_VT_WAVEFORM:
        put_sopref(s, &it->v.ref);
        break;
    case S2F_VT_SCOORD: put_coord(s, it, 2); break;
    case S2F_VT_SCOORD3D: put_coord(s, it, 3); break;
    case S2F_VT_TCOORD: put_tcoord(s, it); break;
    case S2F_VT_TABLE:
        s2f_sink_printf(s, "(%u x %u, %u cells)", it->v.table.rows, it->v.table.columns,
                        it->v.table.n_cells);
        break;
    case S2F_VT_UNKNOWN: s2f_sink_puts(s, "(unknown value type)"); break;
    }
}

static void put_annotations(s2f_sink *s, const s2f_item *it)
{
    if (!it->observation_uid && !it->observation_dt && !it->template_id)
        return;
    const char *sep = " {";
    if (it->observation_uid) {
        s2f_sink_puts(s, sep);
        s2f_sink_puts(s, "uid=");
        put_text(s, it->observation_uid);
        sep = " ";
    }
    if (it->observation_dt) {
        s2f_sink_puts(s, sep);
        s2f_sink_puts(s, "dt=");
        put_text(s, it->observation_dt);
        sep = " ";
    }
    if (it->template_id) {
        s2f_sink_puts(s, sep);
        s2f_sink_puts(s, "template=");
        put_text(s, it->template_resource);
        s2f_sink_putc(s, '/');
        put_text(s, it->template_id);
    }
    s2f_sink_putc(s, '}');
}

static void put_item(s2f_sink *s, const s2f_item *it, const char *pos, size_t pos_len)
{
    s2f_sink_write(s, pos, pos_len);
    s2f_sink_puts(s, "  ");
    if (it->parent) {
        put_text(s, it->rel != S2F_REL_UNKNOWN ? s2f_rel_name(it->rel)
                    : it->rel_text ? it->rel_text : "?");
        s2f_sink_putc(s, ' ');
    }
    if (it->by_reference) {
        s2f_sink_puts(s, "->");
        for (uint32_t i = 0; i < it->ref_path_len; i++) {
            s2f_sink_putc(s, i ? '.' : ' ');
            s2f_sink_u64(s, it->ref_path[i]);
        }
        s2f_sink_putc(s, '\n');
        return;
    }
    put_text(s, it->vt == S2F_VT_UNKNOWN && it->vt_text ? it->vt_text : s2f_vt_name(it->vt));
    if (it->concept) {
        s2f_sink_putc(s, ' ');
        put_code(s, it->concept);
    }
    s2f_sink_puts(s, " = ");
    put_value(s, it);
    put_annotations(s, it);
    s2f_sink_putc(s, '\n');
}

/* Appends ".index" to the position prefix of the parent; returns the new length. */
static size_t extend_position(char *pos, size_t parent_len, uint32_t index)
{
    char tmp[12];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + index % 10);
        index /= 10;
    } while (index);
    pos[parent_len] = '.';
    for (size_t i = 0; i < n; i++)
        pos[parent_len + 1 + i] = tmp[n - 1 - i];
    return parent_len + 1 + n;
}

/* Depth-first without recursion; len_at[d] is the length of the position at depth d. */
static void put_tree(s2f_sink *s, const s2f_item *root, char *pos, size_t *len_at)
{
    const s2f_item *it = root;
    pos[0] = '1';
    len_at[0] = 1;
    for (;;) {
        put_item(s, it, pos, len_at[it->depth]);
        if (!(it = s2f_item_next(it)))
            return;
        len_at[it->depth] = extend_position(pos, len_at[it->depth - 1], it->index);
    }
}

static void kv(s2f_sink *s, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    s2f_sink_puts(s, key);
    s2f_sink_puts(s, ": ");
    put_text(s, value);
    s2f_sink_putc(s, '\n');
}

static void kv_uid(s2f_sink *s, const char *key, const char *uid)
{
    const char *name = uid ? s2f_uid_name(uid) : NULL;
    if (name) {
        s2f_sink_printf(s, "%s: ", key);
        put_text(s, uid);
        s2f_sink_printf(s, " (%s)\n", name);
    } else
        kv(s, key, uid);
}

static void kv_issuer(s2f_sink *s, const char *key, const s2f_issuer *is)
{
    if (!is->universal)
        return;
    s2f_sink_printf(s, "%s: ", key);
    put_text(s, is->universal);
    s2f_sink_puts(s, " (");
    put_text(s, is->universal_type ? is->universal_type : "no type");
    s2f_sink_puts(s, ")\n");
}

static void put_header(s2f_sink *s, const s2f_doc *doc)
{
    const s2f_header *h = &doc->header;
    if (doc->ds->utf8)
        kv(s, "Format", "DICOM JSON");
    else
        kv_uid(s, "Format", doc->transfer_syntax);
    kv_uid(s, "SOP Class", h->sop_class);
    kv(s, "SOP Instance", h->sop_instance);
    kv(s, "Character Set", h->charset);
    kv(s, "Patient Name", h->patient_name);
    kv(s, "Patient ID", h->patient_id);
    kv(s, "Issuer of Patient ID", h->patient_issuer.local);
    kv_issuer(s, "Patient ID Issuer", &h->patient_issuer);
    kv(s, "Birth Date", h->birth_date);
    kv(s, "Sex", h->sex);
    kv(s, "Study UID", h->study_uid);
    kv(s, "Study ID", h->study_id);
    kv(s, "Study Date", h->study_date);
    kv(s, "Study Time", h->study_time);
    kv(s, "Accession Number", h->accession);
    kv_issuer(s, "Accession Issuer", &h->accession_issuer);
    kv(s, "Series UID", h->series_uid);
    kv(s, "Series Number", h->series_number);
    kv(s, "Modality", h->modality);
    kv(s, "Manufacturer", h->manufacturer);
    kv(s, "Model", h->model);
    kv(s, "Device UID", h->device_uid);
    kv(s, "Device Serial", h->device_serial);
    kv(s, "Software Versions", h->software_versions);
    for (size_t i = 0; i < h->n_udi; i++)
        kv(s, "UDI", h->udi[i]);
    kv(s, "Preliminary Flag", h->preliminary);
    kv(s, "Completion Flag", h->completion);
    kv(s, "Verification Flag", h->verification);
    kv(s, "Content Date", h->content_date);
    kv(s, "Content Time", h->content_time);
    kv(s, "Timezone Offset", h->timezone);
    if (h->n_evidence)
        s2f_sink_printf(s,
                        "Evidence: current requested procedure %zu study / %zu series / %zu "
                        "instances; pertinent other %zu / %zu / %zu\n",
                        h->current_evidence.studies, h->current_evidence.series,
                        h->current_evidence.instances, h->pertinent_evidence.studies,
                        h->pertinent_evidence.series, h->pertinent_evidence.instances);
    s2f_sink_printf(s, "Items: %zu\n", doc->tree.n_items);
    if (doc->warnings.n)
        s2f_sink_printf(s, "Warnings: %zu\n", doc->warnings.n + doc->warnings.dropped);
}

s2f_code s2f_dump(const s2f_doc *doc, FILE *out, s2f_error *err)
{
    size_t levels = (size_t)doc->tree.depth + 1;
    s2f_sink *s = malloc(sizeof *s);
    char *pos = malloc(levels * 11 + 1);
    size_t *len_at = malloc(levels * sizeof *len_at);
    s2f_code rc = S2F_OK;
    if (!s || !pos || !len_at) {
        rc = s2f_fail(err, S2F_ENOMEM, "out of memory while writing the dump");
    } else {
        s2f_sink_init(s, out);
        put_header(s, doc);
        s2f_sink_putc(s, '\n');
        put_tree(s, doc->tree.root, pos, len_at);
        if (s2f_sink_finish(s) != 0)
            rc = s2f_fail(err, S2F_EIO, "cannot write the dump");
    }
    free(len_at);
    free(pos);
    free(s);
    return rc;
}
