/*
 * uuid.h - deterministic identities for the FHIR resources of one SR (MAPPING rule M24).
 *
 * Every resource the mapping makes gets a name-based UUID, version 5 (RFC 9562 section
 * 5.5, formerly RFC 4122 section 4.3: SHA-1 over the namespace UUID's 16 bytes followed
 * by the name, the first 16 bytes of the digest kept, version nibble set to 5 and the
 * variant bits to 10). The same SR therefore always yields the same fullUrls and ids, and
 * the same Bundle byte for byte.
 *
 * The name of one resource is "<SR SOP Instance UID>|<kind>|<key>" in the project's
 * namespace s2f_uuid_ns_sr2fhir:
 *   kind  the resource's role: "observation", "imaging-selection", "bodystructure",
 *         "device-equipment", ... (a fixed string chosen by the mapping code);
 *   key   the content item position ("1.4.2") or another stable key, for example a hash
 *         of the distinct content of a resource shared by several items.
 * A SOP Instance UID holds only digits and dots and the kinds never contain '|', so two
 * different (UID, kind, key) triples never give the same name.
 *
 * The project's namespace is itself a v5 UUID: the OID namespace of RFC 9562
 * (6ba7b812-9dad-11d1-80b4-00c04fd430c8) and the name "sr2fhir", computed once and
 * hard-coded: dcd76a05-1792-5939-8929-0f2573fdfcd9 (Python: uuid.uuid5(uuid.NAMESPACE_OID,
 * "sr2fhir")). Changing it changes every id the project has ever produced: never do.
 *
 * SHA-1 is src/util/sha1.c (no allocation). No global mutable state; every function is
 * thread-safe. The functions that hash return an s2f_code for the callers' uniformity;
 * today they cannot fail.
 */
#ifndef S2F_UUID_H
#define S2F_UUID_H

#include <stddef.h>

#include "util/sha1.h"

#include "sr2fhir.h"

typedef struct s2f_uuid {
    unsigned char b[16]; /* network byte order, as in the text form */
} s2f_uuid;

/* Lengths including the terminating NUL. */
#define S2F_UUID_STR_SIZE 37 /* "xxxxxxxx-xxxx-5xxx-yxxx-xxxxxxxxxxxx" */
#define S2F_UUID_URN_SIZE 46 /* "urn:uuid:" + the above */

/* The project's namespace, dcd76a05-1792-5939-8929-0f2573fdfcd9 (see above). */
extern const s2f_uuid s2f_uuid_ns_sr2fhir;

/*
 * Business identities (M24 amended, issue 10 defect 7). A resource that outlives one report
 * (a lesion's BodyStructure, a Device, a Practitioner) takes its id from what it is, not
 * from the SR: v5 in the namespace s2f_uuid_ns_identity of "<kind>|<key>", the key a
 * canonical text of the business identity (patient + Tracking UID, Device UID, ...). The
 * namespace differs from s2f_uuid_ns_sr2fhir, so no such id equals an id scoped to one SR.
 * s2f_uuid_ns_identity = uuid5(s2f_uuid_ns_sr2fhir, "business-identity")
 *                      = 13bb7e49-47a9-51cf-9c21-2daf954052bc (hard-coded; never change it).
 */
extern const s2f_uuid s2f_uuid_ns_identity;
void s2f_uuid_identity(const char *kind, const char *key, s2f_uuid *out);

/* UUID v5 of the n bytes at `name` (may be NULL when n is 0) in namespace `ns`. */
s2f_code s2f_uuid_v5(const s2f_uuid *ns, const void *name, size_t n, s2f_uuid *out);

/* Lower-case text form with hyphens at 8-4-4-4-12 into buf (37 bytes incl. NUL). */
void s2f_uuid_format(const s2f_uuid *u, char buf[S2F_UUID_STR_SIZE]);

/* Parses the 36-character text form (either case, nothing before or after). Returns 0,
 * or -1 when `text` is not a UUID (out is then unchanged). */
int s2f_uuid_parse(const char *text, s2f_uuid *out);

/* The UUID of one resource: v5 in s2f_uuid_ns_sr2fhir of "<sop_instance_uid>|<kind>|<key>".
 * A NULL argument counts as the empty string. */
s2f_code s2f_resource_uuid_bytes(const char *sop_instance_uid, const char *kind,
                                 const char *key, s2f_uuid *out);

/* The same as "urn:uuid:xxxxxxxx-..." (a Bundle entry's fullUrl) into urn_buf, which holds
 * at least S2F_UUID_URN_SIZE (46) bytes. */
s2f_code s2f_resource_uuid(const char *sop_instance_uid, const char *kind, const char *key,
                           char *urn_buf);

/* The same as a plain FHIR id (the 36-character UUID; [A-Za-z0-9\-\.]{1,64}) for PUT to
 * "<Type>/<id>", into id_buf of at least S2F_UUID_STR_SIZE (37) bytes. The urn and the id
 * of one (UID, kind, key) carry the same UUID. */
s2f_code s2f_resource_id(const char *sop_instance_uid, const char *kind, const char *key,
                         char *id_buf);

/*
 * Many identities of one SR: the hash of the shared prefix (namespace, SOP Instance UID,
 * "|") is computed once, and each identity hashes only "kind|key" on a copy of it. The
 * result equals s2f_resource_uuid_bytes for the same arguments.
 */
typedef struct s2f_uuid_scope {
    s2f_sha1 prefix;
} s2f_uuid_scope;

void s2f_uuid_scope_init(s2f_uuid_scope *sc, const char *sop_instance_uid);
void s2f_uuid_scope_id(const s2f_uuid_scope *sc, const char *kind, const char *key,
                       s2f_uuid *out);

#endif
