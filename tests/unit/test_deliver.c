/*
 * test_deliver.c - unit tests of delivery (src/deliver): the URL policy, the FHIR version
 * from /metadata (M25), retries and backoff (429/5xx/Retry-After, no retry on other 4xx),
 * searches by identifier (M4-M6), transaction answers, credentials on the wire, the audit
 * line. A scripted HTTP server runs in a thread on 127.0.0.1 (one answer per connection).
 */
#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "deliver/client.h"
#include "util/escape.h"
#include "sr2fhir.h"

/* ---- the scripted server --------------------------------------------------------------------- */

#define MAX_REQ 16

typedef struct mock {
    int fd, port;
    pthread_t thread;
    const char *const *answers;   /* bodies of full HTTP answers; the last repeats */
    size_t n_answers, served;
    char requests[MAX_REQ][8192]; /* what arrived (head and start of body) */
} mock;

static void read_request(int c, char *buf, size_t cap)
{
    size_t n = 0;
    long want = -1;
    while (n + 1 < cap) {
        ssize_t r = read(c, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end && want < 0) {
            const char *cl = strstr(buf, "Content-Length: ");
            want = (long)(end + 4 - buf) + (cl ? strtol(cl + 16, NULL, 10) : 0);
        }
        if (want >= 0 && (long)n >= want)
            break;
    }
    buf[n] = '\0';
}

static void *serve(void *arg)
{
    mock *m = arg;
    for (;;) {
        int c = accept(m->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char *req = m->requests[m->served < MAX_REQ ? m->served : MAX_REQ - 1];
        read_request(c, req, sizeof m->requests[0]);
        const char *a = m->answers[m->served < m->n_answers ? m->served : m->n_answers - 1];
        m->served++;
        if (write(c, a, strlen(a)) < 0)
            break;
        close(c);
    }
    return NULL;
}

static int mock_start(mock *m, const char *const *answers, size_t n)
{
    memset(m, 0, sizeof *m);
    m->answers = answers;
    m->n_answers = n;
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof sa;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((m->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(m->fd, (void *)&sa, sizeof sa) ||
        listen(m->fd, 8) || getsockname(m->fd, (void *)&sa, &len))
        return 0;
    m->port = ntohs(sa.sin_port);
    return pthread_create(&m->thread, NULL, serve, m) == 0;
}

static void mock_stop(mock *m)
{
    shutdown(m->fd, SHUT_RDWR);
    close(m->fd);
    pthread_join(m->thread, NULL);
}

#define JSON_HEAD(status) "HTTP/1.1 " status "\r\nContent-Type: application/fhir+json\r\nConnection: close\r\n"
#define ANSWER(status, body) JSON_HEAD(status) "\r\n" body
#define CAPS(v) ANSWER("200 OK", "{\"resourceType\":\"CapabilityStatement\",\"fhirVersion\":\"" v "\"}")
#define SEARCHSET(entries) ANSWER("200 OK", "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[" entries "]}")
#define OUTCOME(text) "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"invalid\",\"diagnostics\":\"" text "\"}]}"

static s2f_client *client_for(const mock *m, s2f_client_options *opt, s2f_error *err)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/fhir/", m->port);
    return s2f_client_new(url, opt, err);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- URL policy -------------------------------------------------------------------------- */

static s2f_code new_code(const char *url, const s2f_client_options *opt)
{
    s2f_error err = {0};
    s2f_client *c = s2f_client_new(url, opt, &err);
    s2f_client_free(c);
    return c ? S2F_OK : err.code;
}

TEST(url_policy_https_default_http_loopback_only)
{
    s2f_client_options opt = {0};
    CHECK(new_code("https://fhir.example.org/r5", &opt) == S2F_OK);
    CHECK(new_code("http://127.0.0.1:8080/fhir", &opt) == S2F_OK);
    CHECK(new_code("http://localhost/fhir", &opt) == S2F_OK);
    CHECK(new_code("http://[::1]:8080/fhir", &opt) == S2F_OK);
    CHECK(new_code("http://fhir.example.org/r5", &opt) == S2F_EUSAGE);
    CHECK(new_code("http://127.example.org/r5", &opt) == S2F_EUSAGE); /* a name, not 127/8 */
    CHECK(new_code("http://127.1.2.3:8080/fhir", &opt) == S2F_OK);
    CHECK(new_code("ftp://fhir.example.org/r5", &opt) == S2F_EUSAGE);
    CHECK(new_code("https://user:secret@fhir.example.org/r5", &opt) == S2F_EUSAGE);
    CHECK(new_code("not a url", &opt) == S2F_EUSAGE);
    CHECK(new_code("", &opt) == S2F_EUSAGE);
    opt.allow_http = 1;
    CHECK(new_code("http://fhir.example.org/r5", &opt) == S2F_OK);
}

TEST(url_credentials_never_in_message)
{
    s2f_error err = {0};
    CHECK(!s2f_client_new("https://user:hunter2@fhir.example.org/", NULL, &err));
    CHECK(!strstr(err.message, "hunter2"));
}

/* ---- version (M25) ------------------------------------------------------------------------ */

static s2f_code version_from(const char *answer, s2f_fhir_version *v, s2f_error *err)
{
    const char *const answers[] = {answer};
    mock m;
    if (!mock_start(&m, answers, 1))
        return S2F_EINTERNAL;
    s2f_client_options opt = {.retries = -1};
    s2f_client *c = client_for(&m, &opt, err);
    s2f_code rc = c ? s2f_client_version(c, v, err) : err->code;
    s2f_client_free(c);
    mock_stop(&m);
    if (!strstr(m.requests[0], "GET /fhir/metadata HTTP/1.1"))
        return S2F_EINTERNAL;
    return rc;
}

TEST(m25_version_from_capability_statement)
{
    s2f_fhir_version v = S2F_FHIR_AUTO;
    s2f_error err = {0};
    CHECK(version_from(CAPS("5.0.0"), &v, &err) == S2F_OK && v == S2F_FHIR_R5);
    CHECK(version_from(CAPS("4.0.1"), &v, &err) == S2F_OK && v == S2F_FHIR_R4);
    CHECK(version_from(CAPS("4.3.0"), &v, &err) == S2F_OK && v == S2F_FHIR_R4);
    CHECK(version_from(CAPS("3.0.2"), &v, &err) == S2F_EUNSUPPORTED);
    CHECK(strstr(err.message, "3.0.2"));
    CHECK(version_from(ANSWER("200 OK", "<html>hello</html>"), &v, &err) == S2F_EREJECTED);
}

TEST(m25_version_option_asks_nothing)
{
    s2f_client_options opt = {.version = S2F_FHIR_R4};
    s2f_error err = {0};
    s2f_client *c = s2f_client_new("http://127.0.0.1:1/fhir", &opt, &err); /* nothing listens */
    s2f_fhir_version v = S2F_FHIR_AUTO;
    CHECK(c && s2f_client_version(c, &v, &err) == S2F_OK && v == S2F_FHIR_R4);
    s2f_client_free(c);
}

/* ---- retries -------------------------------------------------------------------------------- */

/* Asks /metadata through a script; returns the code, attempts and seconds taken. */
static s2f_code ask_through(const char *const *answers, size_t n, int retries, s2f_send_result *res,
                            double *seconds, s2f_error *err, mock *m)
{
    if (!mock_start(m, answers, n))
        return S2F_EINTERNAL;
    s2f_client_options opt = {.retries = retries, .retry_delay_ms = 5};
    s2f_client *c = client_for(m, &opt, err);
    s2f_fhir_version v;
    double t0 = now_s();
    s2f_code rc = c ? s2f_client_settle_version(c, &v, res, err) : err->code;
    *seconds = now_s() - t0;
    s2f_client_free(c);
    mock_stop(m);
    return rc;
}

TEST(retry_on_503_then_success)
{
    const char *const a[] = {ANSWER("503 Service Unavailable", ""), CAPS("5.0.0")};
    s2f_send_result res = {0};
    s2f_error err = {0};
    double s;
    mock m;
    CHECK(ask_through(a, 2, 3, &res, &s, &err, &m) == S2F_OK);
    CHECK(res.attempts == 2 && m.served == 2 && res.http_status == 200);
}

TEST(retry_after_is_honoured)
{
    const char *const a[] = {JSON_HEAD("429 Too Many Requests") "Retry-After: 1\r\n\r\n", CAPS("5.0.0")};
    s2f_send_result res = {0};
    s2f_error err = {0};
    double s;
    mock m;
    CHECK(ask_through(a, 2, 3, &res, &s, &err, &m) == S2F_OK);
    CHECK(res.attempts == 2);
    CHECK(s >= 0.9); /* the 5 ms backoff would have been far shorter */
}

TEST(no_retry_on_400_and_outcome_shown)
{
    const char *const a[] = {ANSWER("400 Bad Request", OUTCOME("unknown parameter _foo")), CAPS("5.0.0")};
    s2f_send_result res = {0};
    s2f_error err = {0};
    double s;
    mock m;
    CHECK(ask_through(a, 2, 3, &res, &s, &err, &m) == S2F_EREJECTED);
    CHECK(res.attempts == 1 && m.served == 1 && res.http_status == 400);
    CHECK(strstr(err.message, "HTTP 400") && strstr(err.message, "unknown parameter _foo"));
}

TEST(gives_up_after_retries_on_500)
{
    const char *const a[] = {ANSWER("500 Internal Server Error", OUTCOME("database down"))};
    s2f_send_result res = {0};
    s2f_error err = {0};
    double s;
    mock m;
    CHECK(ask_through(a, 1, 2, &res, &s, &err, &m) == S2F_EUNREACHABLE);
    CHECK(res.attempts == 3 && m.served == 3);
    CHECK(strstr(err.message, "HTTP 500") && strstr(err.message, "database down") &&
          strstr(err.message, "3 attempts"));
}

TEST(connection_refused_is_unreachable)
{
    s2f_client_options opt = {.retries = 1, .retry_delay_ms = 1};
    s2f_error err = {0};
    s2f_send_result res = {0};
    s2f_client *c = s2f_client_new("http://127.0.0.1:1/fhir", &opt, &err);
    s2f_fhir_version v;
    CHECK(c);
    s2f_code rc = s2f_client_settle_version(c, &v, &res, &err);
    s2f_client_free(c);
    CHECK(rc == S2F_EUNREACHABLE && res.attempts == 2 && res.http_status == 0);
    CHECK(strstr(err.message, "cannot reach http://127.0.0.1:1/fhir"));
}

/* ---- searches (M4-M6) ----------------------------------------------------------------------- */

static s2f_code find_through(const char *answer, int require, const char *system, const char *value,
                             char **ref, s2f_error *err, mock *m)
{
    const char *const a[] = {answer};
    if (!mock_start(m, a, 1))
        return S2F_EINTERNAL;
    s2f_client_options opt = {.retries = -1, .require_existing = require};
    s2f_client *c = client_for(m, &opt, err);
    s2f_send_result res = {0};
    s2f_code rc = c ? s2f_client_find(c, "Patient", system, value, ref, &res, err) : err->code;
    s2f_client_free(c);
    mock_stop(m);
    return rc;
}

#define PATIENT(id) "{\"search\":{\"mode\":\"match\"},\"resource\":{\"resourceType\":\"Patient\",\"id\":\"" id "\"}}"

TEST(m4_one_match_gives_literal_reference)
{
    char *ref = NULL;
    s2f_error err = {0};
    mock m;
    CHECK(find_through(SEARCHSET(PATIENT("p1") ",{\"search\":{\"mode\":\"include\"},\"resource\":"
                                 "{\"resourceType\":\"Organization\",\"id\":\"o\"}}"),
                       0, "urn:oid:1.2.3", "PID|7", &ref, &err, &m) == S2F_OK);
    CHECK_STR(ref, "Patient/p1");
    free(ref);
    /* system|value, with FHIR's escape of '|' inside the value, URL-encoded, two asked */
    CHECK(strstr(m.requests[0], "GET /fhir/Patient?identifier=urn%3Aoid%3A1.2.3%7CPID%5C%7C7&_count=2 "));
}

TEST(m4_no_system_searches_value_alone)
{
    char *ref = (char *)"x";
    s2f_error err = {0};
    mock m;
    CHECK(find_through(SEARCHSET(""), 0, NULL, "12345", &ref, &err, &m) == S2F_OK);
    CHECK(ref == NULL); /* none: the logical reference stays */
    CHECK(strstr(m.requests[0], "GET /fhir/Patient?identifier=12345&_count=2 "));
}

TEST(m4_none_with_require_existing_fails)
{
    char *ref = NULL;
    s2f_error err = {0};
    mock m;
    CHECK(find_through(SEARCHSET(""), 1, "urn:x", "12345", &ref, &err, &m) == S2F_ELOOKUP);
    CHECK(ref == NULL && strstr(err.message, "--require-existing") && strstr(err.message, "urn:x|12345"));
}

TEST(m4_two_matches_fail_naming_both)
{
    char *ref = NULL;
    s2f_error err = {0};
    mock m;
    CHECK(find_through(SEARCHSET(PATIENT("a") "," PATIENT("b")), 0, NULL, "7", &ref, &err, &m) ==
          S2F_ELOOKUP);
    CHECK(ref == NULL && strstr(err.message, "Patient/a, Patient/b"));
}

/* ---- transactions (M24) ------------------------------------------------------------------- */

#define ENTRY(status, loc) "{\"response\":{\"status\":\"" status "\",\"location\":\"" loc "\"}}"
#define TX_ANSWER(entries) ANSWER("200 OK", "{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\",\"entry\":[" entries "]}")

static s2f_code transact(const char *answer, size_t entries, s2f_send_result *res, s2f_error *err,
                         mock *m)
{
    const char *const a[] = {answer};
    if (!mock_start(m, a, 1))
        return S2F_EINTERNAL;
    s2f_client_options opt = {.retries = -1, .bearer_token = "tok-3f9a"};
    s2f_client *c = client_for(m, &opt, err);
    static const char bundle[] = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\"}";
    s2f_code rc = c ? s2f_client_transaction(c, bundle, sizeof bundle - 1, entries, res, err) : err->code;
    s2f_client_free(c);
    mock_stop(m);
    return rc;
}

TEST(m24_transaction_answer_lists_created_and_updated)
{
    s2f_send_result res = {0};
    s2f_error err = {0};
    mock m;
    CHECK(transact(TX_ANSWER(ENTRY("201 Created", "Observation/o1/_history/1") ","
                             ENTRY("200 OK", "http://h/fhir/Device/d1/_history/3") ","
                             ENTRY("200", "BodyStructure/b1")), 3,
                   &res, &err, &m) == S2F_OK);
    CHECK(res.n_created == 1 && res.n_updated == 2);
    CHECK_STR(res.created[0], "Observation/o1");
    CHECK_STR(res.updated[0], "Device/d1");
    CHECK_STR(res.updated[1], "BodyStructure/b1");
    CHECK(strstr(m.requests[0], "POST /fhir HTTP/1.1"));
    CHECK(strstr(m.requests[0], "Content-Type: application/fhir+json"));
    CHECK(strstr(m.requests[0], "Authorization: Bearer tok-3f9a"));
    CHECK(strstr(m.requests[0], "\"type\":\"transaction\""));
    s2f_send_result_free(&res);
}

TEST(m24_rejected_transaction_shows_outcome)
{
    s2f_send_result res = {0};
    s2f_error err = {0};
    mock m;
    CHECK(transact(ANSWER("422 Unprocessable Entity", OUTCOME("Observation.status: missing")), 1, &res,
                   &err, &m) == S2F_EREJECTED);
    CHECK(res.http_status == 422 && res.attempts == 1 && res.n_created + res.n_updated == 0);
    CHECK(strstr(err.message, "HTTP 422") && strstr(err.message, "Observation.status: missing"));
    CHECK(!strstr(err.message, "tok-3f9a"));
    s2f_send_result_free(&res);
}

TEST(m24_answer_that_is_not_a_transaction_response_fails)
{
    s2f_send_result res = {0};
    s2f_error err = {0};
    mock m;
    CHECK(transact(ANSWER("200 OK", "{\"resourceType\":\"Bundle\",\"type\":\"batch-response\"}"), 1, &res,
                   &err, &m) == S2F_EREJECTED);
    s2f_send_result_free(&res);
    CHECK(transact(TX_ANSWER(ENTRY("200 OK", "Device/d1") "," ENTRY("400 Bad Request", "")), 2, &res, &err,
                   &m) == S2F_EREJECTED);
    CHECK(strstr(err.message, "entry 2"));
    CHECK(res.n_created + res.n_updated == 0); /* all or nothing: Device/d1 is not claimed */
    s2f_send_result_free(&res);
}

/* ---- hostile answers (issue 9 #6, #8): the readers alone, no server --------------------- */

TEST(issue9_6_dense_metadata_refused_before_parsing)
{
    size_t n = 600000, len = 3 * n + 1;
    char *body = malloc(len + 1);
    CHECK(body);
    body[0] = '[';
    for (size_t i = 0; i < n; i++)
        memcpy(body + 1 + 3 * i, "{},", 3);
    body[len - 1] = ']';
    body[len] = '\0';
    s2f_fhir_version v = S2F_FHIR_AUTO;
    s2f_error err = {0};
    s2f_code rc = s2f_client_answer_version(body, len, &v, &err);
    free(body);
    CHECK(rc == S2F_ELIMIT && strstr(err.message, "MiB accepted"));
}

TEST(issue9_8_fhir_version_escaped)
{
    static const char caps[] = "{\"resourceType\":\"CapabilityStatement\",\"fhirVersion\":"
                               "\"\\u001b[31m9\\n\\u009b\"}";
    s2f_fhir_version v = S2F_FHIR_AUTO;
    s2f_error err = {0};
    CHECK(s2f_client_answer_version(caps, sizeof caps - 1, &v, &err) == S2F_EUNSUPPORTED);
    CHECK(strstr(err.message, "\\x1B[31m9\\x0A\\u009B"));
    for (const char *p = err.message; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && *p != 0x7f && !((unsigned char)p[0] == 0xC2 && (unsigned char)p[1] < 0xA0));
}

TEST(issue9_6_search_id_must_be_a_fhir_id)
{
    static const char *const ids[] = {"../../Observation/x", "1?_method=DELETE", "http:\\/\\/evil/P/1", ""};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char body[512], *ref = NULL;
        snprintf(body, sizeof body, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":"
                 "[{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"%s\"}}]}", ids[i]);
        s2f_error err = {0};
        CHECK(s2f_client_answer_search(body, strlen(body), "Patient", "Patient x", 0, &ref, &err) == S2F_EREJECTED);
        CHECK(ref == NULL && strstr(err.message, "not a FHIR id"));
    }
    char *ref = NULL;
    s2f_error err = {0};
    static const char ok[] = "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":"
                             "\"Patient\",\"id\":\"A-z.09\"}}]}";
    CHECK(s2f_client_answer_search(ok, sizeof ok - 1, "Patient", "Patient x", 0, &ref, &err) == S2F_OK);
    CHECK_STR(ref, "Patient/A-z.09");
    free(ref);
}

TEST(issue9_6_transaction_response_must_answer_every_entry)
{
    static const char one[] = "{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\",\"entry\":["
                              ENTRY("201 Created", "Observation/o1/_history/1") "]}";
    static const char none[] = "{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\"}";
    static const char bad_loc[] = "{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\",\"entry\":["
                                  ENTRY("201 Created", "Patient/1?_method=DELETE") "]}";
    s2f_send_result res = {0};
    s2f_error err = {0};
    CHECK(s2f_client_answer_transaction(one, sizeof one - 1, 1, &res, &err) == S2F_OK && res.n_created == 1);
    s2f_send_result_free(&res);
    CHECK(s2f_client_answer_transaction(one, sizeof one - 1, 2, &res, &err) == S2F_EREJECTED);
    CHECK(strstr(err.message, "1 entry for the 2 sent") && res.n_created == 0);
    CHECK(s2f_client_answer_transaction(none, sizeof none - 1, 5, &res, &err) == S2F_EREJECTED);
    CHECK(s2f_client_answer_transaction(bad_loc, sizeof bad_loc - 1, 1, &res, &err) == S2F_EREJECTED);
    CHECK(strstr(err.message, "not a Type/id") && res.n_created == 0);
    s2f_send_result_free(&res);
}

TEST(issue9_8_escape_text)
{
    char buf[64];
    CHECK_STR(s2f_escape_text("a\x1b[1m\n\\\xc2\x9b\xc3\xa9", 11, buf, sizeof buf),
              "a\\x1B[1m\\x0A\\\\\\u009B\xc3\xa9");
    CHECK_STR(s2f_escape_text("abcdefghij", 10, buf, 8), "abcd...");
    CHECK_STR(s2f_escape_text("abc\xc3\xa9\xc3\xa9", 7, buf, 7), "abc...");
}

/* Issue 9 #10: a Retry-After beyond the deadline is not waited for (1 request, the deadline
 * named); the count of requests is asserted, not the time. */
TEST(issue9_10_retry_after_beyond_deadline_fails_at_once)
{
    const char *const answers[] = {"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 999999\r\n"
                                   "Content-Type: application/fhir+json\r\nConnection: close\r\n\r\n"
                                   OUTCOME("busy")};
    mock m;
    CHECK(mock_start(&m, answers, 1));
    s2f_client_options opt = {.retries = 20, .deadline = 30};
    s2f_error err = {0};
    s2f_fhir_version v;
    s2f_client *c = client_for(&m, &opt, &err);
    s2f_code rc = c ? s2f_client_version(c, &v, &err) : err.code;
    s2f_client_free(c);
    mock_stop(&m);
    CHECK(rc == S2F_EUNREACHABLE);
    CHECK(m.served == 1);
    CHECK(strstr(err.message, "retry after 999999 s") && strstr(err.message, "deadline of 30 s"));
}

TEST(basic_credentials_on_the_wire)
{
    const char *const a[] = {CAPS("5.0.0")};
    mock m;
    CHECK(mock_start(&m, a, 1));
    s2f_client_options opt = {.retries = -1, .user = "u", .password = "p"};
    s2f_error err = {0};
    s2f_client *c = client_for(&m, &opt, &err);
    s2f_fhir_version v;
    CHECK(c && s2f_client_version(c, &v, &err) == S2F_OK);
    s2f_client_free(c);
    mock_stop(&m);
    CHECK(strstr(m.requests[0], "Authorization: Basic dTpw")); /* base64("u:p") */
}

/* ---- audit ---------------------------------------------------------------------------------- */

static json_object *audit_line(const s2f_send_result *res, s2f_code rc, const char *message)
{
    int fds[2];
    if (pipe(fds))
        return NULL;
    s2f_error err = {.code = rc}, werr = {0};
    snprintf(err.message, sizeof err.message, "%s", message ? message : "");
    s2f_code w = s2f_audit_append(fds[1], "in/a.dcm", NULL, NULL, res, rc, &err, &werr);
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    if (w || n <= 0 || buf[n - 1] != '\n' || memchr(buf, '\n', (size_t)n - 1))
        return NULL; /* exactly one line */
    buf[n] = '\0';
    return json_tokener_parse(buf);
}

static const char *field(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "(absent)";
}

TEST(audit_line_delivered_and_failed)
{
    char *created[] = {(char *)"Observation/o1"};
    s2f_send_result res = {.version = S2F_FHIR_R5, .http_status = 200, .attempts = 2, .seconds = 0.25,
                           .patient_ref = (char *)"Patient/9", .created = created, .n_created = 1};
    json_object *o = audit_line(&res, S2F_OK, NULL);
    CHECK(o);
    CHECK_STR(field(o, "outcome"), "delivered");
    CHECK_STR(field(o, "file"), "in/a.dcm");
    CHECK_STR(field(o, "fhir_version"), "R5");
    CHECK_STR(field(o, "http_status"), "200");
    CHECK_STR(field(o, "attempts"), "2");
    CHECK_STR(field(o, "duration_ms"), "250");
    CHECK_STR(field(o, "patient"), "Patient/9");
    CHECK_STR(field(o, "created"), "[ \"Observation\\/o1\" ]");
    CHECK(field(o, "error") == NULL); /* JSON null */
    CHECK(strlen(field(o, "time")) == 24 && field(o, "time")[23] == 'Z');
    json_object_put(o);
    s2f_send_result failed = {.version = S2F_FHIR_R5, .http_status = 422, .attempts = 1, .parts = 1};
    o = audit_line(&failed, S2F_EREJECTED, "refused by the server: HTTP 422");
    CHECK(o);
    CHECK_STR(field(o, "outcome"), "failed");
    CHECK_STR(field(o, "error"), "refused by the server: HTTP 422");
    CHECK_STR(field(o, "created"), "[ ]");
    CHECK_STR(field(o, "transactions"), "1");
    CHECK_STR(field(o, "transactions_stored"), "0");
    json_object_put(o);
}

int main(void)
{
    RUN(url_policy_https_default_http_loopback_only);
    RUN(url_credentials_never_in_message);
    RUN(m25_version_from_capability_statement);
    RUN(m25_version_option_asks_nothing);
    RUN(retry_on_503_then_success);
    RUN(retry_after_is_honoured);
    RUN(no_retry_on_400_and_outcome_shown);
    RUN(gives_up_after_retries_on_500);
    RUN(connection_refused_is_unreachable);
    RUN(m4_one_match_gives_literal_reference);
    RUN(m4_no_system_searches_value_alone);
    RUN(m4_none_with_require_existing_fails);
    RUN(m4_two_matches_fail_naming_both);
    RUN(m24_transaction_answer_lists_created_and_updated);
    RUN(m24_rejected_transaction_shows_outcome);
    RUN(m24_answer_that_is_not_a_transaction_response_fails);
    RUN(issue9_6_dense_metadata_refused_before_parsing);
    RUN(issue9_8_fhir_version_escaped);
    RUN(issue9_6_search_id_must_be_a_fhir_id);
    RUN(issue9_6_transaction_response_must_answer_every_entry);
    RUN(issue9_8_escape_text);
    RUN(issue9_10_retry_after_beyond_deadline_fails_at_once);
    RUN(basic_credentials_on_the_wire);
    RUN(audit_line_delivered_and_failed);
    CHECK_DONE();
}
