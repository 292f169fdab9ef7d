/*
 * intake.h - the receivers' one way into the queue (issues 11, 12, 13). STOW-RS (stow.c),
 * DIMSE C-STORE (scp.c) and DICOMweb pull (pull.c) each stream a received SR into a file of
 * the data folder (store.h: begin, write, seal), ask intake what it is
 * (s2f_intake_classify), and hand the accepted files to s2f_intake_commit, which renames
 * them, fsyncs the folder and commits their job rows in ONE transaction together with
 * those of every other receiver thread waiting at that moment (group commit, one committer
 * thread). Only after s2f_intake_commit returned S2F_OK may a receiver acknowledge
 * (STOW-RS 200/202, C-STORE-RSP 0000): what it acknowledged then survives a crash.
 *
 * Back-pressure (s2f_intake_busy: queue above its high-water mark, disk below its
 * minimum) and the audit log (one JSON line per event, one write(2) each) are here too,
 * so every receiver applies the same policy. One s2f_intake per service, shared by every
 * receiver thread; it has its own locking. The receivers know nothing of FHIR.
 */
#ifndef S2F_GATEWAY_INTAKE_H
#define S2F_GATEWAY_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sr2fhir.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/store.h"

typedef struct s2f_intake s2f_intake;

typedef struct s2f_intake_options {
    const char *data_dir;           /* DIR; files go to DIR/incoming */
    const char *queue_path;         /* DIR/queue.sqlite */
    long long high_water;           /* pending + leased jobs above this: busy */
    unsigned long long min_free_bytes; /* free disk below this: busy */
    int audit_fd;                   /* -1: no audit log */
    s2f_gw_metrics *metrics;        /* may be NULL */
    s2f_gw_log *log;                /* may be NULL */
    void (*on_enqueued)(void *ctx); void *on_enqueued_ctx;   /* wakes the workers */
    bool keep_exclusive;            /* sole user: keep the data folder's lock exclusive
                                       until s2f_intake_share (start-up sweeps) */
} s2f_intake_options;

/* Opens DIR/incoming (created 0700 when absent) and the queue, and starts the committer
 * thread. Strings are copied; metrics, log and the audit descriptor must outlive it.
 *
 * Several processes may use one data folder at once (`sr2fhir serve` and `sr2fhir pull
 * --data DIR`): each intake holds a lock on DIR/intake.lock, shared while it runs. Only an
 * intake that finds no other holder (an exclusive lock granted) removes the temporary
 * files a crash left; then it is the "sole" user (s2f_intake_sole) and, with
 * opt->keep_exclusive, keeps the lock exclusive until s2f_intake_share, so that its other
 * start-up sweeps (orphans.h) race with no other process. An intake that finds another
 * holder waits at most 30 s for a shared lock (another's start-up), else S2F_EIO. */
s2f_code s2f_intake_new(const s2f_intake_options *opt, s2f_intake **out, s2f_error *err);

/* Stops the committer thread and closes everything. Call after every receiver stopped. */
void s2f_intake_free(s2f_intake *in);

/* 1 when no other process had the data folder open as this intake started: the start-up
 * sweeps may run (under the exclusive lock when opt->keep_exclusive). */
int s2f_intake_sole(const s2f_intake *in);

/* Turns an exclusive lock (keep_exclusive) into the shared one: other processes may open
 * the data folder from now on. Nothing when already shared. */
s2f_code s2f_intake_share(s2f_intake *in, s2f_error *err);

/* The data folder's store, for s2f_store_begin/write/seal/abort of received files. */
s2f_store *s2f_intake_store(s2f_intake *in);

/* Failure reasons (PS3.4 B.2.3 statuses, PS3.18 Annex I Failure Reason (0008,1197)). */
#define S2F_FR_OUT_OF_RESOURCES 0xA700u
#define S2F_FR_CANNOT_UNDERSTAND 0xC000u
#define S2F_FR_SOP_CLASS_NOT_SUPPORTED 0x0122u

#define S2F_INTAKE_UID_MAX 64

/* What s2f_intake_classify read of a received object ("" when absent or not a valid UID). */
typedef struct s2f_intake_header {
    char sop_class[S2F_INTAKE_UID_MAX + 1];
    char sop_instance[S2F_INTAKE_UID_MAX + 1];
    char study[S2F_INTAKE_UID_MAX + 1];
} s2f_intake_header;

/* Reads the object's header with the library's readers (Part 10 or bare data set when
 * json = 0, DICOM JSON when 1), with bounded memory, and decides: 0 when it may be queued
 * (an SR Storage SOP Class with valid SOP Class, SOP Instance and Study Instance UIDs),
 * else its failure reason (S2F_FR_*) with why in `why`. */
unsigned s2f_intake_classify(const uint8_t *data, size_t len, int json, s2f_intake_header *h,
                             char *why, size_t why_cap);

/* 1 for an SR Storage SOP Class UID (PS3.4 B.5: 1.2.840.10008.5.1.4.1.1.88.x). */
int s2f_intake_is_sr_class(const char *uid);

/* 1 for a valid UID of n characters: 1..64 of digits and dots. */
int s2f_intake_uid_valid(const char *p, size_t n);

/* NULL when the receivers may take more now; else why not (into buf): the queue is above
 * its high-water mark, cannot be read, or the disk is below its minimum. Cheap: the queue
 * depth is read at most once a second. */
const char *s2f_intake_busy(s2f_intake *in, char *buf, size_t cap);

/* One received file to commit. */
typedef struct s2f_intake_item {
    s2f_store_file *file;           /* sealed (s2f_store_seal), not yet committed */
    const char *sop_instance_uid;
    int64_t job_id;                 /* out: the new job, or the open job of the same UID */
    bool created;                   /* out: false when a job of the UID was still open: its
                                       file was removed, that job delivers the SR */
} s2f_intake_item;

/* Renames each file to its final name, has the committer fsync the folder and commit the
 * job rows (with those of other threads) and waits for it. S2F_OK: every item is durably
 * queued (created, or an open job of the same SOP Instance UID holds it). Otherwise
 * (S2F_EIO, S2F_ENOMEM, ...) nothing of this call is queued and every file was removed:
 * the receiver answers "out of resources" (A700). `source` (who sent it: AE title or
 * token name and address) is stored with the jobs. Wakes the workers when jobs were
 * created. */
s2f_code s2f_intake_commit(s2f_intake *in, s2f_intake_item *items, size_t n,
                           const char *source, s2f_error *err);

/* For /readyz: the queue takes writes and the disk has its minimum free space. */
s2f_code s2f_intake_check(s2f_intake *in, s2f_error *err);

/* Appends one line (it must end with '\n') to the audit log in one write(2), so lines of
 * threads never interleave; nothing when there is no audit log. */
void s2f_intake_audit(s2f_intake *in, const char *line, size_t len);

/* The service's log (may be NULL), for receivers that log through intake's. */
s2f_gw_log *s2f_intake_log(s2f_intake *in);

#endif
