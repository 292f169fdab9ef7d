"""tests/lib/fhirserver.py - what the integration tests of `send` and of the gateway share
about the real FHIR server (../shared/tools/fhir-server, harness.FhirServerTool) and about
what must arrive there: plain HTTP to it (stdlib, proxies ignored), counting resources per
type (`Type?_summary=count`), listing them by id, $reset; the Bundle `sr2fhir convert`
makes of a file (what a delivery must leave on the server) and the resource ids in it.

A test program imports it as it imports harness:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import fhirserver
"""
import json
import os
import re
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import SR2FHIR, short

# The resource types a delivery may leave on an R5 / R4 server, and those the converter makes
# itself (Patient, ServiceRequest and ImagingStudy are only looked up and referenced).
R5_TYPES = ("Observation", "ImagingSelection", "Device", "Practitioner", "BodyStructure",
            "Patient", "ServiceRequest", "ImagingStudy")
R4_TYPES = tuple(t for t in R5_TYPES if t != "ImagingSelection")
MADE_TYPES = ("Observation", "ImagingSelection", "Device", "Practitioner", "BodyStructure")

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method, url, body=None, timeout=60):
    """(status, parsed JSON body, or the raw bytes when not JSON, or None when empty)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/fhir+json",
                                          "Accept": "application/fhir+json"})
    try:
        with _opener.open(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        return status, raw


class FhirServer(harness.FhirServerTool):
    """The FHIR server tool (harness.FhirServerTool: free port, pid and log in `workdir`,
    stopped at exit) with the requests tests make of it."""

    def __init__(self, version, workdir, **extra_env):
        super().__init__(version, workdir, **extra_env)
        self._get_cache = {}

    def log(self):
        try:
            return open(os.path.join(self.dir, "log"), encoding="utf-8", errors="replace").read()
        except OSError:
            return ""

    def reset(self):
        status, _ = http("POST", self.base + "/$reset")
        assert status == 200, "$reset: HTTP %d" % status
        self._get_cache = {}

    def create(self, resource):
        status, body = http("POST", "%s/%s" % (self.base, resource["resourceType"]), resource)
        assert status == 201 and isinstance(body, dict), "create %s: HTTP %d %s" % (
            resource["resourceType"], status, short(body))
        return body["id"]

    def count(self, rtype):
        status, body = http("GET", "%s/%s?_summary=count" % (self.base, rtype))
        assert status == 200 and "total" in body, "count %s: HTTP %d %s" % (rtype, status,
                                                                             short(body))
        return body["total"]

    def counts(self, types):
        return {t: self.count(t) for t in types}

    def search(self, query):
        """Every resource a search finds (following next links)."""
        url = "%s/%s%s_count=1000" % (self.base, query, "&" if "?" in query else "?")
        found = []
        while url:
            status, body = http("GET", url)
            assert status == 200 and isinstance(body, dict), "GET %s: HTTP %d %s" % (
                url, status, short(body))
            found += [e["resource"] for e in body.get("entry", [])]
            url = ([ln["url"] for ln in body.get("link", []) if ln.get("relation") == "next"]
                   or [None])[0]
        return found

    def all(self, rtype):
        return {r["id"]: r for r in self.search(rtype)}

    def get_status(self, ref):
        if ref not in self._get_cache:
            self._get_cache[ref] = http("GET", "%s/%s" % (self.base, ref))[0]
        return self._get_cache[ref]

    def lookups_logged(self, since):
        """The searches the server saw after log offset `since`: [(type, {param: value})]
        (needs FHIR_LOG=1 in the tool's environment)."""
        found = []
        for line in self.log()[since:].splitlines():
            m = re.match(r"^GET /fhir/([A-Za-z]+)\?(\S*) -> ", line)
            if m:
                found.append((m.group(1), dict(urllib.parse.parse_qsl(m.group(2)))))
        return found


def stored(server, types):
    """{Type: set of ids} of `types` on the server."""
    return {t: set(server.all(t)) for t in types}


_converted = {}


def convert(path, version="R5", *opts):
    """The Bundle `sr2fhir convert` makes of path (what a delivery must leave), cached."""
    key = (path, version) + opts
    if key not in _converted:
        fd, dst = tempfile.mkstemp(prefix="sr2fhir-convert-", suffix=".json")
        os.close(fd)
        try:
            p = subprocess.run([SR2FHIR, "convert", "-q", "--fhir-version", version, *opts,
                                path, "-o", dst],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            assert p.returncode == 0, "convert %s: exit %d: %s" % (
                path, p.returncode, short(p.stderr.decode("utf-8", "replace")))
            with open(dst, encoding="utf-8") as f:
                _converted[key] = json.load(f)
        finally:
            os.unlink(dst)
    return _converted[key]


def resources(bundle, rtype=None):
    return [e["resource"] for e in bundle.get("entry", [])
            if rtype is None or e["resource"]["resourceType"] == rtype]


def refs_of(bundle):
    """Type/id of every resource of the Bundle."""
    return {"%s/%s" % (r["resourceType"], r["id"]) for r in resources(bundle)}


def ids_of(bundle, rtype):
    return {r["id"] for r in resources(bundle, rtype)}


def expected_ids(bundles, types=MADE_TYPES):
    """{Type: set of ids} the Bundles leave on a server that had none of them (shared
    resources, e.g. one Device in several reports, counted once)."""
    return {t: set().union(*[ids_of(b, t) for b in bundles]) for t in types}
