#!/usr/bin/python3
"""gen_dictionary.py - writes src/dicom/dictionary_table.h from Debian's pydicom tables.

The C reader needs the VR of each standard tag (to read Implicit VR data sets) and the
keyword (for messages and dumps), plus names of transfer syntax and SOP class UIDs. This
script turns pydicom's data dictionary (pydicom._dicom_dict.DicomDictionary) and UID
dictionary (pydicom._uid_dict.UID_dictionary) into two sorted static const C tables. The
generated header is committed, so building the library never needs Python.

Rules: repeating-group entries (keys with 'x', e.g. 60xx) are skipped; for multi-VR
entries ("US or SS", "OB or OW") the first VR is kept; "NONE" (item tags) becomes 0.
UID names: transfer syntaxes and SOP classes only; a trailing " Storage" is dropped from
SOP class names ("Enhanced SR Storage" -> "Enhanced SR").

Usage: `make regen`, or /usr/bin/python3 tools/gen_dictionary.py [OUTPUT.h] (default: the
committed src/dicom/dictionary_table.h). scripts/check-generated.sh writes to a temporary
folder and compares; docs/generated.md.
"""
import os
import sys

from pydicom._dicom_dict import DicomDictionary
from pydicom._uid_dict import UID_dictionary

from gen_record import output_path, record_block, write_text

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "dicom",
                   "dictionary_table.h")


def c_string(s):
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            raise ValueError("non-ASCII text in dictionary: %r" % s)
    return '"' + "".join(out) + '"'


def vr_code(vr):
    first = vr.split(" or ")[0].strip()
    if len(first) != 2 or not first.isalpha() or not first.isupper():
        return "0"
    return "S2F_VR('%s', '%s')" % (first[0], first[1])


def tag_rows():
    rows = []
    for tag, entry in DicomDictionary.items():
        if not isinstance(tag, int):
            continue  # a repeating-group mask such as "60xx3000": not a single tag
        vr, keyword = entry[0], entry[4]
        rows.append((tag, vr_code(vr), keyword))
    rows.sort()
    return rows


def uid_rows():
    rows = []
    for uid, entry in UID_dictionary.items():
        name, kind = entry[0], entry[1]
        if kind not in ("Transfer Syntax", "SOP Class", "Meta SOP Class"):
            continue
        if kind == "SOP Class" and name.endswith(" Storage"):
            name = name[: -len(" Storage")]
        rows.append((uid, name))
    rows.sort(key=lambda r: r[0].encode("ascii"))  # strcmp order
    return rows


def main():
    rows = tag_rows()
    # Keywords live in one string pool indexed by offset: a table of pointers would cost
    # a load-time relocation per entry in a position-independent executable.
    offsets, pool = [], []
    at = 0
    for _, _, keyword in rows:
        offsets.append(at)
        pool.append(keyword)
        at += len(keyword) + 1
    lines = [
        "/*",
        " * dictionary_table.h - GENERATED from pydicom's data dictionary; do not edit.",
        " * Included only by dictionary.c.",
        " *",
        record_block("tools/gen_dictionary.py", ["pydicom._dicom_dict", "pydicom._uid_dict"]),
        " */",
        "#ifndef S2F_DICTIONARY_TABLE_H",
        "#define S2F_DICTIONARY_TABLE_H",
        "",
        "/* Keywords, NUL-separated; s2f_dict_entry.keyword is an offset into this. */",
        "static const char s2f_dict_keywords[] =",
    ]
    for keyword in pool:
        lines.append("    %s \"\\0\"" % c_string(keyword))
    lines += [";", "", "/* Sorted by tag. */", "static const s2f_dict_entry s2f_dict_table[] = {"]
    for (tag, vr, _), off in zip(rows, offsets):
        lines.append("    {0x%08XU, %s, %du}," % (tag, vr, off))
    lines += ["};", "", "/* Sorted by strcmp of the UID. */",
              "static const s2f_uid_entry s2f_uid_table[] = {"]
    for uid, name in uid_rows():
        lines.append("    {%s, %s}," % (c_string(uid), c_string(name)))
    lines += ["};", "", "#endif", ""]
    write_text(output_path(OUT), "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
