#!/usr/bin/python3
"""tests/integration/test_cast.py - `sr2fhir cast` (issue 15, docs/fhircast.md) against the
FHIRcast STU3 test hub of ../shared/tools/fhircast-hub (an independent implementation: its
/_test/ endpoints show what it received, stored and forwarded).

One hub (started here with a token on a free port, its home, pid and log files in a temporary
folder, always stopped) and one topic per case, so the cases do not see each other:

- shares_into_open_report: a reporting application opens a DiagnosticReport context (Patient
  with the SR's Patient ID, ImagingStudy with its Study Instance UID); a second subscriber
  listens; cast exits 0; the hub accepted one DiagnosticReport-update whose context keys are
  exactly report, patient, updates; the second subscriber got it with context.priorVersionId
  = the version before and context.versionId = the new one; the stored content is exactly the
  converted Observations and the ImagingSelections, BodyStructures and Devices they reference
  (Type/id set computed here from `sr2fhir convert`), with references rewritten to Type/id.
- stale_409_retried / stale_syncerror_retried: another client's update lands while cast's is
  held by the hub (fault delayMs); cast's is refused (409, or 202 then SyncError with
  --stale-status 202), cast reads the context again and succeeds on the new version; both
  clients' resources end in the content.
- wrong_patient / wrong_study: exit 12, no update sent.
- waits_for_context: --wait; the context opens after cast subscribed.
- hub_500_twice_retried: two 500s, then 202; the retries repeat the same event id.
- serve_shares_delivered_sr: `sr2fhir serve --fhircast-hub --fhircast-topic
  --fhircast-token-file` with a stub FHIR server (tests/integration/stub_server.py): an SR
  stored by STOW-RS is delivered, then shared into the open report (the stored content is
  exactly the converted resources); when the hub dropped the idle subscription (a
  notification not answered within its response timeout), the next SR subscribes again.
- token_required_and_never_printed: without a token: exit 10 (401); the token is in no output
  of any run, nor in the hub's log file.

SKIPs (with the reason) when the hub tool, node, the binary or a sample SR are absent, or when
npm cannot install `ws`. Environment: ROOT, BUILD, SR2FHIR, SHARED, PYTHON.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import FIX, ROOT, SHARED, SR2FHIR, eq, out  # noqa: E402

HUB_SH = os.path.join(SHARED, "tools", "fhircast-hub", "fhircast-hub.sh")
CORPUS_SR = os.path.join(SHARED, "corpus", "files", "tid1500__highdicom__sr_document.dcm")
TOKEN = "cast-test-token-5f1c9a"
SHARED_TYPES = ("ImagingSelection", "BodyStructure", "Device")


class Hub:
    def __init__(self, tmp):
        self.tmp = tmp
        self.env = dict(os.environ, FHIRCAST_HUB_HOME=os.path.join(tmp, "home"),
                        FHIRCAST_HUB_PIDFILE=os.path.join(tmp, "hub.pid"),
                        FHIRCAST_HUB_LOGFILE=os.path.join(tmp, "hub.log"))
        self.token_file = os.path.join(tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.url = None
        self.clients = []

    def start(self):
        p = subprocess.run([HUB_SH, "start", "--port", "0", "--token-file", self.token_file],
                           env=self.env, capture_output=True, text=True, timeout=240)
        for line in p.stdout.splitlines():
            if line.startswith("READY fhircast-hub url="):
                self.url = line.split()[2][4:]
        if not self.url:
            raise harness.SkipTest("the hub did not start (npm/node?): " + harness.short(p.stdout + p.stderr))
        self.base = self.url[:-len("/api/hub")]

    def stop(self):
        for c in self.clients:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
                try:
                    c.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    c.kill()
                    c.wait()
        subprocess.run([HUB_SH, "stop"], env=self.env, capture_output=True, timeout=60)

    def http(self, method, path, body=None, ctype="application/json", token=True, url=None):
        data = body if body is None or isinstance(body, bytes) else (
            body if isinstance(body, str) else json.dumps(body)).encode()
        req = urllib.request.Request(url or (self.base + path), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        if token:
            req.add_header("Authorization", "Bearer " + TOKEN)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def event(self, topic, name, context, version=None, eid=None):
        ev = {"hub.topic": topic, "hub.event": name, "context": context}
        if version:
            ev["context.versionId"] = version
        msg = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "id": eid or "%s-%s-%f" % (topic, name, time.time()), "event": ev}
        return self.http("POST", "/api/hub", msg)

    def current(self, topic):
        status, body = self.http("GET", "/api/hub/" + urllib.parse.quote(topic))
        eq(status, 200, "Get Current Context")
        return body

    def stored(self, topic):
        return self.http("GET", "/_test/context/" + urllib.parse.quote(topic), token=False)[1]

    def requests(self, topic, event=None):
        log = self.http("GET", "/_test/log?kind=request", token=False)[1]["entries"]
        return [e for e in log if e.get("topic") == topic and (event is None or e.get("event") == event)]

    def subscribe_listener(self, topic, events, out_file):
        form = urllib.parse.urlencode({"hub.channel.type": "websocket", "hub.mode": "subscribe",
                                       "hub.topic": topic, "hub.events": events,
                                       "subscriber.name": "viewer"})
        status, body = self.http("POST", "/api/hub", form, ctype="application/x-www-form-urlencoded")
        eq(status, 202, "the listener's subscription")
        p = subprocess.Popen([HUB_SH, "ws-client", body["hub.channel.endpoint"], "--out", out_file,
                              "--timeout", "300"], env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.clients.append(p)
        wait_for(lambda: '"hub.mode":"subscribe"' in read(out_file), "the listener's confirmation")
        return p


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def wait_for(cond, what, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Sr:
    """The sample SR and what its conversion says: Patient ID, Study UID, the expected set."""

    def __init__(self, path, tmp):
        self.path = path
        p = subprocess.run([SR2FHIR, "convert", path, "-o", os.path.join(tmp, "b.json")],
                           capture_output=True, text=True)
        eq(p.returncode, 0, "convert " + p.stderr)
        with open(os.path.join(tmp, "b.json")) as f:
            bundle = json.load(f)
        entries = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
        obs = [r for r in entries.values() if r["resourceType"] == "Observation"]
        self.patient_id = obs[0]["subject"]["identifier"]["value"]
        self.patient_system = obs[0]["subject"]["identifier"].get("system")
        part = [p for p in obs[0]["partOf"] if p.get("type") == "ImagingStudy"][0]
        self.study_uid = part["identifier"]["value"][len("urn:oid:"):]
        taken = {u for u, r in entries.items() if r["resourceType"] == "Observation"}
        grew = True
        while grew:
            grew = False
            for u in list(taken):
                for ref in refs(entries[u]):
                    if ref in entries and ref not in taken and entries[ref]["resourceType"] in SHARED_TYPES:
                        taken.add(ref)
                        grew = True
        self.expected = sorted("%s/%s" % (entries[u]["resourceType"], entries[u]["id"]) for u in taken)
        self.not_shared = sorted("%s/%s" % (r["resourceType"], r["id"]) for u, r in entries.items()
                                 if u not in taken)


def refs(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from refs(v)
    elif isinstance(o, list):
        for v in o:
            yield from refs(v)


def open_report(hub, topic, sr, patient_value=None, study_uid=None, report="r1"):
    ident = {"value": patient_value or sr.patient_id}
    if sr.patient_system and patient_value is None:
        ident["system"] = sr.patient_system
    ctx = [{"key": "report", "resource": {"resourceType": "DiagnosticReport", "id": report,
                                          "status": "preliminary", "code": {"text": "CT report"},
                                          "subject": {"reference": "Patient/p1"}}},
           {"key": "patient", "resource": {"resourceType": "Patient", "id": "p1", "identifier": [ident]}},
           {"key": "study", "resource": {"resourceType": "ImagingStudy", "id": "s1", "status": "available",
                                         "subject": {"reference": "Patient/p1"},
                                         "identifier": [{"system": "urn:dicom:uid",
                                                         "value": "urn:oid:" + (study_uid or sr.study_uid)}]}}]
    status, body = hub.event(topic, "DiagnosticReport-open", ctx)
    eq(status, 202, "DiagnosticReport-open %s" % body)
    return hub.current(topic)["context.versionId"]


class Run:
    outputs = []   # every run's stdout + stderr (token check)


def cast(hub, topic, sr, *extra, token=True, timeout=90, background=False):
    args = [SR2FHIR, "cast", "--hub", hub.url, "--topic", topic, "--retry-delay", "100"]
    if token:
        args += ["--token-file", hub.token_file]
    args += list(extra) + [sr.path]
    env = {k: v for k, v in os.environ.items() if k not in ("SR2FHIR_TOKEN",)}
    if background:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    Run.outputs.append(p.stdout + p.stderr)
    return p


def finish(p, timeout=90):
    o, e = p.communicate(timeout=timeout)
    Run.outputs.append(o + e)
    return p.returncode, o, e


def content_ids(hub, topic):
    anchors = hub.stored(topic)["anchors"]
    return sorted(anchors[0]["resources"].keys()) if anchors else []


# ---- cases ---------------------------------------------------------------------------------

def shares_into_open_report(hub, sr, tmp):
    topic = "t-happy"
    listener_out = os.path.join(tmp, "viewer.jsonl")
    hub.subscribe_listener(topic, "DiagnosticReport-open,DiagnosticReport-update,SyncError", listener_out)
    v1 = open_report(hub, topic, sr)
    p = cast(hub, topic, sr)
    eq(p.returncode, 0, "exit status (stderr %s)" % harness.short(p.stderr))
    updates = hub.requests(topic, "DiagnosticReport-update")
    eq([u["status"] for u in updates], [202], "the hub's answers to updates")
    u = updates[0]
    eq(u["requestVersionId"], v1, "the update's context.versionId")
    ctx = u["body"]["event"]["context"]
    eq([c["key"] for c in ctx], ["report", "patient", "updates"], "context keys")
    eq(ctx[0]["reference"]["reference"], "DiagnosticReport/r1", "report reference")
    eq(ctx[1]["reference"]["reference"], "Patient/p1", "patient reference")
    bundle = ctx[2]["resource"]
    eq((bundle["resourceType"], bundle["type"]), ("Bundle", "transaction"), "updates Bundle")
    eq(sorted(e["request"]["url"] for e in bundle["entry"]), sr.expected, "PUT urls")
    eq({e["request"]["method"] for e in bundle["entry"]}, {"PUT"}, "methods")
    eq(u.get("warnings"), [], "hub warnings")
    v2 = hub.current(topic)["context.versionId"]
    eq(u["versionId"], v2, "the version assigned")
    # the second subscriber got the update with priorVersionId
    wait_for(lambda: "DiagnosticReport-update" in read(listener_out), "the forwarded update")
    fwd = [json.loads(line) for line in read(listener_out).splitlines()
           if '"DiagnosticReport-update"' in line and '"event"' in line]
    eq(len(fwd), 1, "updates forwarded to the listener")
    eq(fwd[0]["event"]["context.priorVersionId"], v1, "forwarded priorVersionId")
    eq(fwd[0]["event"]["context.versionId"], v2, "forwarded versionId")
    eq(fwd[0]["id"], u["id"], "forwarded event id")
    # the stored context: exactly the converted resources, references as Type/id
    eq(content_ids(hub, topic), sr.expected, "the stored content")
    assert sr.not_shared == [] or not set(sr.not_shared) & set(content_ids(hub, topic))
    stored = hub.stored(topic)["anchors"][0]["resources"]
    for key, v in stored.items():
        for ref in refs(v["resource"]):
            assert not ref.startswith("urn:uuid:"), "%s keeps the reference %s" % (key, ref)
    obs = [v["resource"] for k, v in stored.items() if k.startswith("Observation/")]
    eq({o["subject"].get("reference") for o in obs}, {"Patient/p1"}, "Observation.subject")
    assert "shared %d resources with DiagnosticReport/r1 (Patient/p1) on topic t-happy: version %s -> %s" % (
        len(sr.expected), v1, v2) in p.stdout, p.stdout


def concurrent_update(hub, topic, sr, stale_status):
    hub.http("POST", "/_test/config", {"staleStatus": stale_status}, token=False)
    try:
        v1 = open_report(hub, topic, sr)
        status, _ = hub.http("POST", "/_test/fault", {"delayMs": 2500, "events": ["DiagnosticReport-update"],
                                                       "count": 1}, token=False)
        eq(status // 100, 2, "fault rule")
        p = cast(hub, topic, sr, background=True)
        # cast's update holds the fault (the rule is gone): another client updates meanwhile
        wait_for(lambda: hub.http("GET", "/_test/fault", token=False)[1] in ([], {"faults": []}),
                 "cast's update to take the delay")
        other = {"resourceType": "Bundle", "id": "other", "type": "transaction", "entry": [
            {"request": {"method": "PUT", "url": "Observation/other-client"},
             "resource": {"resourceType": "Observation", "id": "other-client", "status": "preliminary",
                          "code": {"text": "dictated"}}}]}
        status, body = hub.event(topic, "DiagnosticReport-update",
                                 [{"key": "report", "reference": {"reference": "DiagnosticReport/r1"}},
                                  {"key": "updates", "resource": other}], version=v1, eid="other-1")
        eq(status, 202, "the other client's update %s" % body)
        rc, o, e = finish(p)
        eq(rc, 0, "exit status (stderr %s)" % harness.short(e))
        assert "(retried after a stale version)" in o, o
        mine = [u for u in hub.requests(topic, "DiagnosticReport-update") if u["id"] != "other-1"]
        eq(len(mine), 2, "cast's update requests")
        eq(mine[0]["stale"], True, "the first was stale")
        eq(mine[0]["status"], stale_status, "the first's answer")
        eq(mine[1]["status"], 202, "the retry's answer")
        assert mine[1]["requestVersionId"] != v1, "the retry used the new version"
        eq(content_ids(hub, topic), sorted(sr.expected + ["Observation/other-client"]), "the stored content")
    finally:
        hub.http("POST", "/_test/config", {"staleStatus": 409}, token=False)


def stale_409_retried(hub, sr, tmp):
    concurrent_update(hub, "t-stale-409", sr, 409)


def stale_syncerror_retried(hub, sr, tmp):
    concurrent_update(hub, "t-stale-syncerror", sr, 202)


def wrong_patient(hub, sr, tmp):
    topic = "t-wrong-patient"
    open_report(hub, topic, sr, patient_value=sr.patient_id + "X")
    p = cast(hub, topic, sr)
    eq(p.returncode, 12, "exit status (stderr %s)" % harness.short(p.stderr))
    assert "another patient" in p.stderr, p.stderr
    eq(hub.requests(topic, "DiagnosticReport-update"), [], "updates sent")
    eq(content_ids(hub, topic), [], "content")


def wrong_study(hub, sr, tmp):
    topic = "t-wrong-study"
    open_report(hub, topic, sr, study_uid="1.2.3.999")
    p = cast(hub, topic, sr)
    eq(p.returncode, 12, "exit status (stderr %s)" % harness.short(p.stderr))
    assert "another study" in p.stderr, p.stderr
    eq(hub.requests(topic, "DiagnosticReport-update"), [], "updates sent")


def no_context(hub, sr, tmp):
    p = cast(hub, "t-empty", sr)
    eq(p.returncode, 12, "exit status")
    assert "no DiagnosticReport context is current" in p.stderr, p.stderr


def waits_for_context(hub, sr, tmp):
    topic = "t-wait"
    p = cast(hub, topic, sr, "--wait", "60", background=True)
    wait_for(lambda: any(r.get("action") == "get-context" for r in hub.requests(topic)), "cast's first look")
    open_report(hub, topic, sr)
    rc, o, e = finish(p)
    eq(rc, 0, "exit status (stderr %s)" % harness.short(e))
    eq(content_ids(hub, topic), sr.expected, "the stored content")


def hub_500_twice_retried(hub, sr, tmp):
    topic = "t-500"
    open_report(hub, topic, sr)
    hub.http("POST", "/_test/fault", {"status": 500, "count": 2, "events": ["DiagnosticReport-update"]},
             token=False)
    p = cast(hub, topic, sr)
    eq(p.returncode, 0, "exit status (stderr %s)" % harness.short(p.stderr))
    ups = hub.requests(topic, "DiagnosticReport-update")
    eq([u["status"] for u in ups], [500, 500, 202], "the hub's answers")
    eq(len({u["id"] for u in ups}), 1, "one event id, repeated")
    eq(content_ids(hub, topic), sr.expected, "the stored content")


def hub_500_forever_fails(hub, sr, tmp):
    topic = "t-500-forever"
    open_report(hub, topic, sr)
    hub.http("POST", "/_test/fault", {"status": 503, "count": 50, "events": ["DiagnosticReport-update"]},
             token=False)
    try:
        p = cast(hub, topic, sr, "--retries", "2")
        eq(p.returncode, 11, "exit status (stderr %s)" % harness.short(p.stderr))
        eq(len(hub.requests(topic, "DiagnosticReport-update")), 3, "tries")
        eq(content_ids(hub, topic), [], "content")
    finally:
        hub.http("DELETE", "/_test/fault", token=False)


def serve_shares_delivered_sr(hub, sr, tmp):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gwservice  # noqa: E402
    from stub_server import StubFhirServer  # noqa: E402
    topic = "t-serve"
    stub = StubFhirServer(fhir_version="5.0.0")
    base = stub.start()
    data = os.path.join(tmp, "serve-data")
    svc = gwservice.Service(data, base, os.path.join(tmp, "serve.log"), "--fhircast-hub", hub.url,
                            "--fhircast-topic", topic, "--fhircast-token-file", hub.token_file,
                            "--log-level", "debug", "--workers", "1")  # one session
    try:
        svc.start()
        v1 = open_report(hub, topic, sr)
        with open(sr.path, "rb") as f:
            status, body = gwservice.stow(svc.address(), f.read())
        eq(status, 200, "STOW-RS %s" % body[:200])
        wait_for(lambda: hub.requests(topic, "DiagnosticReport-update"), "serve's update", seconds=60)
        ups = hub.requests(topic, "DiagnosticReport-update")
        eq([u["status"] for u in ups], [202], "the hub's answers")
        eq(ups[0]["requestVersionId"], v1, "the update's version")
        eq(len(stub.posts_received()), 1, "transactions delivered to the FHIR server")
        eq(content_ids(hub, topic), sr.expected, "the stored content")
        wait_for(lambda: "on the FHIRcast hub" in svc.log_text(), "the log line")
        # the hub drops serve's idle subscription (a notification not answered in time);
        # the next SR subscribes again and is shared
        hub.http("POST", "/_test/config", {"responseTimeoutMs": 300}, token=False)
        v2 = open_report(hub, topic, sr)
        wait_for(lambda: any(e.get("to", {}).get("name") == "sr2fhir-serve" for e in
                             hub.http("GET", "/_test/log?kind=denial", token=False)[1]["entries"]),
                 "the hub to drop serve's subscription")
        hub.http("POST", "/_test/config", {"responseTimeoutMs": 10000}, token=False)
        with open(sr.path, "rb") as f:
            status, body = gwservice.stow(svc.address(), f.read())
        eq(status, 200, "second STOW-RS %s" % body[:200])
        wait_for(lambda: len(hub.requests(topic, "DiagnosticReport-update")) == 2, "the second update",
                 seconds=60)
        ups = hub.requests(topic, "DiagnosticReport-update")
        eq([u["status"] for u in ups], [202, 202], "the hub's answers")
        eq(ups[1]["requestVersionId"], v2, "the second update's version")
        wait_for(lambda: svc.log_text().count("on the FHIRcast hub") == 2, "serve's second 'shared' line")
        assert "FHIRcast: not shared" not in svc.log_text(), svc.log_tail()
        assert TOKEN not in svc.log_text(), "the token in serve's log"
    finally:
        svc.stop()
        stub.stop()
        Run.outputs.append(svc.log_text())


def usage_errors(hub, sr, tmp):
    for args, needle in ((["--hub", hub.url, sr.path], "--topic"),
                         (["--hub", hub.url, "--topic", "t", "--token", "x", sr.path], "secrets"),
                         (["--hub", hub.url, "--topic", "t", "--server", "http://127.0.0.1:1/", sr.path],
                          "not an option of cast"),
                         (["--hub", hub.url, "--topic", "t", "--wait", "-1", sr.path], "--wait"),
                         (["--hub", "http://hub.example/api/hub", "--topic", "t", sr.path], "plain http"),
                         # send's loopback rule (deliver/http.c): a name starting "127." is not loopback
                         (["--hub", "http://127.example.org/api/hub", "--topic", "t", sr.path],
                          "127.example.org, which is not loopback")):
        p = subprocess.run([SR2FHIR, "cast"] + args, capture_output=True, text=True, timeout=60)
        eq(p.returncode, 2, "exit status of %s (stderr %s)" % (args, harness.short(p.stderr)))
        assert needle in p.stderr, p.stderr


def r4_form_shared(hub, sr, tmp):
    topic = "t-r4"
    open_report(hub, topic, sr)
    p = cast(hub, topic, sr, "--fhir-version", "R4")
    eq(p.returncode, 0, "exit status (stderr %s)" % harness.short(p.stderr))
    stored = hub.stored(topic)["anchors"][0]["resources"]
    obs = [v["resource"] for k, v in stored.items() if k.startswith("Observation/")]
    assert obs, "no Observation shared"
    # R4 (M25): Observation.bodySite, no R5-only bodyStructure member
    assert all("bodyStructure" not in o for o in obs), "an R5 member in the R4 form"


def token_required_and_never_printed(hub, sr, tmp):
    topic = "t-token"
    open_report(hub, topic, sr)
    p = cast(hub, topic, sr, token=False)
    eq(p.returncode, 10, "exit status without a token (stderr %s)" % harness.short(p.stderr))
    assert "401" in p.stderr, p.stderr
    log = hub.http("GET", "/_test/log?kind=request", token=False)[1]["entries"]
    eq((log[-1]["method"], log[-1]["status"], log[-1]["auth"]), ("POST", 401, "missing"),
       "the refused subscription (cast's only request)")
    mark = log[-1]["seq"]
    p = cast(hub, topic, sr)
    eq(p.returncode, 0, "exit status with the token")
    log = hub.http("GET", "/_test/log?kind=request&since=%d" % mark, token=False)[1]["entries"]
    eq(sorted({r["action"] for r in log}), ["context-change", "get-context", "subscribe", "unsubscribe"],
       "cast's requests")
    eq({r["auth"] for r in log}, {"ok"}, "the token on every request of cast")
    leaks = [o for o in Run.outputs if TOKEN in o]
    eq(leaks, [], "outputs holding the token")
    eq(TOKEN in read(os.path.join(tmp, "hub.log")), False, "token in the hub's log file")


def main():
    if not os.access(SR2FHIR, os.X_OK):
        out("SKIP cast: no binary %s" % SR2FHIR)
        return 0
    if not os.path.exists(HUB_SH) or not shutil.which("node"):
        out("SKIP cast: no FHIRcast hub tool (%s) or node" % HUB_SH)
        return 0
    sample = CORPUS_SR if os.path.exists(CORPUS_SR) else os.path.join(FIX, "explicit_le.dcm")
    if not os.path.exists(sample):
        out("SKIP cast: no sample SR (corpus or make fixtures)")
        return 0
    tmp = tempfile.mkdtemp(prefix="test_cast.")
    hub = Hub(tmp)
    try:
        try:
            hub.start()
        except harness.SkipTest as e:
            out("SKIP cast: %s" % e)
            return 0
        sr = Sr(sample, tmp)
        for case in (shares_into_open_report, stale_409_retried, stale_syncerror_retried, wrong_patient,
                     wrong_study, no_context, waits_for_context, hub_500_twice_retried,
                     hub_500_forever_fails, serve_shares_delivered_sr, usage_errors, r4_form_shared,
                     token_required_and_never_printed):
            harness.test("cast_" + case.__name__, case, hub, sr, tmp)
    finally:
        hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
