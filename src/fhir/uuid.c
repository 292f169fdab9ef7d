/*
 * uuid.c - name-based UUIDs (version 5, SHA-1) for deterministic resource identities
 * (MAPPING rule M24); see uuid.h for the naming scheme and the project's namespace.
 *
 * The digest is streamed (namespace bytes, then the name parts), so names of any length
 * are hashed without copying them into a buffer.
 */
#include "fhir/uuid.h"

#include <string.h>

#include "util/sha1.h"

/* uuid5(NAMESPACE_OID, "sr2fhir") = dcd76a05-1792-5939-8929-0f2573fdfcd9 */
const s2f_uuid s2f_uuid_ns_sr2fhir = {{0xdc, 0xd7, 0x6a, 0x05, 0x17, 0x92, 0x59, 0x39,
                                       0x89, 0x29, 0x0f, 0x25, 0x73, 0xfd, 0xfc, 0xd9}};

/* uuid5(s2f_uuid_ns_sr2fhir, "business-identity") = 13bb7e49-47a9-51cf-9c21-2daf954052bc */
const s2f_uuid s2f_uuid_ns_identity = {{0x13, 0xbb, 0x7e, 0x49, 0x47, 0xa9, 0x51, 0xcf,
                                        0x9c, 0x21, 0x2d, 0xaf, 0x95, 0x40, 0x52, 0xbc}};

typedef struct part {
    const void *p;
    size_t n;
} part;

/* The digest as a version 5, variant 10xx UUID (RFC 9562 5.5). */
static void finish_v5(s2f_sha1 *sha, s2f_uuid *out)
{
    unsigned char md[20];
    s2f_sha1_final(sha, md);
    memcpy(out->b, md, sizeof out->b);
    out->b[6] = (unsigned char)((out->b[6] & 0x0f) | 0x50); /* version 5 */
    out->b[8] = (unsigned char)((out->b[8] & 0x3f) | 0x80); /* variant 10xx */
}

/* v5 of the concatenation of `nparts` parts in `ns`. */
static s2f_code v5_parts(const s2f_uuid *ns, const part *parts, size_t nparts, s2f_uuid *out)
{
    s2f_sha1 sha;
    s2f_sha1_init(&sha);
    s2f_sha1_update(&sha, ns->b, sizeof ns->b);
    for (size_t i = 0; i < nparts; i++)
        s2f_sha1_update(&sha, parts[i].p, parts[i].n);
    finish_v5(&sha, out);
    return S2F_OK;
}

s2f_code s2f_uuid_v5(const s2f_uuid *ns, const void *name, size_t n, s2f_uuid *out)
{
    part p = {name, name ? n : 0};
    return v5_parts(ns, &p, 1, out);
}

/* The two lower-case hex digits of b. */
static void hex_byte(char *out, unsigned char b)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = hex[b >> 4];
    out[1] = hex[b & 0x0f];
}

/* Each byte's digits go to their place in the 8-4-4-4-12 text, between the hyphens. */
void s2f_uuid_format(const s2f_uuid *u, char buf[S2F_UUID_STR_SIZE])
{
    static const unsigned char at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
    for (size_t i = 0; i < 16; i++)
        hex_byte(buf + at[i], u->b[i]);
    buf[8] = buf[13] = buf[18] = buf[23] = '-';
    buf[36] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int s2f_uuid_parse(const char *text, s2f_uuid *out)
{
    s2f_uuid u;
    size_t nibble = 0; /* nibbles read so far, 0..32 */
    if (!text)
        return -1;
    for (size_t i = 0; i < 36; i++) { /* stops at a NUL: it is neither '-' nor hex */
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return -1;
            continue;
        }
        int v = hexval(text[i]);
        if (v < 0)
            return -1;
        if (nibble % 2 == 0)
            u.b[nibble / 2] = (unsigned char)(v << 4);
        else
            u.b[nibble / 2] = (unsigned char)(u.b[nibble / 2] | v);
        nibble++;
    }
    if (text[36] != '\0')
        return -1;
    *out = u;
    return 0;
}

s2f_code s2f_resource_uuid_bytes(const char *sop_instance_uid, const char *kind,
                                 const char *key, s2f_uuid *out)
{
    const char *s = sop_instance_uid ? sop_instance_uid : "";
    const char *k = kind ? kind : "";
    const char *y = key ? key : "";
    part parts[5] = {{s, strlen(s)}, {"|", 1}, {k, strlen(k)}, {"|", 1}, {y, strlen(y)}};
    return v5_parts(&s2f_uuid_ns_sr2fhir, parts, 5, out);
}

s2f_code s2f_resource_id(const char *sop_instance_uid, const char *kind, const char *key,
                         char *id_buf)
{
    s2f_uuid u;
    s2f_code rc = s2f_resource_uuid_bytes(sop_instance_uid, kind, key, &u);
    if (rc != S2F_OK) {
        id_buf[0] = '\0';
        return rc;
    }
    s2f_uuid_format(&u, id_buf);
    return S2F_OK;
}

s2f_code s2f_resource_uuid(const char *sop_instance_uid, const char *kind, const char *key,
                           char *urn_buf)
{
    static const char prefix[] = "urn:uuid:";
    s2f_code rc = s2f_resource_id(sop_instance_uid, kind, key, urn_buf + sizeof prefix - 1);
    if (rc != S2F_OK) {
        urn_buf[0] = '\0';
        return rc;
    }
    memcpy(urn_buf, prefix, sizeof prefix - 1);
    return S2F_OK;
}

void s2f_uuid_scope_init(s2f_uuid_scope *sc, const char *sop_instance_uid)
{
    const char *s = sop_instance_uid ? sop_instance_uid : "";
    s2f_sha1_init(&sc->prefix);
    s2f_sha1_update(&sc->prefix, s2f_uuid_ns_sr2fhir.b, sizeof s2f_uuid_ns_sr2fhir.b);
    s2f_sha1_update(&sc->prefix, s, strlen(s));
    s2f_sha1_update(&sc->prefix, "|", 1);
}

void s2f_uuid_scope_id(const s2f_uuid_scope *sc, const char *kind, const char *key,
                       s2f_uuid *out)
{
    const char *k = kind ? kind : "", *y = key ? key : "";
    s2f_sha1 sha = sc->prefix;
    s2f_sha1_update(&sha, k, strlen(k));
    s2f_sha1_update(&sha, "|", 1);
    s2f_sha1_update(&sha, y, strlen(y));
    finish_v5(&sha, out);
}

void s2f_uuid_identity(const char *kind, const char *key, s2f_uuid *out)
{
    const char *k = kind ? kind : "", *y = key ? key : "";
    part parts[3] = {{k, strlen(k)}, {"|", 1}, {y, strlen(y)}};
    v5_parts(&s2f_uuid_ns_identity, parts, 3, out);
}
