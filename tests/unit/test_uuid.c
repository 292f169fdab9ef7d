/*
 * test_uuid.c - unit tests of the name-based UUIDs for resource identities
 * (src/fhir/uuid.c, MAPPING rule M24).
 *
 * The expected values were computed with Debian's Python 3.11:
 * uuid.uuid5(namespace, name) for text names (UTF-8), and for the binary names the same
 * algorithm spelled out, uuid.UUID(bytes=hashlib.sha1(ns.bytes + name).digest()[:16],
 * version=5). The first vector is the one of RFC 9562 / RFC 4122.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fhir/uuid.h"

#define NS_DNS "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define NS_URL "6ba7b811-9dad-11d1-80b4-00c04fd430c8"
#define NS_OID "6ba7b812-9dad-11d1-80b4-00c04fd430c8"
#define NS_X500 "6ba7b814-9dad-11d1-80b4-00c04fd430c8"

/* v5 of name (n bytes) in the namespace given as text, formatted into out. */
static int v5_text(const char *ns_text, const void *name, size_t n, char out[S2F_UUID_STR_SIZE])
{
    s2f_uuid ns, u;
    if (s2f_uuid_parse(ns_text, &ns) != 0 || s2f_uuid_v5(&ns, name, n, &u) != S2F_OK)
        return -1;
    s2f_uuid_format(&u, out);
    return 0;
}

TEST(rfc_vector_dns_www_example_com)
{
    char s[S2F_UUID_STR_SIZE];
    CHECK(v5_text(NS_DNS, "www.example.com", 15, s) == 0);
    CHECK_STR(s, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
}

TEST(python_vectors)
{
    static const struct {
        const char *ns, *name, *expect;
    } v[] = {
        {NS_DNS, "python.org", "886313e1-3b8a-5372-9b90-0c9aee199e5d"},
        {NS_URL, "http://www.example.com/", "fcde3c85-2270-590f-9e7c-ee003d65e0e2"},
        {NS_URL, "https://hl7.org/fhir/uv/dicom-sr", "bfa44e20-7f9f-52f4-abf6-473cd0479d11"},
        {NS_OID, "1.2.840.10008.5.1.4.1.1.88.22", "9ab74998-029a-569d-bca0-314cfc8f26dc"},
        {NS_OID, "sr2fhir", "dcd76a05-1792-5939-8929-0f2573fdfcd9"},
        {NS_X500, "CN=sr2fhir,O=example", "50373283-ef52-5b1c-82c1-1646ad4b6ee6"},
        {NS_DNS, "", "4ebd0208-8328-5d69-8c44-ec50939c0967"},
        {NS_URL, "", "1b4db7eb-4057-5ddf-91e0-36dec72071f5"},
        /* UTF-8: "Größe – 直径 – قطر" and "ü" */
        {NS_OID,
         "Gr\xc3\xb6\xc3\x9f" "e \xe2\x80\x93 \xe7\x9b\xb4\xe5\xbe\x84 \xe2\x80\x93 "
         "\xd9\x82\xd8\xb7\xd8\xb1",
         "eeb97c63-476b-52b2-8c8b-09e02352eb48"},
        {NS_DNS, "\xc3\xbc", "ad6339e7-66ab-5d3c-be44-818ca72b7a8f"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char s[S2F_UUID_STR_SIZE];
        CHECK(v5_text(v[i].ns, v[i].name, strlen(v[i].name), s) == 0);
        CHECK_STR(s, v[i].expect);
    }
}

TEST(python_vectors_long_and_binary_names)
{
    char s[S2F_UUID_STR_SIZE];
    char a[1000];
    memset(a, 'a', sizeof a);
    CHECK(v5_text(NS_DNS, a, sizeof a, s) == 0);
    CHECK_STR(s, "062a6b1a-ddc3-5fcc-b238-790846e533d6");

    unsigned char bin[1024]; /* bytes 0..255 four times */
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)i;
    CHECK(v5_text(NS_OID, bin, sizeof bin, s) == 0);
    CHECK_STR(s, "0641ff85-01bf-5368-8bd5-02ca780e9bab");

    CHECK(v5_text(NS_DNS, "\0embedded\0nul", 13, s) == 0); /* NUL bytes are part of the name */
    CHECK_STR(s, "8aa71839-0455-5f25-bed7-956ff01a06b1");

    CHECK(v5_text(NS_DNS, NULL, 0, s) == 0); /* no name at all = the empty name */
    CHECK_STR(s, "4ebd0208-8328-5d69-8c44-ec50939c0967");
}

TEST(project_namespace_is_v5_of_oid_namespace_and_sr2fhir)
{
    s2f_uuid oid, u;
    char s[S2F_UUID_STR_SIZE];
    CHECK(s2f_uuid_parse(NS_OID, &oid) == 0);
    CHECK(s2f_uuid_v5(&oid, "sr2fhir", 7, &u) == S2F_OK);
    CHECK(memcmp(u.b, s2f_uuid_ns_sr2fhir.b, 16) == 0);
    s2f_uuid_format(&s2f_uuid_ns_sr2fhir, s);
    CHECK_STR(s, "dcd76a05-1792-5939-8929-0f2573fdfcd9");
}

TEST(resource_uuid_vectors)
{
    /* Python: uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_OID, "sr2fhir"), uid + "|" + kind + "|" + key) */
    char urn[S2F_UUID_URN_SIZE], id[S2F_UUID_STR_SIZE];
    CHECK(s2f_resource_uuid("1.2.3.4", "observation", "1.4.2", urn) == S2F_OK);
    CHECK_STR(urn, "urn:uuid:791a8f18-15b2-5254-a960-3c01b8e338b7");
    CHECK(s2f_resource_id("1.2.3.4", "observation", "1.4.2", id) == S2F_OK);
    CHECK_STR(id, "791a8f18-15b2-5254-a960-3c01b8e338b7");
    CHECK(s2f_resource_uuid("1.2.826.0.1.3680043.8.498.1", "imaging-selection", "1.7.2.8", urn) ==
          S2F_OK);
    CHECK_STR(urn, "urn:uuid:d053bcfe-057f-577e-aa86-5c91a2e2c230");
    CHECK(s2f_resource_uuid("", "", "", urn) == S2F_OK);
    CHECK_STR(urn, "urn:uuid:306b0827-aa2d-551f-bc11-1c4c2f2fa297");
    CHECK(s2f_resource_uuid(NULL, NULL, NULL, urn) == S2F_OK); /* NULL counts as "" */
    CHECK_STR(urn, "urn:uuid:306b0827-aa2d-551f-bc11-1c4c2f2fa297");
}

TEST(resource_uuid_is_deterministic_and_distinguishes_each_part)
{
    static const char *const t[][3] = {
        {"1.2.3.4", "observation", "1.4.2"},
        {"1.2.3.4", "observation", "1.4.3"},         /* other key */
        {"1.2.3.4", "bodystructure", "1.4.2"},       /* other kind */
        {"1.2.3.5", "observation", "1.4.2"},         /* other SR */
        {"1.2.3.4", "observation", "1.4.2 "},        /* a trailing space counts */
        {"1.2.3.4", "observation", ""},              /* empty key */
        {"1.2.3.4", "observation|1.4.2", ""},        /* a '|' moved between parts */
        {"1.2.3.41", "observation", ".4.2"},         /* digits moved between parts */
        {"1.2.3.4", "device-equipment", "1.4.2"},
        {"1.2.3.4", "imaging-selection", "1.4.2"},
    };
    enum { N = sizeof t / sizeof t[0] };
    char urn[N][S2F_UUID_URN_SIZE];
    for (size_t i = 0; i < N; i++) {
        char again[S2F_UUID_URN_SIZE];
        CHECK(s2f_resource_uuid(t[i][0], t[i][1], t[i][2], urn[i]) == S2F_OK);
        CHECK(s2f_resource_uuid(t[i][0], t[i][1], t[i][2], again) == S2F_OK);
        CHECK_STR(urn[i], again);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            CHECK(strcmp(urn[i], urn[j]) != 0);
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* 8-4-4-4-12, lower case, version 5, variant 10xx. */
static int well_formed_v5(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_lower_hex(s[i]))
            return 0;
    }
    return s[14] == '5' && strchr("89ab", s[19]) != NULL;
}

TEST(version_and_variant_bits_for_10000_names)
{
    for (int i = 0; i < 10000; i++) {
        char name[32], s[S2F_UUID_STR_SIZE];
        s2f_uuid u;
        int n = snprintf(name, sizeof name, "name-%d", i);
        CHECK(s2f_uuid_v5(&s2f_uuid_ns_sr2fhir, name, (size_t)n, &u) == S2F_OK);
        CHECK((u.b[6] >> 4) == 5);
        CHECK((u.b[8] & 0xc0) == 0x80);
        s2f_uuid_format(&u, s);
        CHECK(well_formed_v5(s));
    }
}

static int cmp_uuid(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(s2f_uuid));
}

TEST(no_collisions_among_100000_keys)
{
    enum { N = 100000 };
    s2f_uuid *u = malloc(N * sizeof *u);
    CHECK(u != NULL);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "1.%d.%d", i / 100 + 1, i % 100 + 1);
        if (s2f_resource_uuid_bytes("1.2.826.0.1.3680043.8.498.12345", "observation", key,
                                    &u[i]) != S2F_OK) {
            free(u);
            CHECK(!"hashing failed");
        }
    }
    qsort(u, N, sizeof *u, cmp_uuid);
    int dup = 0;
    for (int i = 1; i < N; i++)
        dup += memcmp(&u[i - 1], &u[i], sizeof *u) == 0;
    free(u);
    CHECK(dup == 0);
}

TEST(urn_and_id_forms)
{
    char urn[S2F_UUID_URN_SIZE], id[S2F_UUID_STR_SIZE];
    memset(urn, 'x', sizeof urn);
    memset(id, 'x', sizeof id);
    CHECK(s2f_resource_uuid("1.2.3", "observation", "1.1", urn) == S2F_OK);
    CHECK(s2f_resource_id("1.2.3", "observation", "1.1", id) == S2F_OK);
    CHECK(strlen(urn) == S2F_UUID_URN_SIZE - 1);
    CHECK(strncmp(urn, "urn:uuid:", 9) == 0);
    CHECK_STR(urn + 9, id);
    CHECK(well_formed_v5(id)); /* and so a FHIR id: [A-Za-z0-9\-\.]{1,64} */
}

TEST(format_and_parse_round_trip)
{
    s2f_uuid u, back;
    char s[S2F_UUID_STR_SIZE];
    for (int i = 0; i < 16; i++)
        u.b[i] = (unsigned char)(0xf0 + i * 0x13);
    s2f_uuid_format(&u, s);
    CHECK_STR(s, "f0031629-3c4f-6275-889b-aec1d4e7fa0d");
    CHECK(s2f_uuid_parse(s, &back) == 0);
    CHECK(memcmp(u.b, back.b, 16) == 0);
    CHECK(s2f_uuid_parse("F0031629-3C4F-6275-889B-AEC1D4E7FA0D", &back) == 0); /* upper case */
    CHECK(memcmp(u.b, back.b, 16) == 0);
}

TEST(parse_rejects_malformed_text)
{
    static const char *const bad[] = {
        "",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c",   /* short */
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8a", /* long */
        "6ba7b8109-dad-11d1-80b4-00c04fd430c8",  /* hyphen misplaced */
        "6ba7b810x9dad-11d1-80b4-00c04fd430c8",  /* not a hyphen */
        "6ba7b810-9dad-11d1-80b4-00c04fd430g8",  /* not hex */
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
        "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "6ba7b8109dad11d180b400c04fd430c8",
    };
    s2f_uuid u;
    memset(&u, 0x5a, sizeof u);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(s2f_uuid_parse(bad[i], &u) == -1);
    CHECK(s2f_uuid_parse(NULL, &u) == -1);
    for (int i = 0; i < 16; i++)
        CHECK(u.b[i] == 0x5a); /* untouched */
}

/* Several threads computing ids at once get what one thread gets. */
enum { THREAD_KEYS = 2000, THREADS = 4 };
static s2f_uuid expect_threads[THREAD_KEYS];

static void *thread_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < THREAD_KEYS; i++) {
        char key[16];
        s2f_uuid u;
        snprintf(key, sizeof key, "1.%d", i);
        if (s2f_resource_uuid_bytes("1.2.3", "observation", key, &u) != S2F_OK ||
            memcmp(&u, &expect_threads[i], sizeof u) != 0)
            return (void *)1;
    }
    return NULL;
}

TEST(thread_safe)
{
    for (int i = 0; i < THREAD_KEYS; i++) {
        char key[16];
        snprintf(key, sizeof key, "1.%d", i);
        CHECK(s2f_resource_uuid_bytes("1.2.3", "observation", key, &expect_threads[i]) == S2F_OK);
    }
    pthread_t th[THREADS];
    int started = 0, bad = 0;
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&th[i], NULL, thread_main, NULL) == 0)
            started++;
        else
            break;
    for (int i = 0; i < started; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        bad += r != NULL;
    }
    if (started == 0)
        SKIP("cannot start threads");
    CHECK(bad == 0);
}

TEST(scope_ids_equal_one_shot_ids)
{
    /* the prefix-hashing scope (M24, many ids per SR) gives the same UUIDs */
    s2f_uuid_scope sc;
    s2f_uuid_scope_init(&sc, "1.2.840.113619.2.55.3.604688119.969.1268071029.320");
    const char *keys[] = {"", "1", "1.4.1.9", "a|b", "a long key that spans more than one SHA-1 block of sixty-four bytes"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        s2f_uuid a, b;
        s2f_uuid_scope_id(&sc, "observation", keys[i], &a);
        CHECK(s2f_resource_uuid_bytes("1.2.840.113619.2.55.3.604688119.969.1268071029.320",
                                      "observation", keys[i], &b) == S2F_OK);
        CHECK(memcmp(a.b, b.b, 16) == 0);
    }
}

/* M24 amended (issue 10 defect 7): the business-identity namespace is
 * uuid5(s2f_uuid_ns_sr2fhir, "business-identity"), and an identity is v5 of "kind|key" in
 * it (Python: uuid.uuid5(NS, "device|uid|1.2.3")). */
TEST(identity_namespace_and_vector)
{
    s2f_uuid u;
    char s[S2F_UUID_STR_SIZE];
    CHECK(s2f_uuid_v5(&s2f_uuid_ns_sr2fhir, "business-identity", 17, &u) == S2F_OK);
    CHECK(memcmp(u.b, s2f_uuid_ns_identity.b, 16) == 0);
    s2f_uuid_format(&s2f_uuid_ns_identity, s);
    CHECK_STR(s, "13bb7e49-47a9-51cf-9c21-2daf954052bc");
    s2f_uuid_identity("device", "uid|1.2.3", &u);
    s2f_uuid_format(&u, s);
    CHECK_STR(s, "024c7dbb-5677-53f8-8520-39e10fd15f3d");
}

int main(void)
{
    RUN(identity_namespace_and_vector);
    RUN(scope_ids_equal_one_shot_ids);
    RUN(rfc_vector_dns_www_example_com);
    RUN(python_vectors);
    RUN(python_vectors_long_and_binary_names);
    RUN(project_namespace_is_v5_of_oid_namespace_and_sr2fhir);
    RUN(resource_uuid_vectors);
    RUN(resource_uuid_is_deterministic_and_distinguishes_each_part);
    RUN(version_and_variant_bits_for_10000_names);
    RUN(no_collisions_among_100000_keys);
    RUN(urn_and_id_forms);
    RUN(format_and_parse_round_trip);
    RUN(parse_rejects_malformed_text);
    RUN(thread_safe);
    CHECK_DONE();
}
