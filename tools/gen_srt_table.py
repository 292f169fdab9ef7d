#!/usr/bin/python3
"""gen_srt_table.py - generates src/fhir/srt_table.h, the legacy SNOMED-RT (SRT) -> SNOMED CT
table of MAPPING rule M23.

Source: the SRT <-> SCT mapping of DICOM PS3.16 as shipped by Debian's python3-pydicom
(module pydicom.sr._snomed_dict, dict `mapping['SRT']`: SRT code -> SNOMED CT concept id).
The script checks that the two directions of pydicom's table agree, that every key looks
like an SRT code and every value like an SCT concept id, and writes the pairs sorted by
SRT code (strcmp order) so the C code can binary-search them.

Regenerate (from the checkout; the build itself never needs Python): `make regen`, or

    /usr/bin/python3 tools/gen_srt_table.py [OUTPUT.h]

(default: the committed src/fhir/srt_table.h). scripts/check-generated.sh writes to a
temporary folder and compares; docs/generated.md.
"""
import os
import re
import sys

from pydicom.sr._snomed_dict import mapping

from gen_record import output_path, record_block, write_text

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "fhir",
                   "srt_table.h")

SRT_RE = re.compile(r"^[A-Z0-9]{1,3}-[A-Z0-9]{1,6}$")
SCT_RE = re.compile(r"^[1-9][0-9]{5,17}$")


def main() -> int:
    srt = mapping["SRT"]
    sct = mapping["SCT"]
    # The two directions must be exact inverses, or the source is not what we think it is.
    if len(srt) != len(sct) or any(sct.get(v) != k for k, v in srt.items()):
        sys.exit("gen_srt_table.py: pydicom's SRT and SCT tables are not inverse of each other")
    for k, v in srt.items():
        if not SRT_RE.match(k) or not SCT_RE.match(v):
            sys.exit(f"gen_srt_table.py: unexpected entry {k!r} -> {v!r}")
        if len(k) >= 12 or len(v) >= 20:  # the char arrays of s2f_srt_pair
            sys.exit(f"gen_srt_table.py: entry {k!r} -> {v!r} too long for the table")
    # strcmp order = byte order; the keys are ASCII.
    pairs = sorted(srt.items(), key=lambda kv: kv[0].encode("ascii"))

    record = record_block("tools/gen_srt_table.py", ["pydicom.sr._snomed_dict"])
    out = [f"""/*
 * srt_table.h - GENERATED, do not edit: legacy SNOMED-RT (DICOM Coding Scheme Designator
 * "SRT") codes -> SNOMED CT concept ids, for MAPPING rule M23.
 *
 * Source: the SRT/SCT mapping of DICOM PS3.16 as distributed in pydicom
 * (dict mapping['SRT'] of the module below), {len(pairs)} pairs.
 *
{record}
 *
 * Sorted by SRT code in strcmp (byte) order; looked up by binary search in codes.c.
 */
#ifndef S2F_SRT_TABLE_H
#define S2F_SRT_TABLE_H

typedef struct s2f_srt_pair {{
    char srt[12];   /* arrays, not pointers: no load-time relocation per entry */
    char sct[20];
}} s2f_srt_pair;

static const s2f_srt_pair s2f_srt_table[] = {{
"""]
    for k, v in pairs:
        out.append(f'    {{"{k}", "{v}"}},\n')
    out.append("""};

#define S2F_SRT_TABLE_LEN (sizeof s2f_srt_table / sizeof s2f_srt_table[0])

#endif
""")
    write_text(output_path(OUT), "".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
