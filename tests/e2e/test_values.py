#!/usr/bin/python3
"""tests/e2e/test_values.py - values the converter must neither lose nor write wrongly:
issue 9 defect 9 (out-of-range and non-DS Numeric Values, over-long DS, NUM without a concept
name, Content Sequence written with VR OB), issue 10 defect 3 (a Numeric Value Qualifier
beside a value) and issue 10 defect 9 (precision of Observation DateTime and of a DS whose
Floating Point Value is the same number). Rules M9, M20, M26.

The fixtures come from tests/fixtures/gen_values.py (into a temporary folder); each Bundle
is also checked by ../shared/tools/fhir-validate when it is there.
Prints PASS/FAIL/SKIP lines for tests/run.sh. Environment: ROOT, BUILD, SR2FHIR, PYTHON,
SHARED.
"""
import decimal
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import SR2FHIR, VALIDATE, SkipTest, eq, out, test  # noqa: E402

DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
DCM = "http://dicom.nema.org/resources/ontology/DCM"

TMP = tempfile.mkdtemp(prefix="sr2fhir-values-")


class Result:
    """One conversion: exit status, stderr, the Bundle's text and its parsed form."""

    def __init__(self, name, *args):
        path = os.path.join(TMP, name + ".dcm")
        self.json_path = os.path.join(TMP, name + "%s.json" % "".join(args).replace("-", "_"))
        p = subprocess.run([SR2FHIR, "convert", *args, path, "-o", self.json_path],
                           capture_output=True, text=True)
        self.rc, self.stderr = p.returncode, p.stderr
        assert self.rc == 0, "convert %s: exit %d: %s" % (name, self.rc, self.stderr[-400:])
        with open(self.json_path, encoding="utf-8") as f:
            self.text = f.read()
        self.bundle = json.loads(self.text, parse_float=decimal.Decimal)

    def obs(self):
        return [e["resource"] for e in self.bundle["entry"]
                if e["resource"]["resourceType"] == "Observation"]

    def by_code(self, code):
        found = [o for o in self.obs()
                 if any(c.get("code") == code for c in o["code"].get("coding", []))]
        assert len(found) == 1, "%d Observations with code %s" % (len(found), code)
        return found[0]

    def warning(self, position, words):
        lines = [ln for ln in self.stderr.splitlines()
                 if "content item %s:" % position in ln and words in ln]
        assert lines, "no warning at %s saying %r in: %s" % (position, words, self.stderr)


_cache = {}


def conv(name, *args):
    key = (name,) + args
    if key not in _cache:
        _cache[key] = Result(name, *args)
    return _cache[key]


def absent(o, reason):
    q = o.get("valueQuantity", {})
    assert "value" not in q, "valueQuantity.value written: %r" % q.get("value")
    eq([x.get("valueCode") for x in q.get("extension", []) if x.get("url") == DAR], [reason],
       "data-absent-reason")


def number_text(o):
    v = o["valueQuantity"]["value"]
    return str(v)


# ---------------------------------------------------------------------------------------
# Issue 9 defect 9 (M20, M26)
# ---------------------------------------------------------------------------------------
def t_out_of_range(code, position):
    def run():
        r = conv("values_numbers")
        absent(r.by_code(code), "error")
        r.warning(position, "out of the range")
        assert "1e999" not in r.text.replace('"1e999', ""), "1e999 written as a number"
    return run


def t_not_ds(code, position):
    def run():
        r = conv("values_numbers")
        absent(r.by_code(code), "error")
        r.warning(position, "not a decimal string")
    return run


def t_long_ds():
    r = conv("values_numbers")
    r.warning("1.5.1.9", "longer than the 16 characters")
    eq(number_text(r.by_code("V7")), "1.23456789012345678", "19-character DS used as written")


def t_nameless_num():
    r = conv("values_numbers")
    r.warning("1.5.1.10", "no Concept Name")


def t_ob_content_sequence():
    r = conv("values_ob")
    assert "VR OB" in r.stderr, "no warning about VR OB: %s" % r.stderr
    m = r.by_code("410668003")
    eq(number_text(m), "7", "the NUM inside the OB Content Sequence")
    g = r.by_code("125007")
    eq(len(g.get("hasMember", [])), 1, "group members")


# ---------------------------------------------------------------------------------------
# Issue 10 defect 3 (M20): a qualifier beside a value
# ---------------------------------------------------------------------------------------
def coding(cc):
    return [(c.get("system"), c.get("code")) for c in cc.get("coding", [])]


def t_qualifier_beside_value():
    r = conv("values_qualifier")
    o = r.by_code("410668003")
    eq(number_text(o), "250", "value")
    eq([coding(i) for i in o.get("interpretation", [])], [[(DCM, "114009")]], "interpretation")


def t_qualifier_on_component():
    r = conv("values_qualifier")
    o = r.by_code("118565006")
    comps = o.get("component", [])
    eq(len(comps), 1, "components")
    eq(number_text(comps[0]), "3", "component value")
    eq([coding(i) for i in comps[0].get("interpretation", [])], [[(DCM, "114004")]],
       "component interpretation")


def t_qualifier_r4():
    r = conv("values_qualifier", "--fhir-version", "R4")
    o = r.by_code("410668003")
    eq([coding(i) for i in o.get("interpretation", [])], [[(DCM, "114009")]], "R4 interpretation")


# ---------------------------------------------------------------------------------------
# Issue 10 defect 9 (M9, M20): precision
# ---------------------------------------------------------------------------------------
def value_map(r):
    return {number_text(o): o for o in r.obs() if "value" in o.get("valueQuantity", {})}


def t_ds_digits():
    r = conv("values_precision")
    vals = value_map(r)
    assert "10.0" in vals, "DS 10.0 with Floating Point Value 10 not written 10.0: %s" % sorted(vals)
    assert "2.50" in vals, "DS 2.50 with Floating Point Value 2.5 not written 2.50: %s" % sorted(vals)
    assert '"value":10.0' in r.text.replace(" ", ""), "raw text"
    assert "3.141592653589793" in vals, "a different Floating Point Value still wins"


def t_dt_precision():
    r = conv("values_precision")
    vals = value_map(r)
    got = {v: (vals[v].get("effectiveDateTime"), vals[v].get("issued")) for v in "1234"}
    eq(got["1"], ("2020-01", "2020-01-01T00:00:00+01:00"), "DT 202001")
    eq(got["2"], ("2020-01-15", "2020-01-15T00:00:00+01:00"), "DT 20200115")
    eq(got["3"], ("2020-01-15T12:00:00+01:00", "2020-01-15T12:00:00+01:00"), "DT 2020011512")
    eq(got["4"], ("2020-01-15", "2020-01-15T00:00:00+01:00"), "DT 20200115+0100: no zone "
       "without a time")


def t_content_date_only():
    r = conv("values_date_only")
    for o in r.obs():
        eq((o.get("effectiveDateTime"), o.get("issued")), ("2024-01-31", "2024-01-31T00:00:00+01:00"),
           "Content Date without Content Time")


# ---------------------------------------------------------------------------------------
# Validator
# ---------------------------------------------------------------------------------------
def t_validator(name):
    def run():
        if not os.path.exists(VALIDATE):
            raise SkipTest("no %s" % VALIDATE)
        r = conv(name)
        p = harness.validator(r.json_path, "--external-refs-ok")
        assert p.returncode == 0, "validator: %s" % (p.stdout + p.stderr).decode()[-600:]
    return run


def main():
    p = harness.run_fixture_script("gen_values.py", TMP)
    if p.returncode != 0:
        out("FAIL gen_values.py: %s" % p.stderr.decode()[-400:])
        return 1
    for code, pos, text in [("V0", "1.5.1.2", "1e999"), ("V1", "1.5.1.3", "-1e999"),
                            ("V2", "1.5.1.4", "1e-999")]:
        test("issue 9 defect 9 M20: Numeric Value %s is out of range: data-absent (error) with "
             "a warning" % text, t_out_of_range(code, pos))
    for code, pos, text in [("V3", "1.5.1.5", "NaN"), ("V4", "1.5.1.6", "inf"),
                            ("V5", "1.5.1.7", "0x10"), ("V6", "1.5.1.8", "1,5")]:
        test("issue 9 defect 9 M20: Numeric Value %s is no DS: data-absent (error) with a "
             "warning" % text, t_not_ds(code, pos))
    test("issue 9 defect 9 M20: a 19-character DS warns and is used as written", t_long_ds)
    test("issue 9 defect 9 M26: a NUM without a concept name warns", t_nameless_num)
    test("issue 9 defect 9 M1: Content Sequence with VR OB is read like UN, with a warning",
         t_ob_content_sequence)
    test("issue 10 defect 3 M20: qualifier 114009 beside the value 250 -> interpretation",
         t_qualifier_beside_value)
    test("issue 10 defect 3 M20: a qualifier beside a component's value -> its interpretation",
         t_qualifier_on_component)
    test("issue 10 defect 3 M25: the qualifier in R4 output too", t_qualifier_r4)
    test("issue 10 defect 9 M20: DS 10.0 / 2.50 with the same Floating Point Value keep the "
         "DS digits", t_ds_digits)
    test("issue 10 defect 9 M9: effectiveDateTime keeps the DT's precision (2020-01, "
         "2020-01-15), issued is a full instant", t_dt_precision)
    test("issue 10 defect 9 M9: Content Date without Content Time -> effective 2024-01-31",
         t_content_date_only)
    for name in ("values_numbers", "values_qualifier", "values_precision", "values_date_only",
                 "values_ob"):
        test("issue 9/10 validator-clean Bundle of %s" % name, t_validator(name))
    return harness.exit_code()


if __name__ == "__main__":
    sys.exit(main())
