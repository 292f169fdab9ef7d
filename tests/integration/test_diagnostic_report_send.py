#!/usr/bin/python3
"""tests/integration/test_diagnostic_report_send.py - issue 15: `sr2fhir send
--diagnostic-report` against the FHIR server tool (../shared/tools/fhir-server: Medplum in
memory, with FHIR_VALIDATE=1, structural validation, and FHIR_REFINT=1, references to
nothing refused), R5 and R4:
  - every TID 1500 corpus file is delivered with its DiagnosticReport: on the server, one per
    SR, with the id `convert --diagnostic-report` gives it, its result naming exactly the
    Observations of the converted DiagnosticReport (as Observation/ID), status and code kept;
  - the Patient and ImagingStudy found on the server become literal references of the
    DiagnosticReport too (subject, study);
  - a report split into several transactions (--max-entries) arrives whole: the
    DiagnosticReport travels after what it references (the server checks references);
  - sending again updates, creates nothing; without the option no DiagnosticReport is sent;
  - R4 server (detected from /metadata): the R4 form (imagingStudy) is accepted, and the
    server does refuse the R5 form (the validation can fail);
  - `sr2fhir serve --diagnostic-report` (and `diagnostic-report = yes` in its --config
    file): an SR received by STOW-RS is delivered with its DiagnosticReport; `= no` sends none.
SKIP when ../shared or npm (the server's first start) is absent.
Prints PASS/FAIL/SKIP lines for tests/run.sh.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SHARED, SR2FHIR, clean_env, eq, out, short  # noqa: E402
import fhirserver  # noqa: E402
import gwservice  # noqa: E402
from fhirserver import FhirServer, http  # noqa: E402

CORPUS = os.path.join(SHARED, "corpus", "files")
TMP = tempfile.mkdtemp(prefix="sr2fhir-dr-send-")


def test(name, fn, *args):
    harness.test(name, fn, *args, width=700)


def send(*args, timeout=240):
    cmd = [SR2FHIR, "send", "--audit-log", os.path.join(TMP, "audit.log")] + [str(a) for a in args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       cwd=TMP, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def converted_report(path, version):
    """The DiagnosticReport `convert --diagnostic-report` makes, with its Bundle's
    urn:uuid references as Type/id (what the server stores)."""
    b = fhirserver.convert(path, version, "--diagnostic-report")
    urls = {e["fullUrl"]: "%s/%s" % (e["resource"]["resourceType"], e["resource"]["id"])
            for e in b["entry"]}
    dr = b["entry"][-1]["resource"]
    assert dr["resourceType"] == "DiagnosticReport", "last entry of %s" % path
    return dr, [urls[r["reference"]] for r in dr.get("result", [])]


def on_server(srv, rtype, rid):
    status, body = http("GET", "%s/%s/%s" % (srv.base, rtype, rid))
    assert status == 200, "GET %s/%s: HTTP %d %s" % (rtype, rid, status, short(body))
    return body


def corpus_files():
    return sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS) if f.startswith("tid1500__"))


def start(version):
    srv = FhirServer(version, os.path.join(TMP, "server-" + version), FHIR_VALIDATE="1",
                     FHIR_REFINT="1")
    try:
        srv.start()
    except RuntimeError as e:
        if "npm install failed" in str(e):
            out("SKIP issue15_send_%s: %s" % (version, short(e)))
            return None
        harness.report(False, "issue15_send_%s_server" % version, short(e, 600))
        return None
    return srv


def check_corpus_delivered(srv, files, version):
    """Every file's DiagnosticReport on the server as converted."""
    ids = set()
    for f in files:
        want, results = converted_report(f, version)
        ids.add(want["id"])
        got = on_server(srv, "DiagnosticReport", want["id"])
        name = os.path.basename(f)
        eq([r.get("reference") for r in got.get("result", [])], results, "%s: result" % name)
        for ref in results:
            on_server(srv, *ref.split("/"))
        eq((got["status"], got["code"]), (want["status"], want["code"]),
           "%s: status, code" % name)
        key = "imagingStudy" if version == "R4" else "study"
        eq([s.get("identifier") for s in got.get(key, [])],
           [s.get("identifier") for s in want.get(key, [])], "%s: %s" % (name, key))
    # one per SR: the corpus has one SR twice (sample-sr as Part 10 and as DICOM JSON)
    eq(srv.count("DiagnosticReport"), len(ids), "DiagnosticReports on the server")


def r5_cases(srv):
    files = corpus_files()

    def t_corpus():
        srv.reset()
        rc, so, se = send("--server", srv.base, "--diagnostic-report", *files)
        eq(rc, 0, "exit code (stderr: %s)" % short(se, 500))
        check_corpus_delivered(srv, files, "R5")

    test("issue15_send_r5_corpus: every tid1500 corpus file delivered with its "
         "DiagnosticReport to the validating R5 server (result = the converted Observations)",
         t_corpus)

    def t_again():
        before = srv.counts(("DiagnosticReport", "Observation"))
        rc, so, se = send("--server", srv.base, "--diagnostic-report", *files)
        eq(rc, 0, "exit code (stderr: %s)" % short(se, 500))
        eq(srv.counts(("DiagnosticReport", "Observation")), before, "counts after sending again")

    test("issue15_send_r5_again: sending again updates, creates nothing", t_again)

    def t_literal():
        srv.reset()
        f = [x for x in files if "highdicom__sr_document.dcm" in x][0]
        want, _ = converted_report(f, "R5")
        pid = srv.create({"resourceType": "Patient", "identifier": [want["subject"]["identifier"]]})
        study_id = want["study"][0]["identifier"]
        iid = srv.create({"resourceType": "ImagingStudy", "status": "available",
                          "identifier": [study_id],
                          "subject": {"reference": "Patient/" + pid}})
        rc, so, se = send("--server", srv.base, "--diagnostic-report", f)
        eq(rc, 0, "exit code (stderr: %s)" % short(se, 500))
        got = on_server(srv, "DiagnosticReport", want["id"])
        eq(got["subject"].get("reference"), "Patient/" + pid, "subject.reference")
        eq(got["subject"].get("identifier"), want["subject"]["identifier"], "subject.identifier")
        eq([s.get("reference") for s in got.get("study", [])], ["ImagingStudy/" + iid],
           "study.reference")

    test("issue15_send_r5_literal: the Patient and ImagingStudy found on the server are the "
         "DiagnosticReport's subject and study", t_literal)

    def t_split():
        srv.reset()
        f = [x for x in files if "dsr2csv_tumor" in x][0]
        n = len(fhirserver.convert(f, "R5", "--diagnostic-report")["entry"])
        assert n > 20, "the file makes only %d entries" % n
        rc, so, se = send("--server", srv.base, "--diagnostic-report", "--max-entries", "10", f)
        eq(rc, 0, "exit code (stderr: %s)" % short(se, 500))
        audit = [json.loads(x) for x in open(os.path.join(TMP, "audit.log"))][-1]
        eq(audit.get("transactions"), (n + 9) // 10, "transactions")
        check_corpus_delivered(srv, [f], "R5")

    test("issue15_send_r5_split: a report in several transactions (--max-entries 10) "
         "arrives with its DiagnosticReport last (the server refuses dangling references)",
         t_split)

    def t_without():
        srv.reset()
        rc, so, se = send("--server", srv.base, files[0])
        eq(rc, 0, "exit code (stderr: %s)" % short(se, 500))
        assert srv.count("Observation") > 0, "nothing delivered"
        eq(srv.count("DiagnosticReport"), 0, "DiagnosticReports without the option")

    test("issue15_send_r5_without_option: no DiagnosticReport", t_without)


def serve_cases(srv):
    files = corpus_files()
    sr = [x for x in files if "highdicom__sr_document_with_multiple_groups" in x][0]
    want, results = converted_report(sr, "R5")
    data = open(sr, "rb").read()
    if not os.access(gwservice.SERVE, os.X_OK):
        out("SKIP issue15_serve: no %s" % gwservice.SERVE)
        return

    def run_serve(name, *opts):
        srv.reset()
        svc = gwservice.Service(os.path.join(TMP, name), srv.base,
                                os.path.join(TMP, name + ".log"), *opts)
        try:
            svc.start()
            status, body = gwservice.stow(svc.address(), data)
            assert status == 200, "STOW-RS: HTTP %d %s" % (status, short(body))
            st = svc.wait_idle(finished_at_least=1, timeout=120)
            eq(st["done"], 1, "jobs done (log: %s)" % svc.log_tail())
        finally:
            svc.stop()
        assert srv.count("Observation") > 0, "nothing delivered"

    def t_flag():
        run_serve("serve-flag", "--diagnostic-report")
        got = on_server(srv, "DiagnosticReport", want["id"])
        eq([r.get("reference") for r in got.get("result", [])], results, "result")
        eq(srv.count("DiagnosticReport"), 1, "DiagnosticReports")

    def t_config():
        conf = os.path.join(TMP, "serve.conf")
        for value, n in (("yes", 1), ("no", 0)):
            with open(conf, "w") as f:
                f.write("# issue 15\ndiagnostic-report = %s\n" % value)
            run_serve("serve-conf-" + value, "--config", conf)
            eq(srv.count("DiagnosticReport"), n, "DiagnosticReports with diagnostic-report = "
               + value)

    test("issue15_serve_flag: serve --diagnostic-report delivers an SR received by STOW-RS "
         "with its DiagnosticReport", t_flag)
    test("issue15_serve_config: 'diagnostic-report = yes' in the config file sends it, "
         "'= no' does not", t_config)


def r4_cases(srv):
    files = corpus_files()

    def t_corpus():
        srv.reset()
        rc, so, se = send("--server", srv.base, "--diagnostic-report", *files)
        eq(rc, 0, "exit code (stderr: %s)" % short(se, 500))
        assert "(FHIR R4)" in so or "R4" in open(os.path.join(TMP, "audit.log")).read(), \
            "not sent as R4: " + short(so, 300)
        check_corpus_delivered(srv, files, "R4")

    test("issue15_send_r4_corpus: every tid1500 corpus file delivered with its R4 "
         "DiagnosticReport (imagingStudy) to the validating R4 server", t_corpus)

    def t_r5_form_refused():
        dr = dict(converted_report(files[0], "R5")[0])
        dr.pop("result", None)   # only the form is under test
        dr.pop("performer", None)
        dr["id"] = "r5-form-on-r4"
        status, body = http("PUT", "%s/DiagnosticReport/%s" % (srv.base, dr["id"]), dr)
        assert status >= 400, "the R4 server accepted an R5 DiagnosticReport (study): %d %s" % (
            status, short(body))

    test("issue15_send_r4_validates: the R4 server refuses the R5 form (study), so the "
         "R4 acceptance above means something", t_r5_form_refused)


def main():
    if not os.path.isdir(CORPUS):
        out("SKIP issue15_send: %s absent" % CORPUS)
        return 0
    harness.require_sr2fhir("issue15_send")
    try:
        for version, cases in (("R5", (r5_cases, serve_cases)), ("R4", (r4_cases,))):
            srv = start(version)
            if not srv:
                continue
            try:
                for case in cases:
                    case(srv)
            finally:
                srv.stop()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
