/*
 * client.h - the FHIR REST client of delivery (stage 5): the server's version, searches by
 * identifier, transactions, and the text of OperationOutcomes. The public half
 * (s2f_client_new, s2f_client_version) is declared in sr2fhir.h.
 */
#ifndef S2F_CLIENT_H
#define S2F_CLIENT_H

#include <stdatomic.h>

#include "sr2fhir_send.h"

/* Base URL without a trailing '/', as given (never holds credentials: refused). */
const char *s2f_client_base(const s2f_client *c);
int s2f_client_require_existing(const s2f_client *c);
/* Most entries per transaction, 0 for no limit. */
size_t s2f_client_max_entries(const s2f_client *c);
const char *s2f_client_timezone(const s2f_client *c);
/* 1: each SR's Bundle carries its DiagnosticReport (issue 15). */
int s2f_client_diagnostic_report(const s2f_client *c);

/* s2f_client_version, recording the request's attempts and status in res (may be NULL). */
s2f_code s2f_client_settle_version(s2f_client *c, s2f_fhir_version *version, s2f_send_result *res,
                                   s2f_error *err);

/*
 * Searches `type?identifier=system|value` (system may be NULL). One match: *ref =
 * "Type/id" (malloc'd). None: *ref = NULL, or S2F_ELOOKUP when existing resources are
 * required. Several: S2F_ELOOKUP naming them. `what` describes the search for messages.
 */
s2f_code s2f_client_find(s2f_client *c, const char *type, const char *system, const char *value,
                         char **ref, s2f_send_result *res, s2f_error *err);

/* POSTs a transaction Bundle of `entries` entries and records the server's answer in res
 * (status, attempts, created and updated references). */
s2f_code s2f_client_transaction(s2f_client *c, const char *bundle, size_t len, size_t entries,
                                s2f_send_result *res, s2f_error *err);

/* Cancels the client's requests while *flag is non-zero (s2f_http_set_cancel). */
void s2f_client_set_cancel(s2f_client *c, const atomic_int *flag);

/* Starts the deadline of one SR's delivery (s2f_client_options.deadline): every request
 * until the next call ends by then, retries and waits included (issue 9 defect 10). */
void s2f_client_begin(s2f_client *c);

/* Readers of the server's answers (JSON text of any size or shape: they are fuzzed,
 * fuzz/fuzz_answer.c). */
s2f_code s2f_client_answer_version(const char *body, size_t len, s2f_fhir_version *version, s2f_error *err);
/* A searchset for `type`: see s2f_client_find; `what` names the search in messages. */
s2f_code s2f_client_answer_search(const char *body, size_t len, const char *type, const char *what,
                           int require_existing, char **ref, s2f_error *err);
/* A transaction-response to `entries` entries: appends created/updated references to res
 * (none on failure). Another number of entries, or an entry without a 2xx status, fails. */
s2f_code s2f_client_answer_transaction(const char *body, size_t len, size_t entries, s2f_send_result *res,
                                s2f_error *err);
/* One line from a failed answer: its OperationOutcome's issues, else the body's start. */
void s2f_client_answer_text(const char *body, size_t len, char *buf, size_t cap);

#endif
