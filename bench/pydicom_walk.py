#!/usr/bin/python3
"""Read a DICOM SR with pydicom and walk its whole content tree: the "pydicom
read-and-walk" peer of `sr2fhir convert` in bench/convert.sh.

Usage: /usr/bin/python3 bench/pydicom_walk.py FILE

dcmread()s FILE, then visits every content item of the ContentSequence tree recursively
and touches what a converter has to read: RelationshipType, ValueType, the concept name
code, and the value of each value type (TEXT, CODE, NUM with units and qualifier, UIDREF,
DATE/TIME/DATETIME, PNAME, SCOORD/SCOORD3D graphic data, IMAGE/COMPOSITE references
with frames and segments, CONTAINER continuity and template). pydicom converts raw
elements to values on first access, so this forces the whole tree to be parsed.
Prints the number of content items (the root container counts as one, as in
`sr2fhir dump`). Needs Debian's python3 with pydicom (apt-get install python3-pydicom).
"""
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import pydicom  # noqa: E402


def code(seq):
    """Touch the first code of a code sequence; returns a tuple (or None)."""
    if not seq:
        return None
    c = seq[0]
    return (c.get("CodeValue"), c.get("CodingSchemeDesignator"),
            c.get("CodingSchemeVersion"), c.get("CodeMeaning"))


def value(item, vt):
    """Touch the value of one content item of value type vt."""
    if vt == "TEXT":
        return item.get("TextValue")
    if vt == "CODE":
        return code(item.get("ConceptCodeSequence"))
    if vt == "NUM":
        out = []
        for mv in item.get("MeasuredValueSequence") or []:
            out.append((mv.get("NumericValue"), mv.get("FloatingPointValue"),
                        code(mv.get("MeasurementUnitsCodeSequence"))))
        out.append(code(item.get("NumericValueQualifierCodeSequence")))
        return out
    if vt == "UIDREF":
        return item.get("UID")
    if vt == "DATE":
        return item.get("Date")
    if vt == "TIME":
        return item.get("Time")
    if vt == "DATETIME":
        return item.get("DateTime")
    if vt == "PNAME":
        return str(item.get("PersonName") or "")
    if vt in ("SCOORD", "SCOORD3D"):
        return (item.get("GraphicType"), list(item.get("GraphicData") or []),
                item.get("ReferencedFrameOfReferenceUID"))
    if vt in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        out = []
        for ref in item.get("ReferencedSOPSequence") or []:
            out.append((ref.get("ReferencedSOPClassUID"), ref.get("ReferencedSOPInstanceUID"),
                        ref.get("ReferencedFrameNumber"), ref.get("ReferencedSegmentNumber")))
        return out
    if vt == "CONTAINER":
        return (item.get("ContinuityOfContent"),
                [(t.get("MappingResource"), t.get("TemplateIdentifier"))
                 for t in item.get("ContentTemplateSequence") or []])
    return None


def walk(items):
    """Visit items and their subtrees; returns how many content items were visited."""
    n = 0
    for item in items:
        vt = item.get("ValueType")
        item.get("RelationshipType")
        code(item.get("ConceptNameCodeSequence"))
        value(item, vt)
        n += 1 + walk(item.get("ContentSequence") or [])
    return n


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: pydicom_walk.py FILE\n")
        return 2
    ds = pydicom.dcmread(argv[1])
    # the root is itself a CONTAINER content item (its attributes are in the data set)
    code(ds.get("ConceptNameCodeSequence"))
    value(ds, ds.get("ValueType"))
    print(1 + walk(ds.get("ContentSequence") or []))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
