#!/usr/bin/python3
"""st_read.py - an independent safetensors reader for the tests (struct,
json and numpy only, following the documented layout).

st_read.py FILE          print the file: "meta KEY VALUE" lines (by key),
                         "order NAME..." (tensors by data offset), then one
                         "NAME DTYPE [SHAPE] V..." line per tensor (by name),
                         floats as %.17g; exits 1 on a layout violation.
st_read.py --write FILE  write the fixture the C test expects (unpadded
                         header, a misaligned F32, an F16 dgm refuses).
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16,
          "U16": np.uint16, "F16": np.float16, "I32": np.int32,
          "U32": np.uint32, "F32": np.float32, "I64": np.int64,
          "U64": np.uint64, "F64": np.float64}


def fail(msg):
    print("st_read.py: " + msg, file=sys.stderr)
    sys.exit(1)


def read(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    for k in sorted(meta):
        print("meta %s %s" % (k, meta[k]))
    by_offset = sorted(header, key=lambda k: tuple(header[k]["data_offsets"]))
    print("order " + " ".join(by_offset))
    pos = 0
    for name in by_offset:
        b, e = header[name]["data_offsets"]
        if b != pos:
            fail("%s begins at %d, expected %d" % (name, b, pos))
        pos = e
    if pos != len(data):
        fail("data is %d bytes, tensors cover %d" % (len(data), pos))
    for name in sorted(header):
        info = header[name]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"])
        if (8 + n + b) % dt.itemsize:
            print("misaligned " + name)
        if dt.kind == "f":
            vals = ["%.17g" % float(v) for v in arr.ravel()]
        else:
            vals = [str(int(v)) for v in arr.ravel()]
        print(" ".join([name, info["dtype"], str(list(info["shape"]))] + vals))
    if n % 8:
        print("unpadded %d" % n)


def write(path):
    tensors = [  # deliberately not ordered by alignment
        ("bytes", "U8", np.array([1, 2, 255], dtype=np.uint8)),
        ("w", "F32", (np.arange(6, dtype=np.float32) * 0.25 - 1).reshape(2, 3)),
        ("half", "F16", np.array([1.5, -2.0], dtype=np.float16)),
        ("ids", "I64", np.array([-5, 0, 1 << 40], dtype=np.int64)),
        ("scalar", "F64", np.array(3.125, dtype=np.float64)),
        ("empty", "F32", np.zeros((0, 4), dtype=np.float32)),
    ]
    header, chunks, pos = {"__metadata__": {"origin": "numpy"}}, [], 0
    for name, dtype, arr in tensors:
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    text = json.dumps(header).encode("utf-8")
    if len(text) % 8 == 0:
        text += b" "  # keep the data start unaligned on purpose
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        write(sys.argv[2])
    elif len(sys.argv) == 2:
        read(sys.argv[1])
    else:
        fail("usage: st_read.py [--write] FILE")
