/*
 * header.c - reads the document-level attributes (see header.h).
 */
#include "sr/header.h"

#include <string.h>

#include "sr/tags.h"

static void read_issuer(s2f_text *t, const s2f_ds *item, s2f_issuer *is)
{
    if (!item)
        return;
    if (!is->local)
        is->local = s2f_text_value(t, item, T_LocalNamespaceEntityID);
    is->universal = s2f_text_value(t, item, T_UniversalEntityID);
    is->universal_type = s2f_text_value(t, item, T_UniversalEntityIDType);
}

static s2f_evidence_count count_evidence(const s2f_ds *top, uint32_t seq_tag)
{
    s2f_evidence_count c = {0};
    const s2f_elem *studies = s2f_ds_find(top, seq_tag);
    for (uint32_t i = 0; studies && i < studies->n_items; i++) {
        const s2f_elem *series = s2f_ds_find(studies->items[i], T_ReferencedSeriesSequence);
        c.studies++;
        for (uint32_t j = 0; series && j < series->n_items; j++) {
            const s2f_elem *sops = s2f_ds_find(series->items[j], T_ReferencedSOPSequence);
            c.series++;
            c.instances += sops ? sops->n_items : 0;
        }
    }
    return c;
}

/* Appends the instances of one Hierarchical SOP Instance Reference sequence. */
static void read_evidence(s2f_text *t, const s2f_ds *top, uint32_t seq_tag, int pertinent,
                          s2f_header *h)
{
    const s2f_elem *studies = s2f_ds_find(top, seq_tag);
    for (uint32_t i = 0; studies && i < studies->n_items; i++) {
        const s2f_ds *st = studies->items[i];
        const char *study_uid = s2f_text_value(t, st, T_StudyInstanceUID);
        const s2f_elem *series = s2f_ds_find(st, T_ReferencedSeriesSequence);
        for (uint32_t j = 0; series && j < series->n_items; j++) {
            const s2f_ds *se = series->items[j];
            const char *series_uid = s2f_text_value(t, se, T_SeriesInstanceUID);
            const s2f_elem *sops = s2f_ds_find(se, T_ReferencedSOPSequence);
            for (uint32_t k = 0; sops && k < sops->n_items; k++) {
                s2f_evidence *ev = &h->evidence[h->n_evidence++];
                ev->study_uid = study_uid;
                ev->series_uid = series_uid;
                ev->sop_class = s2f_text_value(t, sops->items[k], T_ReferencedSOPClassUID);
                ev->sop_instance = s2f_text_value(t, sops->items[k], T_ReferencedSOPInstanceUID);
                ev->pertinent_other = pertinent;
            }
        }
    }
}

/* The rank of a Coding Scheme URL Type (0008,010A) as a Coding.system (issue 10 defect 1,
 * docs/decisions.md): FHIR (a CodeSystem canonical, what Coding.system names) first, then
 * OWL and CSV representations, then DOC (human-readable documentation), then a URL of
 * another or no type. Lower is better. */
static int url_type_rank(const char *type)
{
    static const char *const order[] = {"FHIR", "OWL", "CSV", "DOC"};
    for (int i = 0; type && i < 4; i++)
        if (strcmp(type, order[i]) == 0)
            return i;
    return 4;
}

/* The Coding Scheme URL of one Coding Scheme Identification Sequence item: PS3.3 C.12.1
 * nests Coding Scheme URL (0008,010E) with its Coding Scheme URL Type (0008,010A) in the
 * items of Coding Scheme Resources Sequence (0008,0109); with several, the best ranked
 * type wins (the first of equals). A (0008,010E) directly in the item (not standard, seen
 * in files) is read as a URL of no type, after the nested ones. NULL when none. */
static const char *scheme_url(s2f_text *t, const s2f_ds *it)
{
    const s2f_elem *res = s2f_ds_find(it, T_CodingSchemeResourcesSequence);
    const char *best = NULL;
    int best_rank = 5;
    for (uint32_t i = 0; res && i < res->n_items; i++) {
        const char *url = s2f_text_value(t, res->items[i], T_CodingSchemeURL);
        int rank = url_type_rank(s2f_text_value(t, res->items[i], T_CodingSchemeURLType));
        if (url && *url && rank < best_rank) {
            best = url;
            best_rank = rank;
        }
    }
    if (!best) {
        const char *flat = s2f_text_value(t, it, T_CodingSchemeURL);
        best = flat && *flat ? flat : NULL;
    }
    return best;
}

static void read_schemes(s2f_text *t, const s2f_ds *top, s2f_header *h)
{
    const s2f_elem *seq = s2f_ds_find(top, T_CodingSchemeIdentificationSequence);
    for (uint32_t i = 0; seq && i < seq->n_items; i++) {
        const s2f_ds *it = seq->items[i];
        s2f_scheme_decl *d = &h->schemes[h->n_schemes++];
        d->designator = s2f_text_value(t, it, T_CodingSchemeDesignator);
        d->registry = s2f_text_value(t, it, T_CodingSchemeRegistry);
        d->uid = s2f_text_value(t, it, T_CodingSchemeUID);
        d->url = scheme_url(t, it);
        d->name = s2f_text_value(t, it, T_CodingSchemeName);
        d->version = s2f_text_value(t, it, T_CodingSchemeVersion);
        d->external_id = s2f_text_value(t, it, T_CodingSchemeExternalID);
    }
}

static void read_participants(s2f_text *t, const s2f_ds *top, s2f_header *h)
{
    const s2f_elem *seq = s2f_ds_find(top, T_ParticipantSequence);
    for (uint32_t i = 0; seq && i < seq->n_items; i++) {
        const s2f_ds *it = seq->items[i];
        s2f_participant *p = &h->participants[h->n_participants++];
        const char *type = s2f_text_value(t, it, T_ObserverType);
        p->participation_type = s2f_text_value(t, it, T_ParticipationType);
        p->is_device = type && !strcmp(type, "DEV");
        p->person_name = s2f_text_value(t, it, T_PersonName);
        p->device_uid = s2f_text_value(t, it, T_DeviceUID);
        p->station_name = s2f_text_value(t, it, T_StationName);
        p->manufacturer = s2f_text_value(t, it, T_Manufacturer);
        p->model = s2f_text_value(t, it, T_ManufacturerModelName);
        p->serial = s2f_text_value(t, it, T_DeviceSerialNumber);
    }
}

static void read_udi(s2f_text *t, const s2f_ds *top, s2f_header *h)
{
    const s2f_elem *seq = s2f_ds_find(top, T_UDISequence);
    for (uint32_t i = 0; seq && i < seq->n_items; i++) {
        const char *udi = s2f_text_value(t, seq->items[i], T_UniqueDeviceIdentifier);
        if (udi)
            h->udi[h->n_udi++] = udi;
    }
}

s2f_code s2f_header_read(const s2f_ds *top, s2f_text *t, s2f_header *h, s2f_error *err)
{
    memset(h, 0, sizeof *h);
    h->sop_class = s2f_text_value(t, top, T_SOPClassUID);
    h->sop_instance = s2f_text_value(t, top, T_SOPInstanceUID);
    h->charset = s2f_text_value(t, top, T_SpecificCharacterSet);
    h->patient_name = s2f_text_value(t, top, T_PatientName);
    h->patient_id = s2f_text_value(t, top, T_PatientID);
    h->birth_date = s2f_text_value(t, top, T_PatientBirthDate);
    h->sex = s2f_text_value(t, top, T_PatientSex);
    h->patient_issuer.local = s2f_text_value(t, top, T_IssuerOfPatientID);
    read_issuer(t, s2f_ds_item(top, T_IssuerOfPatientIDQualifiersSequence, 0), &h->patient_issuer);
    h->study_uid = s2f_text_value(t, top, T_StudyInstanceUID);
    h->study_id = s2f_text_value(t, top, T_StudyID);
    h->study_date = s2f_text_value(t, top, T_StudyDate);
    h->study_time = s2f_text_value(t, top, T_StudyTime);
    h->accession = s2f_text_value(t, top, T_AccessionNumber);
    read_issuer(t, s2f_ds_item(top, T_IssuerOfAccessionNumberSequence, 0), &h->accession_issuer);
    h->series_uid = s2f_text_value(t, top, T_SeriesInstanceUID);
    h->series_number = s2f_text_value(t, top, T_SeriesNumber);
    h->modality = s2f_text_value(t, top, T_Modality);
    h->manufacturer = s2f_text_value(t, top, T_Manufacturer);
    h->model = s2f_text_value(t, top, T_ManufacturerModelName);
    h->device_uid = s2f_text_value(t, top, T_DeviceUID);
    h->device_serial = s2f_text_value(t, top, T_DeviceSerialNumber);
    h->software_versions = s2f_text_value(t, top, T_SoftwareVersions);
    h->preliminary = s2f_text_value(t, top, T_PreliminaryFlag);
    h->completion = s2f_text_value(t, top, T_CompletionFlag);
    h->verification = s2f_text_value(t, top, T_VerificationFlag);
    h->content_date = s2f_text_value(t, top, T_ContentDate);
    h->content_time = s2f_text_value(t, top, T_ContentTime);
    h->timezone = s2f_text_value(t, top, T_TimezoneOffsetFromUTC);

    h->current_evidence = count_evidence(top, T_CurrentRequestedProcedureEvidenceSequence);
    h->pertinent_evidence = count_evidence(top, T_PertinentOtherEvidenceSequence);
    size_t n_ev = h->current_evidence.instances + h->pertinent_evidence.instances;
    const s2f_elem *schemes = s2f_ds_find(top, T_CodingSchemeIdentificationSequence);
    const s2f_elem *udis = s2f_ds_find(top, T_UDISequence);
    const s2f_elem *parts = s2f_ds_find(top, T_ParticipantSequence);
    h->evidence = s2f_arena_calloc(t->arena, n_ev + 1, sizeof *h->evidence);
    h->schemes = s2f_arena_calloc(t->arena, (schemes ? schemes->n_items : 0) + 1, sizeof *h->schemes);
    h->udi = s2f_arena_calloc(t->arena, (udis ? udis->n_items : 0) + 1, sizeof *h->udi);
    h->participants = s2f_arena_calloc(t->arena, (parts ? parts->n_items : 0) + 1,
                                       sizeof *h->participants);
    if (!h->evidence || !h->schemes || !h->udi || !h->participants)
        t->oom = 1;
    else {
        read_evidence(t, top, T_CurrentRequestedProcedureEvidenceSequence, 0, h);
        read_evidence(t, top, T_PertinentOtherEvidenceSequence, 1, h);
        read_schemes(t, top, h);
        read_udi(t, top, h);
        read_participants(t, top, h);
    }
    if (t->oom)
        return s2f_fail(err, S2F_ELIMIT, "out of memory while reading the document header");
    return S2F_OK;
}

const s2f_evidence *s2f_header_find_evidence(const s2f_header *h, const char *sop_instance)
{
    for (size_t i = 0; sop_instance && i < h->n_evidence; i++)
        if (h->evidence[i].sop_instance && strcmp(h->evidence[i].sop_instance, sop_instance) == 0)
            return &h->evidence[i];
    return NULL;
}
