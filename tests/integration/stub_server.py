"""tests/integration/stub_server.py - a scripted FHIR server stub for fault injection in
tests/integration/test_send.py (Python stdlib only: http.server in a thread, ssl).

    stub = StubFhirServer(fhir_version="5.0.0")           # or tls=(cert, key)
    stub.script = [answer(503), answer(200)]              # answers to the transaction POSTs
    base = stub.start()                                   # http://127.0.0.1:PORT/fhir
    ... run sr2fhir send --server base ...
    stub.requests                                         # what arrived (method, path, headers...)
    stub.stop()

- GET  {base}/metadata   a minimal CapabilityStatement with the given fhirVersion
- GET  {base}/REL        the answer `stub.get_answers[REL]` when there is one ("metadata",
                         "Patient", ...: a hostile server's answers, issue 9 defect 6)
- GET  {base}/Type?...   the searchset in `stub.search_results[Type]` (default: empty)
- POST {base}            the next answer of `stub.script` (the last one repeats: a script of
                         one 500 answers 500 forever); an empty script, or the answer
                         `SUCCESS`, is a transaction-response with 201 for every entry
- anything else          404 with an OperationOutcome
Every request is recorded, headers included, with its arrival time (time.monotonic()).
With `client_ca`, the TLS server asks for a client certificate and checks it against that
file; the peer certificate's subject is recorded per request.
"""
import http.server
import json
import socket
import ssl
import threading
import time
import urllib.parse

SUCCESS = "success"


def answer(status, body=None, headers=None, content_type="application/fhir+json", delay=0):
    """A scripted answer: status, body (dict: JSON; str/bytes: as is), extra headers, and
    a delay in seconds before it is sent."""
    return {"status": status, "body": body, "headers": dict(headers or {}),
            "content_type": content_type, "delay": delay}


def outcome(text, code="invalid"):
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


class Request:
    def __init__(self, method, path, query, headers, body, peer, client=None):
        self.method, self.path, self.query = method, path, query
        self.client = client            # (host, port) of the connection
        self.headers = headers          # dict, lower-case names
        self.body = body                # bytes
        self.peer = peer                # client certificate subject (dict) or None
        self.time = time.monotonic()

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "%s %s%s" % (self.method, self.path, "?" + self.query if self.query else "")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive, Expect: 100-continue

    def log_message(self, *args):       # quiet
        pass

    def setup(self):
        super().setup()
        # headers and body are two writes: without TCP_NODELAY the body waits for the
        # client's delayed ACK (40 ms per request)
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=None, headers=None, content_type="application/fhir+json"):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        stub = self.server.stub
        url = urllib.parse.urlsplit(self.path)
        body = self._body()
        peer = None
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
            if cert:
                peer = {k: v for rdn in cert.get("subject", ()) for k, v in rdn}
        req = Request(self.command, url.path, url.query,
                      {k.lower(): v for k, v in self.headers.items()}, body, peer,
                      self.client_address)
        with stub.lock:
            stub.requests.append(req)
        rel = url.path[len(stub.path):].strip("/") if url.path.startswith(stub.path) else None
        if rel is None:
            return self._send(404, outcome("use base " + stub.path, "not-found"))
        if self.command == "GET" and rel in stub.get_answers:
            a = stub.get_answers[rel]
            return self._send(a["status"], a["body"], a["headers"], a["content_type"])
        if self.command == "GET" and rel == "metadata":
            return self._send(200, {"resourceType": "CapabilityStatement", "status": "active",
                                    "date": "2026-01-01", "kind": "instance",
                                    "fhirVersion": stub.fhir_version, "format": ["json"],
                                    "rest": [{"mode": "server"}]})
        if self.command == "GET" and rel and "/" not in rel:
            found = stub.search_results.get(rel, [])
            return self._send(200, {"resourceType": "Bundle", "type": "searchset",
                                    "total": len(found),
                                    "entry": [{"fullUrl": "%s/%s/%s" % (
                                                   stub.base, r["resourceType"], r["id"]),
                                               "resource": r, "search": {"mode": "match"}}
                                              for r in found]})
        if self.command == "POST" and rel == "":
            with stub.lock:
                a = stub.script[min(stub.posts, len(stub.script) - 1)] if stub.script else SUCCESS
                stub.posts += 1
            if a == SUCCESS:
                return self._send(200, stub.transaction_response(body))
            if a.get("delay"):
                time.sleep(a["delay"])
            return self._send(a["status"], a["body"], a["headers"], a["content_type"])
        return self._send(404, outcome("stub: no route for %s %s" % (self.command, self.path),
                                       "not-found"))

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):   # a client that hung up: not our business
        pass

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread (a client that rejects
        # the certificate only ends its own connection).
        if self.stub.tls_context is not None:
            try:
                request.settimeout(30)
                request = self.stub.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with self.stub.lock:
                    self.stub.tls_errors.append(str(e))
                return
            try:
                super().finish_request(request, client_address)
            finally:
                try:
                    request.close()
                except OSError:
                    pass
            return
        super().finish_request(request, client_address)


class StubFhirServer:
    def __init__(self, fhir_version="5.0.0", tls=None, client_ca=None, path="/fhir"):
        self.fhir_version = fhir_version
        self.path = path
        self.script = []
        self.search_results = {}
        self.get_answers = {}
        self.requests = []
        self.tls_errors = []
        self.posts = 0
        self.lock = threading.Lock()
        self.tls_context = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            if client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(client_ca)
            self.tls_context = ctx
        self._server = None
        self._thread = None
        self.base = None

    def start(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        port = self._server.server_address[1]
        self.base = "%s://127.0.0.1:%d%s" % ("https" if self.tls_context else "http", port,
                                             self.path)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.base

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self, script=(), search_results=None, get_answers=None):
        with self.lock:
            self.script = list(script)
            self.search_results = dict(search_results or {})
            self.get_answers = dict(get_answers or {})
            self.requests = []
            self.tls_errors = []
            self.posts = 0

    def posts_received(self):
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]

    def transaction_response(self, body):
        """201 Created for every entry of the posted transaction."""
        try:
            bundle = json.loads(body.decode("utf-8"))
        except ValueError:
            return outcome("stub: the body is not JSON")
        entries = []
        for e in bundle.get("entry", []):
            url = e.get("request", {}).get("url", "")
            r = e.get("resource", {})
            loc = url if "/" in url else "%s/%s" % (r.get("resourceType"), r.get("id"))
            entries.append({"response": {"status": "201 Created",
                                         "location": loc + "/_history/1",
                                         "etag": 'W/"1"'}})
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def free_port():
    """A loopback port with nothing listening on it (bound, then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
