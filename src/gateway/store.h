/*
 * store.h - the gateway's received files (issue 11): each STOW-RS part is streamed into a
 * new temporary file of DIR/incoming (created exclusively, never through a symbolic link,
 * mode 0600, an unpredictable name), made durable (fsync) when complete, and renamed to
 * its final unique name; the folder is then fsynced so the name survives a crash too.
 * Only after all that may a job row name the file (queue.h). A part that is refused or a
 * request that fails is removed again (abort).
 *
 * A crash can leave temporary files ("tmp-*", never named by a job) and committed files
 * whose job row was never committed: s2f_store_sweep removes the former at start; the
 * latter, never acknowledged to anyone, are removed at start by s2f_orphans_sweep
 * (orphans.h).
 *
 * One s2f_store is shared by every thread (it holds only the folder); an s2f_store_file
 * belongs to one request.
 */
#ifndef S2F_GATEWAY_STORE_H
#define S2F_GATEWAY_STORE_H

#include <stdint.h>

#include "sr2fhir.h"

typedef struct s2f_store s2f_store;

/* Names inside DIR/incoming: "tmp-" or a final name, 32 random hex digits and a suffix. */
#define S2F_STORE_NAME_MAX 63

typedef struct s2f_store_file {
    int fd;                                 /* -1 once closed */
    int committed;                          /* renamed to final_name */
    uint64_t size;                          /* bytes written */
    char tmp_name[S2F_STORE_NAME_MAX + 1];  /* "" when there is no temporary file */
    char final_name[S2F_STORE_NAME_MAX + 1];
} s2f_store_file;

/* Opens DIR/incoming, creating DIR and it (0700) when absent. */
s2f_code s2f_store_open(const char *data_dir, s2f_store **out, s2f_error *err);
void s2f_store_close(s2f_store *st);

/* The absolute path of DIR/incoming. */
const char *s2f_store_dir(const s2f_store *st);

/* Removes temporary files a crash left (names "tmp-*"); *removed (may be NULL) counts. */
s2f_code s2f_store_sweep(s2f_store *st, int *removed, s2f_error *err);

/* A new temporary file; `suffix` (".dcm", ".json") ends the final name. */
s2f_code s2f_store_begin(s2f_store *st, const char *suffix, s2f_store_file *f, s2f_error *err);

/* Appends bytes (the whole of them, or S2F_EIO). */
s2f_code s2f_store_write(s2f_store_file *f, const void *data, size_t len, s2f_error *err);

/* Maps the written bytes read-only for reading the header (*data NULL when empty); undo
 * with s2f_store_unmap. */
s2f_code s2f_store_map(s2f_store_file *f, const uint8_t **data, s2f_error *err);
void s2f_store_unmap(s2f_store_file *f, const uint8_t *data);

/* Makes the bytes durable (fsync) and closes the descriptor; the file keeps its
 * temporary name. */
s2f_code s2f_store_seal(s2f_store_file *f, s2f_error *err);

/* Renames a sealed file to its final name (not yet durable: s2f_store_sync). */
s2f_code s2f_store_commit(s2f_store *st, s2f_store_file *f, s2f_error *err);

/* fsync of DIR/incoming: every rename before it survives a crash. */
s2f_code s2f_store_sync(s2f_store *st, s2f_error *err);

/* The final path (DIR/incoming/NAME) of a committed file into buf. */
s2f_code s2f_store_path(const s2f_store *st, const s2f_store_file *f, char *buf, size_t cap,
                        s2f_error *err);

/* Closes and removes the file, whatever its state (nothing when there is none). */
void s2f_store_abort(s2f_store *st, s2f_store_file *f);

/* Free bytes for an unprivileged writer on the folder's file system (statvfs). */
s2f_code s2f_store_free_bytes(s2f_store *st, unsigned long long *bytes, s2f_error *err);

#endif
