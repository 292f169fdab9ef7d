#!/usr/bin/env python3
# fuzz/seed_dimse.py DIR - seeds for fuzz_dimse (fuzz/run.sh): a flags byte, then what a
# requestor sends: A-ASSOCIATE-RQ, C-ECHO, fragmented C-STORE, release, abort, malformed PDUs.
import struct, sys, os
out = sys.argv[1]
def item(t, v): return bytes([t, 0]) + struct.pack('>H', len(v)) + v
def pdu(t, v): return bytes([t, 0]) + struct.pack('>I', len(v)) + v
def rq(ctxs, maxpdu=16384, called=b'SR2FHIR', calling=b'SCU'):
    v = struct.pack('>HH', 1, 0) + called.ljust(16) + calling.ljust(16) + bytes(32)
    v += item(0x10, b'1.2.840.10008.3.1.1.1')
    for cid, a, tss in ctxs:
        v += item(0x20, bytes([cid, 0, 0, 0]) + item(0x30, a) + b''.join(item(0x40, t) for t in tss))
    ui = item(0x51, struct.pack('>I', maxpdu)) + item(0x52, b'1.2.3.4') + item(0x55, b'SEED')
    return pdu(1, v + item(0x50, ui))
def el(e, v):
    if len(v) & 1: v += b'\0'
    return struct.pack('<HHI', 0, e, len(v)) + v
def us(e, x): return el(e, struct.pack('<H', x))
def cmd(field, cls, inst, mid, dst):
    b = el(2, cls) + us(0x100, field) + us(0x110, mid) + us(0x800, dst) + (el(0x1000, inst) if inst else b'')
    return el(0, struct.pack('<I', len(b))) + b
def pdv(cid, mch, d): return struct.pack('>I', len(d) + 2) + bytes([cid, mch]) + d
def pdata(*pdvs): return pdu(4, b''.join(pdvs))
SR = b'1.2.840.10008.5.1.4.1.1.88.33'
V = b'1.2.840.10008.1.1'
ctxs = [(1, V, [b'1.2.840.10008.1.2']), (3, SR, [b'1.2.840.10008.1.2', b'1.2.840.10008.1.2.1']), (5, b'1.2.3.9', [b'1.2.840.10008.1.2'])]
A = rq(ctxs)
echo = pdata(pdv(1, 3, cmd(0x30, V, None, 1, 0x101)))
c = cmd(1, SR, b'1.2.826.0.1.3680043.8.498.77', 2, 0)
ds = bytes(range(256)) * 2
store = pdata(pdv(3, 1, c[:20]), pdv(3, 3, c[20:]), pdv(3, 0, ds[:300])) + pdata(pdv(3, 2, ds[300:]))
store_ee = pdata(pdv(3, 3, c), pdv(3, 0, b'\xee' + ds[:50]), pdv(3, 2, ds[:10]))
c9 = cmd(1, SR, b'9.1', 3, 0)
store9 = pdata(pdv(3, 3, c9), pdv(3, 2, ds[:10]))
release = pdu(5, bytes(4))
peer_abort = pdu(7, bytes([0, 0, 0, 0]))
seeds = {
  'full.bin': bytes([0]) + A + echo + store + store_ee + store9 + release,
  'chunked-small.bin': bytes([0x25]) + rq(ctxs, 64) + echo + store + release,
  'reject.bin': bytes([0x80]) + A + release,
  'timeout-mid.bin': bytes([0x10]) + A + pdata(pdv(3, 3, c), pdv(3, 0, ds[:40])),
  'dataset-limit.bin': bytes([0x40]) + A + store + release,
  'abort-mid.bin': bytes([0x03]) + A + pdata(pdv(3, 3, c), pdv(3, 0, ds[:40])) + peer_abort,
  'unknown-pdu.bin': bytes([0]) + A + pdu(9, bytes(4)),
  'oversized.bin': bytes([0x20]) + A + pdu(4, pdv(3, 3, bytes(300))),
  'command-only.bin': bytes([0]) + c,
  'cancel-find.bin': bytes([0]) + A + pdata(pdv(1, 3, cmd(0xFFF, V, None, 1, 0x101))) + pdata(pdv(1, 3, cmd(0x20, V, None, 4, 0x102)), pdv(1, 2, b'xy')) + release,
}
for k, v in seeds.items():
    open(os.path.join(out, k), 'wb').write(v)
