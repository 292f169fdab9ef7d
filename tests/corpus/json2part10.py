#!/usr/bin/env python3
"""Writes a DICOM JSON file as Explicit VR Little Endian Part 10 with pydicom, so that
DCMTK's dsrdump can serve as the oracle for JSON input (tests/corpus/test_dsrdump.py).
Applies the one lenient fix-up M1 allows (a bare "Value" instead of an array)."""
import json
import sys

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian


def fix(node):
    if isinstance(node, dict):
        for v in node.values():
            if isinstance(v, dict) and "vr" in v:
                if "Value" in v and not isinstance(v["Value"], list):
                    v["Value"] = [v["Value"]]
                for item in v.get("Value", []):
                    if isinstance(item, dict) and v["vr"] == "SQ":
                        fix(item)
    return node


data = json.load(open(sys.argv[1], encoding="utf-8"))
if isinstance(data, list):
    data = data[0]
ds = pydicom.Dataset.from_json(fix(data))
ds.file_meta = FileMetaDataset()
ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.save_as(sys.argv[2], write_like_original=False)
