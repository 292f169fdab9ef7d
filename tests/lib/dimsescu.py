"""tests/lib/dimsescu.py - a DICOM Upper Layer requestor (PS3.8) and DIMSE C-ECHO / C-STORE
SCU (PS3.7) written by hand for the DIMSE receiver's tests (issue 12): every PDU is built
byte by byte here, so a test can send exactly what it wants (half a data set, then A-ABORT;
a PDU with a wrong length; an unknown PDU type; silence) and read exactly what came back
(each C-STORE-RSP status, A-ASSOCIATE-RJ result/source/reason, A-ABORT source/reason).

Not a general DICOM library: command sets in Implicit VR Little Endian, data sets passed as
the bytes of the negotiated transfer syntax (dataset_of() takes them from a Part 10 file).
Every socket read has a deadline (socket timeout).

    import dimsescu
    a = dimsescu.Assoc.connect(("127.0.0.1", port), "SCU", "GATEWAY",
                               [(dimsescu.ENHANCED_SR, [dimsescu.EXPLICIT_LE])])
    status = a.store(1, sop_class, sop_instance, data_set_bytes)
    a.release()
"""
import socket
import struct
import time

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
IMPL_UID = "1.2.826.0.1.3680043.10.1500.77.1"   # this SCU's Implementation Class UID

# PDU types
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, RELEASE_RQ, RELEASE_RP, ABORT = 0x04, 0x05, 0x06, 0x07
PDU_NAMES = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF",
             5: "A-RELEASE-RQ", 6: "A-RELEASE-RP", 7: "A-ABORT"}


class PeerClosed(Exception):
    """The acceptor closed the connection (EOF) where a PDU was expected."""


class Rejected(Exception):
    """A-ASSOCIATE-RJ: .result, .source, .reason."""

    def __init__(self, result, source, reason):
        super().__init__("A-ASSOCIATE-RJ result %d source %d reason %d" % (result, source,
                                                                            reason))
        self.result, self.source, self.reason = result, source, reason


class Aborted(Exception):
    """A-ABORT received: .source, .reason."""

    def __init__(self, source, reason):
        super().__init__("A-ABORT source %d reason %d" % (source, reason))
        self.source, self.reason = source, reason


# ---- encoding ---------------------------------------------------------------------------
def _uid(u):
    b = u.encode("ascii")
    return b + b"\0" if len(b) % 2 else b


def _item(itype, body):
    return struct.pack(">BBH", itype, 0, len(body)) + body


def pdu(ptype, body):
    """A PDU: type, reserved, 4-byte big-endian length, body."""
    return struct.pack(">BBL", ptype, 0, len(body)) + body


def aet16(s):
    return s.encode("ascii").ljust(16, b" ")[:16]


def associate_rq(calling, called, contexts, max_pdu=16384, extra_items=b"",
                 impl_uid=IMPL_UID, version=1):
    """A-ASSOCIATE-RQ PDU. contexts: [(abstract syntax, [transfer syntaxes])] given ids 1,
    3, 5...; or [(id, abstract syntax, [ts])]."""
    items = _item(0x10, APP_CONTEXT.encode())
    for n, c in enumerate(contexts):
        pcid, asx, tss = c if len(c) == 3 else (2 * n + 1, c[0], c[1])
        sub = _item(0x30, asx.encode()) + b"".join(_item(0x40, t.encode()) for t in tss)
        items += _item(0x20, struct.pack(">BBBB", pcid, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">L", max_pdu)) + _item(0x52, impl_uid.encode()) + \
        _item(0x55, b"DIMSETEST")
    items += _item(0x50, user) + extra_items
    head = struct.pack(">HH", version, 0) + aet16(called) + aet16(calling) + bytes(32)
    return pdu(ASSOCIATE_RQ, head + items)


def release_rq():
    return pdu(RELEASE_RQ, bytes(4))


def abort(source=0, reason=0):
    return pdu(ABORT, struct.pack(">BBBB", 0, 0, source, reason))


def pdv(pcid, data, command, last):
    """One PDV item: 4-byte length, context id, message control header, data."""
    mch = (1 if command else 0) | (2 if last else 0)
    return struct.pack(">LBB", len(data) + 2, pcid, mch) + data


def p_data(pcid, data, command, last):
    return pdu(P_DATA_TF, pdv(pcid, data, command, last))


def _el(tag_elem, value):
    """One group 0000 element, Implicit VR LE."""
    return struct.pack("<HHL", 0, tag_elem, len(value)) + value


def command_set(elements):
    """elements: [(element number, bytes value)] in ascending order; (0000,0000) added."""
    body = b"".join(_el(e, v) for e, v in elements)
    return _el(0x0000, struct.pack("<L", len(body))) + body


def us(v):
    return struct.pack("<H", v)


def echo_rq(msg_id):
    return command_set([(0x0002, _uid(VERIFICATION)), (0x0100, us(0x0030)),
                        (0x0110, us(msg_id)), (0x0800, us(0x0101))])


def store_rq(msg_id, sop_class, sop_instance, priority=0):
    return command_set([(0x0002, _uid(sop_class)), (0x0100, us(0x0001)), (0x0110, us(msg_id)),
                        (0x0700, us(priority)), (0x0800, us(0x0000)),
                        (0x1000, _uid(sop_instance))])


def parse_command(b):
    """{element number: raw value} of a group 0000 Implicit VR LE command set."""
    out, i = {}, 0
    while i + 8 <= len(b):
        g, e, n = struct.unpack_from("<HHL", b, i)
        if g != 0 or i + 8 + n > len(b):
            raise ValueError("bad command element at %d: (%04x,%04x) length %d" % (i, g, e, n))
        out[e] = b[i + 8:i + 8 + n]
        i += 8 + n
    return out


def dataset_of(path):
    """(SOP Class UID, SOP Instance UID, transfer syntax UID, data set bytes) of a Part 10
    file: the bytes after its meta header (group 0002, Explicit VR LE, PS3.10 7.1)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[128:132] == b"DICM", "%s: no DICM" % path
    i, meta = 132, {}
    end = None
    while True:
        g, e = struct.unpack_from("<HH", data, i)
        if g != 2:
            break
        vr = data[i + 4:i + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            n = struct.unpack_from("<L", data, i + 8)[0]
            v, i = data[i + 12:i + 12 + n], i + 12 + n
        else:
            n = struct.unpack_from("<H", data, i + 6)[0]
            v, i = data[i + 8:i + 8 + n], i + 8 + n
        meta[e] = v
        if e == 0 and end is None:
            end = i + struct.unpack("<L", v)[0]
        if end is not None and i >= end:
            break
    s = lambda e: meta[e].rstrip(b"\0 ").decode("ascii")  # noqa: E731
    return s(0x0002), s(0x0003), s(0x0010), data[i:]


# ---- the association -----------------------------------------------------------------
class Assoc:
    """One association, requestor side, on a plain TCP socket."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.accepted = {}       # context id -> transfer syntax
        self.results = {}        # context id -> result/reason (0 accepted)
        self.peer_max_pdu = 0
        self.msg_id = 0
        self.ac_raw = b""
        self.pdu_sizes = []      # (type, length) of every PDU read

    @classmethod
    def open(cls, address, timeout=30):
        """Connected, nothing sent (TCP_NODELAY set)."""
        s = socket.create_connection(address, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(timeout)
        return cls(s, timeout)

    @classmethod
    def connect(cls, address, calling, called, contexts, max_pdu=16384, timeout=30):
        """Connected and associated: A-ASSOCIATE-AC read (Rejected on RJ, Aborted on
        A-ABORT, PeerClosed on EOF)."""
        a = cls.open(address, timeout)
        try:
            a.send(associate_rq(calling, called, contexts, max_pdu))
            a.read_ac()
        except BaseException:
            a.close()
            raise
        return a

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise PeerClosed("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def read_pdu(self):
        """(type, body) of the next PDU."""
        head = self.recv_exact(6)
        ptype, _, n = struct.unpack(">BBL", head)
        self.pdu_sizes.append((ptype, n))
        if n > 64 * 1024 * 1024:
            raise ValueError("PDU type %d of %d bytes" % (ptype, n))
        return ptype, self.recv_exact(n)

    def read_ac(self):
        ptype, body = self.read_pdu()
        if ptype == ASSOCIATE_RJ:
            raise Rejected(body[1], body[2], body[3])
        if ptype == ABORT:
            raise Aborted(body[2], body[3])
        if ptype != ASSOCIATE_AC:
            raise ValueError("expected A-ASSOCIATE-AC, got PDU type %d" % ptype)
        self.ac_raw = body
        i = 68
        while i + 4 <= len(body):
            itype, _, n = struct.unpack_from(">BBH", body, i)
            val = body[i + 4:i + 4 + n]
            if itype == 0x21:
                pcid, result = val[0], val[2]
                self.results[pcid] = result
                j = 4
                while j + 4 <= len(val):
                    st, _, m = struct.unpack_from(">BBH", val, j)
                    if st == 0x40 and result == 0:
                        self.accepted[pcid] = val[j + 4:j + 4 + m].decode("ascii").rstrip("\0 ")
                    j += 4 + m
            elif itype == 0x50:
                j = 0
                while j + 4 <= len(val):
                    st, _, m = struct.unpack_from(">BBH", val, j)
                    if st == 0x51:
                        self.peer_max_pdu = struct.unpack_from(">L", val, j + 4)[0]
                    j += 4 + m
            i += 4 + n

    def send_message(self, pcid, command, dataset=None, max_pdv=None):
        """A command (one PDV) and optionally a data set in fragments of at most max_pdv
        bytes (default: the acceptor's maximum PDU length less the PDV header)."""
        self.send(p_data(pcid, command, True, True))
        if dataset is None:
            return
        limit = max_pdv or ((self.peer_max_pdu or 16384) - 6)
        limit = max(limit, 2)
        chunks = [dataset[i:i + limit] for i in range(0, len(dataset), limit)] or [b""]
        for k, c in enumerate(chunks):
            self.send(p_data(pcid, c, False, k == len(chunks) - 1))

    def read_response(self):
        """{element: raw value} of the next command set (PDVs joined until the last
        fragment). Aborted on A-ABORT, PeerClosed on EOF."""
        buf = b""
        while True:
            ptype, body = self.read_pdu()
            if ptype == ABORT:
                raise Aborted(body[2], body[3])
            if ptype != P_DATA_TF:
                raise ValueError("expected P-DATA-TF, got %s" % PDU_NAMES.get(ptype, ptype))
            i = 0
            while i + 6 <= len(body):
                n, _, mch = struct.unpack_from(">LBB", body, i)
                buf += body[i + 6:i + 4 + n]
                i += 4 + n
                if mch & 1 and mch & 2:
                    return parse_command(buf)

    def next_id(self):
        self.msg_id = (self.msg_id + 1) & 0xFFFF
        return self.msg_id

    def echo(self, pcid):
        """C-ECHO: the status of the response."""
        mid = self.next_id()
        self.send_message(pcid, echo_rq(mid))
        rsp = self.read_response()
        assert struct.unpack("<H", rsp[0x0100])[0] == 0x8030, "not a C-ECHO-RSP: %r" % rsp
        return struct.unpack("<H", rsp[0x0900])[0]

    def store(self, pcid, sop_class, sop_instance, dataset, max_pdv=None):
        """C-STORE: the status of the response (an int)."""
        mid = self.next_id()
        self.send_message(pcid, store_rq(mid, sop_class, sop_instance), dataset, max_pdv)
        rsp = self.read_response()
        assert struct.unpack("<H", rsp[0x0100])[0] == 0x8001, "not a C-STORE-RSP: %r" % rsp
        assert struct.unpack("<H", rsp[0x0120])[0] == mid, "response to another message"
        return struct.unpack("<H", rsp[0x0900])[0]

    def release(self):
        """A-RELEASE-RQ, wait for A-RELEASE-RP, close."""
        try:
            self.send(release_rq())
            ptype, _ = self.read_pdu()
            if ptype != RELEASE_RP:
                raise ValueError("expected A-RELEASE-RP, got %s" % PDU_NAMES.get(ptype, ptype))
        finally:
            self.close()

    def abort(self):
        try:
            self.send(abort())
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def read_until_closed(self, timeout):
        """Every byte the acceptor sends until it closes, within `timeout` s: (bytes,
        True when it closed, False when the time ran out first)."""
        deadline = time.monotonic() + timeout
        got = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got, False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return got, False
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk


def pdus_in(data):
    """[(type, body)] of the whole PDUs in `data` (a trailing partial one ignored)."""
    out, i = [], 0
    while i + 6 <= len(data):
        ptype, _, n = struct.unpack_from(">BBL", data, i)
        if i + 6 + n > len(data):
            break
        out.append((ptype, data[i + 6:i + 6 + n]))
        i += 6 + n
    return out
