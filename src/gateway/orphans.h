/*
 * orphans.h - the start-up sweep of orphan files in DIR/incoming (issue 11 gap 4).
 *
 * A receiver renames a received file to its final name, fsyncs the folder and only then
 * commits the job row that names it (intake.h); a crash in between leaves a final-named
 * file that no job names. Nobody was told it was stored (the acknowledgement waits for the
 * commit), so it is removed. Run it before any receiver starts: then no file is between
 * its rename and its commit, and the sweep races with nothing.
 */
#ifndef S2F_GATEWAY_ORPHANS_H
#define S2F_GATEWAY_ORPHANS_H

#include <stdint.h>

#include "sr2fhir.h"
#include "gateway/queue.h"

/* Removes from DIR/incoming every regular file with a final name (32 hexadecimal digits
 * and a suffix of at most 8 characters, as store.c makes them) that no job of `q` names.
 * A job names a file by its path's last component: the queue keeps absolute paths, and a
 * data folder that was moved keeps its names. Temporary files ("tmp-*", the store's own
 * sweep) and every other name are left alone. Nothing is removed when the jobs cannot all
 * be read. *removed (may be NULL) counts the files removed. */
s2f_code s2f_orphans_sweep(const char *data_dir, s2f_queue *q, int64_t *removed,
                           s2f_error *err);

#endif
