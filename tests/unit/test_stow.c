/*
 * test_stow.c - the STOW-RS receiver (src/gateway/stow.c, issue 11 Build #2) driven through
 * a real libmicrohttpd daemon on 127.0.0.1 (port 0, a minimal access handler calling
 * s2f_stow_handle) with libcurl as the sender: stored parts (Part 10 and DICOM JSON, an
 * object and an array of one), refusals per part (0122 not an SR, C000 garbage, A900 wrong
 * study), 200 / 202 / 409 with their PS3.18 Annex I bodies parsed and checked tag by tag,
 * 400 (no boundary, truncated), 405, 413, 415, 503, chunked bodies, duplicates (one job),
 * the files in DIR/incoming and the job rows, the audit lines, and 8 concurrent senders.
 * The SRs are built here (minimal Explicit VR Little Endian Part 10 files).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "check.h"
#include "gateway/queue.h"
#include "gateway/stow.h"
#include "part10_build.h"

#define SR_CLASS "1.2.840.10008.5.1.4.1.1.88.33"
#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define STUDY "1.2.826.0.1.3680043.8.498.1"
#define BOUNDARY "XbOuNdArY42"

/* ---- building bodies ------------------------------------------------------------------ */

static buf dicom_json(const char *sop_instance, const char *study, int array)
{
    char text[1024];
    snprintf(text, sizeof text,
             "%s{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"" SR_CLASS "\"]},"
             "\"00080018\":{\"vr\":\"UI\",\"Value\":[\"%s\"]},"
             "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"%s\"]}}%s",
             array ? "[" : "", sop_instance, study, array ? "]" : "");
    buf b = {0};
    puts_(&b, text);
    return b;
}

/* Appends one part (and frees its bytes). */
static void add_part(buf *body, const char *type, buf part)
{
    puts_(body, "--" BOUNDARY "\r\nContent-Type: ");
    puts_(body, type);
    puts_(body, "\r\n\r\n");
    put(body, part.p, part.n);
    puts_(body, "\r\n");
    free(part.p);
}

static void close_body(buf *body)
{
    puts_(body, "--" BOUNDARY "--\r\n");
}

/* ---- the service under test ------------------------------------------------------------ */

typedef struct service {
    char dir[64], queue[128], audit[128];
    int audit_fd;
    s2f_gw_metrics metrics;
    s2f_gw_log log;
    s2f_intake *intake;
    s2f_stow *stow;
    struct MHD_Daemon *d;
    unsigned port;
    atomic_int wakes;
} service;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls)
{
    (void)version;
    service *sv = cls;
    return s2f_stow_handle(sv->stow, c, url, method, upload_data, upload_data_size, req_cls,
                           "tester", "127.0.0.1");
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    service *sv = cls;
    s2f_stow_completed(sv->stow, req_cls);
}

static void woke(void *ctx)
{
    atomic_fetch_add(&((service *)ctx)->wakes, 1);
}

typedef struct limits {
    long long high_water;
    unsigned long long min_free, max_body, max_part;
} limits;

static service *start(const limits *lim)
{
    service *sv = calloc(1, sizeof *sv);
    snprintf(sv->dir, sizeof sv->dir, "/tmp/s2f-stow-XXXXXX");
    if (!mkdtemp(sv->dir))
        return NULL;
    snprintf(sv->queue, sizeof sv->queue, "%s/queue.sqlite", sv->dir);
    snprintf(sv->audit, sizeof sv->audit, "%s/audit.jsonl", sv->dir);
    /* S2F_TEST_LOG=1 shows the receiver's log lines on stderr */
    s2f_gw_log_init(&sv->log, getenv("S2F_TEST_LOG") ? stderr : NULL, S2F_LOG_DEBUG);
    sv->audit_fd = open(sv->audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    s2f_intake_options iopt = {
        .data_dir = sv->dir,
        .queue_path = sv->queue,
        .high_water = lim && lim->high_water ? lim->high_water : 100000,
        .min_free_bytes = lim ? lim->min_free : 0,
        .audit_fd = sv->audit_fd,
        .metrics = &sv->metrics,
        .log = &sv->log,
        .on_enqueued = woke,
        .on_enqueued_ctx = sv,
    };
    if (lim && lim->high_water < 0)
        iopt.high_water = 0;
    s2f_error err = {0};
    if (s2f_intake_new(&iopt, &sv->intake, &err) != S2F_OK) {
        fprintf(stderr, "intake: %s\n", err.message);
        return NULL;
    }
    s2f_stow_options opt = {
        .intake = sv->intake,
        .max_body = lim && lim->max_body ? lim->max_body : 64 << 20,
        .max_part = lim && lim->max_part ? lim->max_part : 32 << 20,
        .metrics = &sv->metrics,
        .log = &sv->log,
    };
    if (s2f_stow_new(&opt, &sv->stow, &err) != S2F_OK) {
        fprintf(stderr, "stow: %s\n", err.message);
        return NULL;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(0x7F000001);
    sv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                             handler, sv, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_NOTIFY_COMPLETED,
                             completed, sv, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!sv->d)
        return NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
    sv->port = info ? info->port : 0;
    return sv;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            struct stat sb;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
                remove_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static void stop(service *sv)
{
    if (!sv)
        return;
    if (sv->d)
        MHD_stop_daemon(sv->d);
    s2f_stow_free(sv->stow);
    s2f_intake_free(sv->intake);
    if (sv->audit_fd >= 0)
        close(sv->audit_fd);
    s2f_gw_log_destroy(&sv->log);
    remove_tree(sv->dir);
    free(sv);
}

/* ---- the sender ------------------------------------------------------------------------ */

typedef struct reply {
    long status;
    buf body;
    char retry_after[32];
    char content_type[128];
} reply;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    put(&((reply *)ctx)->body, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
    reply *r = ctx;
    size_t len = size * n;
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), p);
    line[strcspn(line, "\r\n")] = 0;
    if (!strncasecmp(line, "Retry-After: ", 13))
        snprintf(r->retry_after, sizeof r->retry_after, "%.31s", line + 13);
    if (!strncasecmp(line, "Content-Type: ", 14))
        snprintf(r->content_type, sizeof r->content_type, "%.127s", line + 14);
    return len;
}

typedef struct upload {
    const buf *b;
    size_t off;
} upload;

static size_t on_read(char *dst, size_t size, size_t n, void *ctx)
{
    upload *u = ctx;
    size_t left = u->b->n - u->off, max = size * n;
    if (max > 7) /* small pieces: the receiver must handle parts split anywhere */
        max = 7 + (u->off % 1000);
    size_t k = left < max ? left : max;
    memcpy(dst, u->b->p + u->off, k);
    u->off += k;
    return k;
}

/* POSTs body to path with the Content-Type (NULL: none); chunked when asked. */
static reply send_req(const service *sv, const char *method, const char *path,
                      const char *content_type, const buf *body, int chunked)
{
    reply r = {0};
    CURL *h = curl_easy_init();
    char url[256], ct[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", sv->port, path);
    struct curl_slist *hdrs = NULL;
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ct);
    } else {
        hdrs = curl_slist_append(hdrs, "Content-Type:");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    upload u = {body, 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        if (chunked) {
            hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, &u);
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body->p : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body->n : 0));
        }
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    else
        r.status = -1;
    put(&r.body, "", 1);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return r;
}

static const char mp_dicom[] = "multipart/related; type=\"application/dicom\"; boundary=" BOUNDARY;
static const char mp_json[] =
    "multipart/related; type=\"application/dicom+json\"; boundary=" BOUNDARY;

/* ---- checking answers ------------------------------------------------------------------ */

/* Items of sequence `tag` in a DICOM JSON answer; NULL when absent. */
static json_object *seq_items(json_object *root, const char *tag)
{
    json_object *el, *vr, *value;
    if (!json_object_object_get_ex(root, tag, &el) || !json_object_object_get_ex(el, "vr", &vr) ||
        strcmp(json_object_get_string(vr), "SQ") != 0 ||
        !json_object_object_get_ex(el, "Value", &value) ||
        !json_object_is_type(value, json_type_array))
        return NULL;
    return value;
}

/* The single value of a UI / US element of an item as text ("" when absent or not one). */
static const char *item_value(json_object *item, const char *tag, const char *want_vr)
{
    static _Thread_local char out[80];
    json_object *el, *vr, *value;
    out[0] = 0;
    if (!json_object_object_get_ex(item, tag, &el) || !json_object_object_get_ex(el, "vr", &vr) ||
        strcmp(json_object_get_string(vr), want_vr) != 0 ||
        !json_object_object_get_ex(el, "Value", &value) ||
        json_object_array_length(value) != 1)
        return out;
    snprintf(out, sizeof out, "%s", json_object_get_string(json_object_array_get_idx(value, 0)));
    return out;
}

/* Finds the Failed SOP Sequence item of SOP Instance `uid` (or the first without one when
 * uid is NULL) and returns its Failure Reason, -1 when none. */
static long failure_of(json_object *failed, const char *uid)
{
    for (size_t i = 0; failed && i < json_object_array_length(failed); i++) {
        json_object *it = json_object_array_get_idx(failed, i);
        const char *inst = item_value(it, "00081155", "UI");
        if ((uid && strcmp(inst, uid) == 0) || (!uid && !*inst))
            return atol(item_value(it, "00081197", "US"));
    }
    return -1;
}

/* 1 when the Referenced SOP Sequence holds exactly these instances (class SR_CLASS). */
static int referenced_are(json_object *ref, const char *const *uids, size_t n)
{
    if (!ref || json_object_array_length(ref) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t k = 0; k < n; k++) {
            json_object *it = json_object_array_get_idx(ref, k);
            if (strcmp(item_value(it, "00081155", "UI"), uids[i]) == 0 &&
                strcmp(item_value(it, "00081150", "UI"), SR_CLASS) == 0)
                found = 1;
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* Files in DIR/incoming (temporary ones counted apart). */
static int incoming_files(const service *sv, int *tmp)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/incoming", sv->dir);
    DIR *d = opendir(p);
    int n = 0;
    if (tmp)
        *tmp = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (!strncmp(e->d_name, "tmp-", 4)) {
            if (tmp)
                (*tmp)++;
        } else {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Jobs per state, read through a handle of our own. */
static s2f_queue_stats job_stats(const service *sv)
{
    s2f_queue_stats st = {{0}};
    s2f_queue *q = NULL;
    s2f_error err = {0};
    if (s2f_queue_open(sv->queue, NULL, &q, &err) == S2F_OK)
        s2f_queue_stats_get(q, &st, &err);
    s2f_queue_close(q);
    return st;
}

typedef struct job_seen {
    int n;
    char uid[8][65];
    char path[8][1024];
} job_seen;

static int each_job(void *ctx, const s2f_job_info *info)
{
    job_seen *js = ctx;
    if (js->n < 8) {
        snprintf(js->uid[js->n], sizeof js->uid[0], "%s", info->sop_instance_uid);
        snprintf(js->path[js->n], sizeof js->path[0], "%s", info->path);
    }
    js->n++;
    return 0;
}

static job_seen jobs(const service *sv)
{
    job_seen js = {0};
    s2f_queue *q = NULL;
    s2f_error err = {0};
    s2f_queue_filter f = {S2F_JOB_NSTATES, 0, 100};
    if (s2f_queue_open(sv->queue, NULL, &q, &err) == S2F_OK)
        s2f_queue_list(q, &f, each_job, &js, &err);
    s2f_queue_close(q);
    return js;
}

static int file_equals(const char *path, const buf *want)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char *got = malloc(want->n + 1);
    size_t n = fread(got, 1, want->n + 1, f);
    fclose(f);
    int same = n == want->n && memcmp(got, want->p, n) == 0;
    free(got);
    return same;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* Two SRs, Part 10 and DICOM JSON (in an application/dicom request, by their part types):
 * 200, both referenced, their exact bytes in DIR/incoming and a pending job each. */
TEST(stow_all_stored_200)
{
    service *sv = start(NULL);
    CHECK(sv && sv->port);
    buf body = {0}, p10 = part10(SR_CLASS, "1.2.3.4.1", STUDY);
    buf keep = {0};
    put(&keep, p10.p, p10.n);
    add_part(&body, "application/dicom", p10);
    add_part(&body, "application/dicom+json", dicom_json("1.2.3.4.2", STUDY, 0));
    close_body(&body);
    reply r = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    json_object *root = json_tokener_parse(r.body.p);
    const char *uids[] = {"1.2.3.4.1", "1.2.3.4.2"};
    int files = incoming_files(sv, NULL);
    s2f_queue_stats st = job_stats(sv);
    job_seen js = jobs(sv);
    int stored_bytes = 0;
    for (int i = 0; i < js.n && i < 8; i++)
        if (!strcmp(js.uid[i], "1.2.3.4.1"))
            stored_bytes = file_equals(js.path[i], &keep);
    long stored = atomic_load(&sv->metrics.stored), wakes = atomic_load(&sv->wakes);
    stop(sv);
    free(body.p);
    free(keep.p);
    free(r.body.p);
    CHECK(r.status == 200);
    CHECK_STR(r.content_type, "application/dicom+json");
    CHECK(root);
    CHECK(referenced_are(seq_items(root, "00081199"), uids, 2));
    CHECK(!seq_items(root, "00081198"));
    json_object_put(root);
    CHECK(files == 2);
    CHECK(st.count[S2F_JOB_PENDING] == 2);
    CHECK(js.n == 2 && stored_bytes);
    CHECK(stored == 2 && wakes >= 1);
}

/* A mixed request to /studies/{STUDY}: an SR, a CT image (0122), garbage (C000), an SR of
 * another study (A900): 202 with both sequences, each item's tags and values exact; only
 * the SR's file stays; one audit line per part. */
TEST(stow_mixed_202)
{
    service *sv = start(NULL);
    CHECK(sv && sv->port);
    buf body = {0}, garbage = {0};
    puts_(&garbage, "this is not DICOM at all, just text of some length ..............");
    add_part(&body, "application/dicom", part10(SR_CLASS, "1.2.3.5.1", STUDY));
    add_part(&body, "application/dicom", part10(CT_CLASS, "1.2.3.5.2", STUDY));
    add_part(&body, "application/dicom", garbage);
    add_part(&body, "application/dicom", part10(SR_CLASS, "1.2.3.5.4", "1.2.3.999"));
    close_body(&body);
    reply r = send_req(sv, "POST", "/dicom-web/studies/" STUDY, mp_dicom, &body, 0);
    json_object *root = json_tokener_parse(r.body.p);
    int files = incoming_files(sv, NULL);
    s2f_queue_stats st = job_stats(sv);
    /* the audit lines */
    char audit[8192] = {0};
    int fd = open(sv->audit, O_RDONLY);
    ssize_t an = fd >= 0 ? read(fd, audit, sizeof audit - 1) : -1;
    if (fd >= 0)
        close(fd);
    long refused = atomic_load(&sv->metrics.refused), received = atomic_load(&sv->metrics.received);
    stop(sv);
    free(body.p);
    free(r.body.p);
    CHECK(r.status == 202);
    CHECK(root);
    const char *ok[] = {"1.2.3.5.1"};
    CHECK(referenced_are(seq_items(root, "00081199"), ok, 1));
    json_object *failed = seq_items(root, "00081198");
    CHECK(failed && json_object_array_length(failed) == 3);
    CHECK(failure_of(failed, "1.2.3.5.2") == 0x0122);
    CHECK(failure_of(failed, NULL) == 0xC000);
    CHECK(failure_of(failed, "1.2.3.5.4") == 0xA900);
    /* the refused CT keeps its class in the item */
    for (size_t i = 0; i < json_object_array_length(failed); i++) {
        json_object *it = json_object_array_get_idx(failed, i);
        if (!strcmp(item_value(it, "00081155", "UI"), "1.2.3.5.2"))
            CHECK_STR(item_value(it, "00081150", "UI"), CT_CLASS);
    }
    json_object_put(root);
    CHECK(files == 1);
    CHECK(st.count[S2F_JOB_PENDING] == 1);
    CHECK(refused == 3 && received == 4);
    /* 4 lines, each a JSON object; the stored one names its job, the others their reason */
    CHECK(an > 0);
    int lines = 0, stored_line = 0, reasons = 0;
    for (char *save = NULL, *line = strtok_r(audit, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(line), *v;
        CHECK(o);
        lines++;
        CHECK(json_object_object_get_ex(o, "outcome", &v));
        const char *outcome = json_object_get_string(v);
        if (!strcmp(outcome, "stored")) {
            CHECK(json_object_object_get_ex(o, "job_id", &v) && json_object_get_int64(v) > 0);
            CHECK(json_object_object_get_ex(o, "sop_instance_uid", &v));
            CHECK_STR(json_object_get_string(v), "1.2.3.5.1");
            CHECK(json_object_object_get_ex(o, "who", &v));
            CHECK_STR(json_object_get_string(v), "tester");
            stored_line++;
        } else if (json_object_object_get_ex(o, "failure_reason", &v)) {
            const char *fr = json_object_get_string(v);
            reasons += !strcmp(fr, "0122") || !strcmp(fr, "C000") || !strcmp(fr, "A900");
        }
        json_object_put(o);
    }
    CHECK(lines == 4 && stored_line == 1 && reasons == 3);
}

/* Nothing stored: 409 with the Failed SOP Sequence only. */
TEST(stow_none_stored_409)
{
    service *sv = start(NULL);
    CHECK(sv && sv->port);
    buf body = {0};
    add_part(&body, "application/dicom", part10(CT_CLASS, "1.2.3.6.1", STUDY));
    close_body(&body);
    reply r = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    json_object *root = json_tokener_parse(r.body.p);
    int files = incoming_files(sv, NULL);
    stop(sv);
    free(body.p);
    free(r.body.p);
    CHECK(r.status == 409);
    CHECK(root && !seq_items(root, "00081199"));
    CHECK(failure_of(seq_items(root, "00081198"), "1.2.3.6.1") == 0x0122);
    json_object_put(root);
    CHECK(files == 0);
}

/* DICOM JSON request (type application/dicom+json): an object and an array of one. */
TEST(stow_dicom_json_parts)
{
    service *sv = start(NULL);
    CHECK(sv && sv->port);
    buf body = {0};
    add_part(&body, "application/dicom+json", dicom_json("1.2.3.7.1", STUDY, 0));
    puts_(&body, "--" BOUNDARY "\r\n\r\n"); /* a part without Content-Type: the request's type */
    buf arr = dicom_json("1.2.3.7.2", STUDY, 1);
    put(&body, arr.p, arr.n);
    free(arr.p);
    puts_(&body, "\r\n");
    close_body(&body);
    reply r = send_req(sv, "POST", "/dicom-web/studies/" STUDY, mp_json, &body, 0);
    json_object *root = json_tokener_parse(r.body.p);
    s2f_queue_stats st = job_stats(sv);
    stop(sv);
    free(body.p);
    free(r.body.p);
    CHECK(r.status == 200);
    const char *uids[] = {"1.2.3.7.1", "1.2.3.7.2"};
    CHECK(root && referenced_are(seq_items(root, "00081199"), uids, 2));
    json_object_put(root);
    CHECK(st.count[S2F_JOB_PENDING] == 2);
}

/* Request-level refusals, each before any file: 415 (media type, type parameter), 400 (no
 * boundary, truncated body, no close delimiter), 405, 413 (declared body too large). */
TEST(stow_request_refusals)
{
    limits lim = {.max_body = 4096};
    service *sv = start(&lim);
    CHECK(sv && sv->port);
    buf body = {0};
    add_part(&body, "application/dicom", part10(SR_CLASS, "1.2.3.8.1", STUDY));
    close_body(&body);
    reply a = send_req(sv, "POST", "/dicom-web/studies", "application/json", &body, 0);
    reply b = send_req(sv, "POST", "/dicom-web/studies",
                       "multipart/related; type=\"application/xml\"; boundary=" BOUNDARY, &body, 0);
    reply c = send_req(sv, "POST", "/dicom-web/studies",
                       "multipart/related; type=\"application/dicom\"", &body, 0);
    buf trunc = {0};
    put(&trunc, body.p, body.n - 30); /* cut inside the close delimiter's part */
    reply d = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &trunc, 0);
    buf noclose = {0};
    put(&noclose, body.p, body.n - strlen("--" BOUNDARY "--\r\n"));
    reply e = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &noclose, 0);
    reply f = send_req(sv, "GET", "/dicom-web/studies", NULL, NULL, 0);
    buf big = {0};
    for (int i = 0; i < 20; i++)
        add_part(&big, "application/dicom", part10(SR_CLASS, "1.2.3.8.9", STUDY));
    close_body(&big);
    reply g = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &big, 0);
    reply h = send_req(sv, "POST", "/dicom-web/studies/1.2.x", mp_dicom, &body, 0);
    int tmp = 0, files = incoming_files(sv, &tmp);
    s2f_queue_stats st = job_stats(sv);
    stop(sv);
    reply *all[] = {&a, &b, &c, &d, &e, &f, &g, &h};
    free(body.p);
    free(trunc.p);
    free(noclose.p);
    free(big.p);
    long codes[8];
    for (int i = 0; i < 8; i++) {
        codes[i] = all[i]->status;
        free(all[i]->body.p);
    }
    CHECK(codes[0] == 415 && codes[1] == 415);
    CHECK(codes[2] == 400 && codes[3] == 400 && codes[4] == 400);
    CHECK(codes[5] == 405);
    CHECK(big.n > 4096 && codes[6] == 413);
    CHECK(codes[7] == 400);
    CHECK(files == 0 && tmp == 0);
    CHECK(st.count[S2F_JOB_PENDING] == 0);
}

/* A chunked body (no Content-Length) in small pieces; past max_body it gets 413. */
TEST(stow_chunked)
{
    limits lim = {.max_body = 16384};
    service *sv = start(&lim);
    CHECK(sv && sv->port);
    buf body = {0};
    for (int i = 0; i < 3; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "1.2.3.9.%d", i + 1);
        add_part(&body, "application/dicom", part10(SR_CLASS, uid, STUDY));
    }
    close_body(&body);
    reply r = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 1);
    buf big = {0};
    while (big.n < 40000)
        add_part(&big, "application/dicom", part10(SR_CLASS, "1.2.3.9.99", STUDY));
    close_body(&big);
    reply r2 = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &big, 1);
    s2f_queue_stats st = job_stats(sv);
    int tmp = 0, files = incoming_files(sv, &tmp);
    stop(sv);
    free(body.p);
    free(big.p);
    free(r.body.p);
    free(r2.body.p);
    CHECK(r.status == 200);
    /* libmicrohttpd takes no answer in the middle of a body: the connection is closed */
    CHECK(r2.status == 413 || r2.status == -1);
    CHECK(st.count[S2F_JOB_PENDING] == 3 && files == 3 && tmp == 0);
}

/* The same SR sent twice (and twice within one request): 200 each time, one job, one file. */
TEST(stow_duplicate_resend)
{
    service *sv = start(NULL);
    CHECK(sv && sv->port);
    buf body = {0};
    add_part(&body, "application/dicom", part10(SR_CLASS, "1.2.3.10.1", STUDY));
    add_part(&body, "application/dicom", part10(SR_CLASS, "1.2.3.10.1", STUDY));
    close_body(&body);
    reply r1 = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    reply r2 = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    s2f_queue_stats st = job_stats(sv);
    int files = incoming_files(sv, NULL);
    stop(sv);
    free(body.p);
    free(r1.body.p);
    free(r2.body.p);
    CHECK(r1.status == 200 && r2.status == 200);
    CHECK(st.count[S2F_JOB_PENDING] == 1);
    CHECK(files == 1);
}

/* Back-pressure: a queue above its high-water mark, or too little free disk: 503 with
 * Retry-After, before the body is read. */
TEST(stow_busy_503)
{
    limits lim = {.high_water = -1}; /* 0: any waiting job is too many */
    service *sv = start(&lim);
    CHECK(sv && sv->port);
    buf body = {0};
    add_part(&body, "application/dicom", part10(SR_CLASS, "1.2.3.11.1", STUDY));
    close_body(&body);
    reply r1 = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    buf body2 = {0};
    add_part(&body2, "application/dicom", part10(SR_CLASS, "1.2.3.11.2", STUDY));
    close_body(&body2);
    reply r2 = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body2, 0);
    long busy = atomic_load(&sv->metrics.busy);
    stop(sv);
    limits lim2 = {.min_free = ~0ull};
    service *sv2 = start(&lim2);
    CHECK(sv2 && sv2->port);
    reply r3 = send_req(sv2, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    int files = incoming_files(sv2, NULL);
    stop(sv2);
    free(body.p);
    free(body2.p);
    free(r1.body.p);
    free(r2.body.p);
    free(r3.body.p);
    CHECK(r1.status == 200); /* the queue was empty */
    CHECK(r2.status == 503 && r2.retry_after[0]);
    CHECK(busy == 1);
    CHECK(r3.status == 503 && r3.retry_after[0] && files == 0);
}

/* 8 senders at once, 10 requests each of 2 SRs: every answer 200, 160 jobs, 160 files
 * (the committer's group commit under concurrency; run under TSan with `make TSAN=1`). */
typedef struct sender_arg {
    const service *sv;
    int id, ok;
} sender_arg;

static void *sender(void *arg)
{
    sender_arg *a = arg;
    for (int k = 0; k < 10; k++) {
        buf body = {0};
        for (int m = 0; m < 2; m++) {
            char uid[48];
            snprintf(uid, sizeof uid, "1.2.3.12.%d.%d.%d", a->id, k, m);
            add_part(&body, "application/dicom", part10(SR_CLASS, uid, STUDY));
        }
        close_body(&body);
        reply r = send_req(a->sv, "POST", "/dicom-web/studies", mp_dicom, &body, k & 1);
        a->ok += r.status == 200;
        free(body.p);
        free(r.body.p);
    }
    return NULL;
}

TEST(stow_concurrent_senders)
{
    service *sv = start(NULL);
    CHECK(sv && sv->port);
    pthread_t t[8];
    sender_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (sender_arg){sv, i, 0};
        pthread_create(&t[i], NULL, sender, &args[i]);
    }
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ok += args[i].ok;
    }
    s2f_queue_stats st = job_stats(sv);
    int files = incoming_files(sv, NULL);
    long requests = atomic_load(&sv->metrics.requests);
    stop(sv);
    CHECK(ok == 80);
    CHECK(st.count[S2F_JOB_PENDING] == 160 && files == 160);
    CHECK(requests == 80);
}

/* s2f_stow_check answers for /readyz: ready; not ready while another connection holds
 * the queue's write lock past the busy timeout, nor with too little free disk. */
TEST(stow_check_ready)
{
    service *sv = start(NULL);
    CHECK(sv);
    s2f_error err = {0};
    s2f_code rc = s2f_stow_check(sv->stow, &err);
    sqlite3 *db = NULL;
    s2f_code locked = S2F_OK;
    if (sqlite3_open(sv->queue, &db) == SQLITE_OK &&
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        locked = s2f_stow_check(sv->stow, &err); /* waits its 1 s busy timeout */
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    s2f_code after = s2f_stow_check(sv->stow, &err);
    stop(sv);
    limits lim = {.min_free = ~0ull};
    service *sv2 = start(&lim);
    CHECK(sv2);
    s2f_code full = s2f_stow_check(sv2->stow, &err);
    stop(sv2);
    CHECK(rc == S2F_OK);
    CHECK(locked == S2F_EIO);
    CHECK(after == S2F_OK);
    CHECK(full == S2F_EIO);
}

/* Every SR file of the corpus (../shared/corpus/files: TID 1500 reports and other SRs,
 * four transfer syntaxes, deflated included) in one request: 200, one job per distinct SOP
 * Instance UID. Skipped without the corpus. */
TEST(stow_corpus_files)
{
    const char *shared = getenv("SHARED");
    char dirpath[PATH_MAX];
    snprintf(dirpath, sizeof dirpath, "%s/corpus/files", shared && *shared ? shared : "../shared");
    DIR *d = opendir(dirpath);
    if (!d)
        SKIP("no corpus (SHARED/corpus/files)");
    service *sv = start(NULL);
    if (!sv) {
        closedir(d);
        CHECK(sv);
    }
    buf body = {0};
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".dcm") != 0)
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dirpath, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        buf part = {0};
        char chunk[65536];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
            put(&part, chunk, k);
        fclose(f);
        add_part(&body, "application/dicom", part);
        n++;
    }
    closedir(d);
    close_body(&body);
    reply r = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    json_object *root = json_tokener_parse(r.body.p);
    json_object *ref = root ? seq_items(root, "00081199") : NULL;
    size_t n_ref = ref ? json_object_array_length(ref) : 0;
    s2f_queue_stats st = job_stats(sv);
    stop(sv);
    free(body.p);
    free(r.body.p);
    json_object_put(root);
    CHECK(n >= 10);
    CHECK(r.status == 200);
    CHECK(n_ref == (size_t)n);
    CHECK(st.count[S2F_JOB_PENDING] >= 1 && st.count[S2F_JOB_PENDING] <= n);
}

/* Limits found in the body: a part above max_part, more than 2,000 parts: 413, and the
 * valid SR before them is not stored either (no row before the end of the body). */
TEST(stow_part_limits_413)
{
    limits lim = {.max_part = 4096};
    service *sv = start(&lim);
    CHECK(sv && sv->port);
    buf body = {0}, fat = {0};
    add_part(&body, "application/dicom", part10(SR_CLASS, "1.2.3.13.1", STUDY));
    for (int i = 0; i < 5000; i++)
        put(&fat, "x", 1);
    add_part(&body, "application/dicom", fat);
    close_body(&body);
    reply r1 = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &body, 0);
    buf many = {0};
    add_part(&many, "application/dicom", part10(SR_CLASS, "1.2.3.13.2", STUDY));
    for (int i = 0; i < 2001; i++) {
        buf tiny = {0};
        put(&tiny, "y", 1);
        add_part(&many, "application/dicom", tiny);
    }
    close_body(&many);
    reply r2 = send_req(sv, "POST", "/dicom-web/studies", mp_dicom, &many, 0);
    int tmp = 0, files = incoming_files(sv, &tmp);
    s2f_queue_stats st = job_stats(sv);
    stop(sv);
    free(body.p);
    free(many.p);
    free(r1.body.p);
    free(r2.body.p);
    CHECK(r1.status == 413);
    CHECK(r2.status == 413);
    CHECK(files == 0 && tmp == 0);
    CHECK(st.count[S2F_JOB_PENDING] == 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(stow_all_stored_200);
    RUN(stow_mixed_202);
    RUN(stow_none_stored_409);
    RUN(stow_dicom_json_parts);
    RUN(stow_request_refusals);
    RUN(stow_chunked);
    RUN(stow_part_limits_413);
    RUN(stow_duplicate_resend);
    RUN(stow_busy_503);
    RUN(stow_concurrent_senders);
    RUN(stow_check_ready);
    RUN(stow_corpus_files);
    curl_global_cleanup();
    CHECK_DONE();
}
