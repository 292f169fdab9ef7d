/*
 * convert.c - `sr2fhir convert`: SR files, folders or stdin -> FHIR Bundles (one file,
 * a folder of files, or NDJSON), with a progress bar on a terminal, a summary, and the
 * conversion report of M26. Every output file is written safely (output.c): a temporary
 * file renamed when complete, so a failure never leaves half a Bundle behind. Into a
 * folder, outputs mirror the input folders' subfolders and never share a name
 * (outnames.c, issue 9 #3).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

typedef struct job {
    s2f_convert_options opt;
    const char *output;      /* NULL: stdout for one input */
    const char *report_path;
    int quiet;
    int ndjson;              /* output is one NDJSON file */
    int to_dir;              /* output is a folder */
    cli_outname *names;      /* to_dir: each input's output file (issue 9 #3) */
    mode_t dir_mode;         /* to_dir: the output folder's mode, given to subfolders */
    cli_output ndjson_out;   /* the NDJSON file, renamed into place at the end (#5) */
    cli_inputs in;           /* files, folders expanded, sorted within each folder */
    /* totals */
    size_t converted, failed;
    s2f_convert_result sum;
    int status;
    /* conversion report */
    FILE *report;
    cli_output report_out;
    cli_json report_json;
} job;

static int usage(const char *what)
{
    return cli_error(NULL, S2F_EUSAGE, "convert: %s (try 'sr2fhir help convert')", what);
}

/* ---- outputs ------------------------------------------------------------------------------- */

/* Converts into `dest` through a temporary file (issue 9 #5); follow: the user named dest. */
static s2f_code convert_to_file(const s2f_doc *doc, const s2f_convert_options *opt,
                                const char *dest, int follow, s2f_convert_result *res,
                                s2f_error *err)
{
    cli_output o;
    s2f_code rc = cli_output_open(&o, dest, follow, err);
    if (rc)
        return rc;
    rc = s2f_convert(doc, opt, o.f, res, err);
    if (rc) {
        cli_output_abort(&o);
        return rc;
    }
    return cli_output_commit(&o, dest, err);
}

/* NDJSON: the Bundle is made in memory, then written as one line. */
static s2f_code convert_to_ndjson(const s2f_doc *doc, const s2f_convert_options *opt, FILE *out,
                                  s2f_convert_result *res, s2f_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return cli_fail(err, S2F_ENOMEM, "out of memory");
    s2f_convert_options compact = *opt;
    compact.pretty = 0;
    s2f_code rc = s2f_convert(doc, &compact, mem, res, err);
    fclose(mem);
    if (!rc && (fwrite(buf, 1, len, out) != len || fputc('\n', out) == EOF))
        rc = cli_fail(err, S2F_EIO, "cannot write the NDJSON output: %s", strerror(errno));
    free(buf);
    return rc;
}

/* ---- the conversion report (M26) ------------------------------------------------------- */

static void report_resources(cli_json *j, const s2f_convert_result *res, int diagnostic_report)
{
    cli_json_open(j, "resources", '{');
    cli_json_uint(j, "Observation", res->observations);
    cli_json_uint(j, "ImagingSelection", res->imaging_selections);
    cli_json_uint(j, "BodyStructure", res->body_structures);
    cli_json_uint(j, "Device", res->devices);
    cli_json_uint(j, "Practitioner", res->practitioners);
    if (diagnostic_report) /* issue 15: only then, the report unchanged else */
        cli_json_uint(j, "DiagnosticReport", res->diagnostic_reports);
    cli_json_close(j, '}');
}

static void report_lines(cli_json *j, const char *key, const char *const *lines)
{
    cli_json_open(j, key, '[');
    for (size_t i = 0; lines && lines[i]; i++)
        cli_json_string(j, NULL, lines[i]);
    cli_json_close(j, ']');
}

static void report_file(job *jb, const char *input, s2f_code rc, const s2f_error *err,
                        const s2f_doc *doc, const s2f_convert_result *res)
{
    cli_json *j = &jb->report_json;
    if (!jb->report)
        return;
    cli_json_open(j, NULL, '{');
    cli_json_string(j, "input", input);
    cli_json_string(j, "status", rc ? "failed" : "converted");
    if (rc) {
        cli_json_int(j, "exitCode", rc);
        cli_json_string(j, "error", err->message);
    } else {
        report_resources(j, res, jb->opt.diagnostic_report);
        report_lines(j, "unmapped", res->unmapped_items);
        if (res->consumed_items) /* --trace-consumed (tests, M26) */
            report_lines(j, "consumed", res->consumed_items);
        cli_json_uint(j, "fallbackCodes", res->fallback_codes);
        cli_json_uint(j, "replacedCharacters", res->replaced_chars);
    }
    size_t n = 0;
    const s2f_warning *w = doc ? s2f_doc_warnings(doc, &n) : NULL;
    cli_json_open(j, "warnings", '[');
    for (size_t i = 0; i < n; i++)
        cli_json_string(j, NULL, w[i].message);
    cli_json_close(j, ']');
    cli_json_close(j, '}');
}

static int open_report(job *jb)
{
    if (!jb->report_path)
        return 1;
    s2f_error err = {0};
    if (cli_output_open(&jb->report_out, jb->report_path, 1, &err)) {
        cli_error(NULL, err.code, "%s", err.message);
        return 0;
    }
    jb->report = jb->report_out.f;
    memset(&jb->report_json, 0, sizeof jb->report_json);
    jb->report_json.f = jb->report;
    cli_json_open(&jb->report_json, NULL, '{');
    cli_json_open(&jb->report_json, "files", '[');
    return 1;
}

static int close_report(job *jb)
{
    if (!jb->report)
        return 1;
    cli_json *j = &jb->report_json;
    cli_json_close(j, ']');
    cli_json_open(j, "summary", '{');
    cli_json_uint(j, "files", jb->in.n);
    cli_json_uint(j, "converted", jb->converted);
    cli_json_uint(j, "failed", jb->failed);
    cli_json_uint(j, "Observation", jb->sum.observations);
    cli_json_uint(j, "ImagingSelection", jb->sum.imaging_selections);
    cli_json_uint(j, "BodyStructure", jb->sum.body_structures);
    cli_json_uint(j, "Device", jb->sum.devices);
    cli_json_uint(j, "Practitioner", jb->sum.practitioners);
    if (jb->opt.diagnostic_report)
        cli_json_uint(j, "DiagnosticReport", jb->sum.diagnostic_reports);
    cli_json_uint(j, "unmapped", jb->sum.unmapped);
    cli_json_close(j, '}');
    cli_json_close(j, '}');
    s2f_error err = {0};
    if (j->failed || j->depth) {
        cli_output_abort(&jb->report_out);
        return 0;
    }
    return cli_output_commit(&jb->report_out, jb->report_path, &err) == S2F_OK;
}

/* ---- one input ---------------------------------------------------------------------------- */

static void add_result(s2f_convert_result *sum, const s2f_convert_result *r)
{
    sum->observations += r->observations;
    sum->imaging_selections += r->imaging_selections;
    sum->body_structures += r->body_structures;
    sum->devices += r->devices;
    sum->practitioners += r->practitioners;
    sum->diagnostic_reports += r->diagnostic_reports;
    sum->unmapped += r->unmapped;
    sum->fallback_codes += r->fallback_codes;
    sum->replaced_chars += r->replaced_chars;
}

/* The subfolders of dest below the output folder, made when missing (with the output
 * folder's mode); an existing one must be a folder, not a symbolic link (issue 9 #5: no
 * link in the output folder is followed). */
static s2f_code make_subfolders(const job *jb, const char *dest, s2f_error *err)
{
    char path[PATH_MAX];
    size_t n = strlen(dest), start = strlen(jb->output);
    while (start > 1 && jb->output[start - 1] == '/')
        start--; /* as outnames.c writes it: "OUT//" -> "OUT/..." */
    if (n >= sizeof path)
        return cli_fail(err, S2F_EIO, "cannot write %s: %s", dest, strerror(ENAMETOOLONG));
    memcpy(path, dest, n + 1);
    for (size_t i = start + 1; i < n; i++) {
        if (path[i] != '/' || path[i - 1] == '/')
            continue;
        path[i] = 0;
        struct stat st;
        if (lstat(path, &st) != 0 && mkdir(path, jb->dir_mode) != 0 && errno != EEXIST)
            return cli_fail(err, S2F_EIO, "cannot create folder %s: %s", path, strerror(errno));
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            return cli_fail(err, S2F_EIO, "cannot write %s: %s is %s", dest, path,
                            S_ISLNK(st.st_mode) ? "a symbolic link (not followed)"
                                                : "not a folder");
        path[i] = '/';
    }
    return S2F_OK;
}

/* Into the output folder: the planned name, unless it was refused (issue 9 #3). */
static s2f_code convert_into_folder(const job *jb, size_t index, const s2f_doc *doc,
                                    s2f_convert_result *res, s2f_error *err)
{
    const cli_outname *name = &jb->names[index];
    if (!name->path) {
        if (name->clash == index)
            return cli_fail(err, S2F_EIO, "not converted: its output would replace the input "
                            "itself (choose another -o folder)");
        return cli_fail(err, S2F_EIO, "not converted: its output name is that of %s "
                        "(convert them into different folders)", jb->in.v[name->clash]);
    }
    s2f_code rc = make_subfolders(jb, name->path, err);
    return rc ? rc : convert_to_file(doc, &jb->opt, name->path, 0, res, err);
}

static void convert_one(job *jb, size_t index)
{
    const char *input = jb->in.v[index];
    s2f_error err = {0};
    s2f_convert_result res;
    s2f_convert_result_init(&res);
    s2f_doc *doc = s2f_doc_read_file(input, NULL, &err);
    s2f_code rc = doc ? S2F_OK : err.code;
    if (doc) {
        size_t n;
        const s2f_warning *w = s2f_doc_warnings(doc, &n);
        for (size_t i = 0; i < n && !jb->quiet; i++)
            cli_error(input, 0, "warning: %s", w[i].message);
        if (jb->ndjson) {
            rc = convert_to_ndjson(doc, &jb->opt, jb->ndjson_out.f, &res, &err);
        } else if (jb->to_dir) {
            rc = convert_into_folder(jb, index, doc, &res, &err);
        } else if (jb->output && strcmp(jb->output, "-")) {
            rc = convert_to_file(doc, &jb->opt, jb->output, 1, &res, &err);
        } else {
            rc = s2f_convert(doc, &jb->opt, stdout, &res, &err);
            if (!rc && fflush(stdout) != 0)
                rc = cli_fail(&err, S2F_EIO, "cannot write to standard output");
        }
    }
    if (rc) {
        cli_error(input, rc, "%s", err.message);
        jb->failed++;
        if (!jb->status)
            jb->status = rc;
    } else {
        jb->converted++;
        add_result(&jb->sum, &res);
        if (res.unmapped && !jb->quiet && !jb->report)
            cli_error(input, 0, "warning: %zu content item(s) consumed by no mapping rule (M26); "
                      "--report FILE lists them", res.unmapped);
    }
    report_file(jb, input, rc, &err, doc, &res);
    s2f_doc_free(doc);
}

/* ---- progress and summary ----------------------------------------------------------------- */

static void progress(const job *jb, size_t done)
{
    if (jb->in.n < 2 || jb->quiet || !isatty(2))
        return;
    int width = 30, filled = (int)(done * (size_t)width / jb->in.n);
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu files, %zu failed", filled,
            "##############################", width - filled, "", done, jb->in.n, jb->failed);
    if (done == jb->in.n)
        fputc('\n', stderr);
}

/* ", N DiagnosticReport" with --diagnostic-report (issue 15), else "". */
static const char *dr_count(const job *jb, char text[48])
{
    text[0] = '\0';
    if (jb->opt.diagnostic_report)
        snprintf(text, 48, ", %zu DiagnosticReport", jb->sum.diagnostic_reports);
    return text;
}

static void summary(const job *jb)
{
    if (jb->in.n < 2 || jb->quiet)
        return;
    const s2f_convert_result *s = &jb->sum;
    char dr[48];
    fprintf(stderr, "sr2fhir: %zu files: %zu converted, %zu failed; resources: %zu Observation, "
            "%zu ImagingSelection, %zu BodyStructure, %zu Device, %zu Practitioner%s; "
            "%zu unmapped content item(s)\n", jb->in.n, jb->converted, jb->failed,
            s->observations, s->imaging_selections, s->body_structures, s->devices,
            s->practitioners, dr_count(jb, dr), s->unmapped);
}

/* ---- options ------------------------------------------------------------------------------ */

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

/* One option of the table (help.c's cli_convert_command); 0, or 2 after a usage message. */
static int take_option(void *ctx, const cli_option *o, const char *v)
{
    job *jb = ctx;
    switch (o->id) {
    case OPT_OUTPUT:
        jb->output = v;
        break;
    case OPT_BUNDLE_TYPE:
        if (strcmp(v, "transaction") && strcmp(v, "collection"))
            return usage("--bundle-type takes transaction or collection");
        jb->opt.bundle_type = !strcmp(v, "collection") ? S2F_BUNDLE_COLLECTION
                                                        : S2F_BUNDLE_TRANSACTION;
        break;
    case OPT_FHIR_VERSION:
        if (strcasecmp(v, "R5") && strcasecmp(v, "R4"))
            return usage("--fhir-version takes R5 or R4");
        jb->opt.fhir_version = !strcasecmp(v, "R4") ? S2F_FHIR_R4 : S2F_FHIR_R5;
        break;
    case OPT_TIMEZONE:
        if (!cli_valid_zone(v))
            return usage("--timezone takes +HHMM or -HHMM, e.g. +0100");
        jb->opt.timezone = v;
        break;
    case OPT_REPORT:
        jb->report_path = v;
        break;
    case OPT_PRETTY:
        jb->opt.pretty = 1;
        break;
    case OPT_DIAGNOSTIC_REPORT: /* issue 15 */
        jb->opt.diagnostic_report = 1;
        break;
    case OPT_TRACE_CONSUMED: /* test-only: "consumed" in --report */
        jb->opt.trace_consumed = 1;
        break;
    case OPT_QUIET:
        jb->quiet = 1;
        break;
    default:
        return cli_error(NULL, S2F_EINTERNAL, "convert: option %s has no handler", o->name);
    }
    return 0;
}

/* Decides where Bundles go: one file or stdout, a folder, or NDJSON. Returns 0 or the exit
 * code after printing why (an output that cannot be written is 3, as the README says). */
static int plan_output(job *jb, int single)
{
    s2f_error err = {0};
    if (jb->output && ends_with(jb->output, ".ndjson")) {
        jb->ndjson = 1;
        if (cli_output_open(&jb->ndjson_out, jb->output, 1, &err))
            return cli_error(NULL, err.code, "%s", err.message);
        return 0;
    }
    if (single && !(jb->output && cli_is_folder(jb->output)))
        return 0;
    if (!jb->output || !strcmp(jb->output, "-"))
        return usage("several inputs need -o FOLDER or -o FILE.ndjson");
    jb->to_dir = 1;
    struct stat st;
    if (mkdir(jb->output, 0777) != 0 && errno != EEXIST)
        return cli_error(jb->output, S2F_EIO, "cannot create folder: %s", strerror(errno));
    if (stat(jb->output, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_error(jb->output, S2F_EIO, "cannot write: not a folder");
    if (access(jb->output, W_OK | X_OK) != 0)
        return cli_error(jb->output, S2F_EIO, "cannot write: %s", strerror(errno));
    jb->dir_mode = st.st_mode & 07777;
    if (cli_outnames_plan(&jb->in, jb->output, &jb->names))
        return cli_error(NULL, S2F_ENOMEM, "out of memory");
    return 0;
}

/* The NDJSON file replaces the old one only when a Bundle was written into it (#5). */
static void finish_ndjson(job *jb)
{
    s2f_error err = {0};
    if (!jb->ndjson)
        return;
    if (!jb->converted) {
        cli_output_abort(&jb->ndjson_out);
        if (!jb->status)
            jb->status = cli_error(jb->output, S2F_EIO, "nothing converted: not written");
    } else if (cli_output_commit(&jb->ndjson_out, jb->output, &err) && !jb->status) {
        jb->status = cli_error(NULL, err.code, "%s", err.message);
    }
}

static int run(job *jb, char **args, int n_args)
{
    int any_folder = 0;
    if (cli_inputs_collect(&jb->in, args, n_args, &any_folder))
        return cli_error(NULL, S2F_ENOMEM, "out of memory");
    int rc = plan_output(jb, jb->in.n == 1 && !any_folder);
    if (rc)
        return rc;
    if (!open_report(jb)) {
        if (jb->ndjson)
            cli_output_abort(&jb->ndjson_out);
        return S2F_EIO;
    }
    for (size_t i = 0; i < jb->in.n; i++) {
        convert_one(jb, i);
        progress(jb, i + 1);
    }
    summary(jb);
    if (jb->in.n == 0 && !jb->status)
        jb->status = cli_error(NULL, S2F_EIO, "convert: the folder(s) hold no files");
    finish_ndjson(jb);
    if (!close_report(jb) && !jb->status)
        jb->status = cli_error(jb->report_path, S2F_EIO, "cannot write the report");
    return jb->status;
}

int cmd_convert(int argc, char **argv)
{
    job jb;
    memset(&jb, 0, sizeof jb);
    s2f_convert_options_init(&jb.opt);
    int n_args, parsed = cli_parse(&cli_convert_command, NULL, argc, argv, &n_args, take_option, &jb);
    if (parsed)
        return parsed == CLI_HELP_SHOWN ? 0 : parsed;
    if (n_args == 0)
        return usage("no input (a file, a folder, or - for standard input)");
    int status = run(&jb, argv, n_args);
    cli_outnames_free(jb.names, jb.in.n);
    cli_inputs_free(&jb.in);
    return status;
}
