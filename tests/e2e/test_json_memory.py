#!/usr/bin/python3
"""tests/e2e/test_json_memory.py - issue 9 defect 2 (DICOM JSON memory, rule M1) and the JSON
half of defect 9 (a NUL inside a JSON string).

A report of 500 measurement groups (10,012 content items, tests/fixtures/gen_large.py) is
written as DICOM JSON by pydicom (keys sorted: "Value" before "vr") and again with "vr"
first; the Part 10 twin is made from that JSON by pydicom (so that DS texts agree).
Converting the JSON must peak at no more than 4 x the file + 16 MiB of resident memory
(ru_maxrss of the child; the json-c DOM took ~32 x) and give a Bundle byte-identical to the
twin's. Memory is asserted, never wall time (that is in bench/convert.sh).
A string holding U+0000 must be refused as malformed input (exit 4), not truncated.
Prints PASS/FAIL/SKIP lines for tests/run.sh.

Environment: ROOT, BUILD, SR2FHIR.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import ROOT, SR2FHIR, out  # noqa: E402

GROUPS = 500
ITEMS = 12 + 20 * GROUPS   # gen_large.py: frame items + 20 per measurement group
MIB = 1024 * 1024
TIME = "/usr/bin/time"   # GNU time (Debian package time)


def run_measured(args):
    """Runs args under GNU time; returns (exit code, stderr text, peak RSS in bytes). (The
    child's own ru_maxrss would include this Python, copied by fork before the exec.)"""
    with tempfile.NamedTemporaryFile(mode="r") as rss:
        p = subprocess.run([TIME, "-q", "-f", "%M", "-o", rss.name] + args,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        text = rss.read().strip().splitlines()
        return p.returncode, p.stderr, int(text[-1]) * 1024 if text else -1


def vr_first(node):
    """The same DICOM JSON with "vr" as the first member of every element."""
    if isinstance(node, list):
        return [vr_first(v) for v in node]
    if not isinstance(node, dict):
        return node
    if "vr" in node:
        ordered = {"vr": node["vr"]}
        ordered.update((k, vr_first(v)) for k, v in node.items() if k != "vr")
        return ordered
    return {k: vr_first(v) for k, v in node.items()}


def part10_twin(pydicom, json_path, dcm_path):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    with open(json_path, encoding="utf-8") as f:
        ds = pydicom.Dataset.from_json(json.load(f))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(dcm_path, write_like_original=False)


def check_shape(name, tmp, json_path, twin_bundle):
    size = os.path.getsize(json_path)
    bundle = os.path.join(tmp, name + ".bundle.json")
    rc, err, rss = run_measured([SR2FHIR, "convert", "-q", json_path, "-o", bundle])
    if rc != 0:
        out("FAIL issue9_d2_%s_json_converts: exit %d: %s" % (name, rc, err.strip()[:300]))
        return
    limit = 4 * size + 16 * MIB
    if rss <= limit:
        out("PASS issue9_d2_%s_json_peak_rss_within_4x_file_plus_16MiB (%.1f MiB for a "
            "%.1f MiB file, limit %.1f MiB)" % (name, rss / MIB, size / MIB, limit / MIB))
    else:
        out("FAIL issue9_d2_%s_json_peak_rss_within_4x_file_plus_16MiB: %.1f MiB for a "
            "%.1f MiB file, limit %.1f MiB" % (name, rss / MIB, size / MIB, limit / MIB))
    with open(bundle, "rb") as a, open(twin_bundle, "rb") as b:
        same = a.read() == b.read()
    out("%s issue9_d2_%s_json_bundle_identical_to_part10_twin%s" % (
        "PASS" if same else "FAIL", name, "" if same else ": the Bundles differ"))


def check_nul(tmp):
    """9#9: "S\\u0000R" was read as "S" by json-c; now refused (exit 4)."""
    path = os.path.join(tmp, "nul.json")
    with open(path, "w") as f:
        f.write('{"00080060": {"vr": "CS", "Value": ["S\\u0000R"]}, '
                '"0040A040": {"vr": "CS", "Value": ["CONTAINER"]}}')
    p = subprocess.run([SR2FHIR, "dump", path], capture_output=True, text=True)
    ok = p.returncode == 4 and "U+0000" in p.stderr and '$["00080060"].Value[0]' in p.stderr
    out("%s issue9_d9_json_nul_in_string_refused_not_truncated%s" % (
        "PASS" if ok else "FAIL", "" if ok else ": exit %d, %s" % (p.returncode,
                                                                   p.stderr.strip()[:200])))


def main():
    if not os.access(SR2FHIR, os.X_OK):
        out("FAIL json-memory: %s is not built" % SR2FHIR)
        return 1
    with tempfile.TemporaryDirectory(prefix="sr2fhir-jsonmem-") as tmp:
        check_nul(tmp)
        if not os.access(TIME, os.X_OK):
            out("SKIP issue9_d2_json_memory: %s absent (apt-get install time)" % TIME)
            return 0
        try:
            import pydicom
        except ImportError:
            out("SKIP issue9_d2_json_memory: %s has no pydicom (apt-get install "
                "python3-pydicom)" % sys.executable)
            return 0
        src = os.path.join(tmp, "large.dcm")
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/fixtures/gen_large.py"), src,
                        str(ITEMS)], check=True, stdout=subprocess.DEVNULL)
        text = pydicom.dcmread(src).to_json()   # pydicom sorts keys: "Value" before "vr"
        sorted_path = os.path.join(tmp, "pydicom.json")
        with open(sorted_path, "w", encoding="utf-8") as f:
            f.write(text)
        vr_first_path = os.path.join(tmp, "vrfirst.json")
        with open(vr_first_path, "w", encoding="utf-8") as f:
            json.dump(vr_first(json.loads(text)), f, separators=(",", ":"))
        dcm = os.path.join(tmp, "twin.dcm")   # both JSONs hold the same data set
        part10_twin(pydicom, sorted_path, dcm)
        twin_bundle = os.path.join(tmp, "twin.bundle.json")
        rc, err, _ = run_measured([SR2FHIR, "convert", "-q", dcm, "-o", twin_bundle])
        if rc != 0:
            out("FAIL issue9_d2_part10_twin_converts: exit %d: %s" % (rc, err.strip()[:300]))
            return 0
        check_shape("value_before_vr", tmp, sorted_path, twin_bundle)
        check_shape("vr_first", tmp, vr_first_path, twin_bundle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
