"""tests/lib/harness.py - the scaffolding the Python test programs share.

Where the checkout, the build, the binary, the python with pydicom and ../shared are (from
the environment tests/run.sh exports: ROOT, BUILD, SR2FHIR, PYTHON, SHARED, with the same
defaults when a test is run by hand); the PASS/FAIL/SKIP line printing of tests/run.sh's
contract (test(), eq(), SkipTest, exit_code()); the pydicom and binary checks; running a
fixture script and the guide's validator.

A test program imports it from its own location:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    import harness
"""
import os
import subprocess
import sys

ROOT = os.environ.get("ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BUILD = os.environ.get("BUILD", "build")
SR2FHIR = os.environ.get("SR2FHIR") or os.path.join(ROOT, BUILD, "sr2fhir")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
SHARED = os.environ.get("SHARED") or os.path.join(os.path.dirname(ROOT), "shared")
FIX = os.path.join(ROOT, BUILD, "fixtures")
VALIDATE = os.path.join(SHARED, "tools", "fhir-validate", "validate.sh")

nfail = 0   # FAIL lines printed so far (read through exit_code())


class SkipTest(Exception):
    """Raised by a case that cannot run here (a tool absent): a SKIP line, not a FAIL."""


def out(line):
    print(line, flush=True)


def test(name, fn, *args, width=600):
    """Run fn(*args): PASS unless it raises; SkipTest -> SKIP; anything else -> FAIL with the
    AssertionError's message (or the exception's type and text) on one line."""
    global nfail
    try:
        fn(*args)
        out("PASS " + name)
    except SkipTest as e:
        out("SKIP %s: %s" % (name, e))
    except Exception as e:  # noqa: BLE001 - every failure is a FAIL line
        nfail += 1
        msg = str(e) if isinstance(e, AssertionError) else "%s: %s" % (type(e).__name__, e)
        out("FAIL %s: %s" % (name, " ".join(msg.split())[:width]))


def report(ok, name, why=""):
    """One case decided by the caller: ok True -> PASS, None -> SKIP, False -> FAIL (why)."""
    global nfail
    if ok:
        out("PASS %s" % name)
    elif ok is None:
        out("SKIP %s: %s" % (name, why))
    else:
        nfail += 1
        out("FAIL %s: %s" % (name, why))


def short(text, n=300):
    """text on one line (runs of white space as one blank), at most n characters."""
    return " ".join(str(text).split())[:n]


def eq(got, want, what=""):
    assert got == want, "%s: got %r, expected %r" % (what, got, want)


def exit_code():
    """1 when a case failed, else 0."""
    return 1 if nfail else 0


def has_pydicom(python=PYTHON):
    return subprocess.run([python, "-c", "import pydicom"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def require_pydicom(label, hint=" (apt-get install python3-pydicom)", python=PYTHON):
    """SKIP the whole program (exit 0) when `python` cannot import pydicom."""
    if not has_pydicom(python):
        out("SKIP %s: %s has no pydicom%s" % (label, python, hint))
        sys.exit(0)


def require_sr2fhir(label):
    """FAIL the whole program (exit 1) when the binary is not built."""
    if not os.access(SR2FHIR, os.X_OK):
        out("FAIL %s: no executable %s (run make)" % (label, SR2FHIR))
        sys.exit(1)


def run_fixture_script(script, dest):
    """Run tests/fixtures/`script` into `dest`; the CompletedProcess (bytes output)."""
    return subprocess.run([PYTHON, os.path.join(ROOT, "tests", "fixtures", script), dest],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def validator(path, *opts, timeout=300):
    """The guide's validator over one Bundle: the CompletedProcess (bytes stdout, stderr)."""
    return subprocess.run(["bash", VALIDATE, *opts, path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


# Variables that would lend `sr2fhir send` or the FHIR server tool a secret or a proxy.
SEND_ENV_REMOVED = ("SR2FHIR_TOKEN", "SR2FHIR_PASSWORD", "http_proxy", "https_proxy",
                    "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def clean_env(**extra):
    """This environment without SEND_ENV_REMOVED, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in SEND_ENV_REMOVED}
    env.update(extra)
    return env


FHIR_SERVER_SH = os.path.join(SHARED, "tools", "fhir-server", "fhir-server.sh")


class FhirServerTool:
    """../shared/tools/fhir-server (FHIR_SERVER_SH), FHIR `version`, on a free port, its pid
    and log file in `workdir`; `extra_env` adds to its environment (clean_env)."""

    def __init__(self, version, workdir, **extra_env):
        self.version = version
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.env = clean_env(FHIR_PORT="0", FHIR_VERSION=version,
                             FHIR_PIDFILE=os.path.join(workdir, "pid"),
                             FHIR_LOGFILE=os.path.join(workdir, "log"), **extra_env)
        self.base = None

    def start(self):
        """Start it (stopped at exit); its base URL. RuntimeError with the tool's stderr when
        it does not start ("npm install failed" in it when npm could not install it)."""
        import atexit
        atexit.register(self.stop)
        p = subprocess.run([FHIR_SERVER_SH, "start"], env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=300)
        if p.returncode != 0 or not p.stdout.strip():
            err = " ".join(p.stderr.decode("utf-8", "replace").split())
            raise RuntimeError("fhir-server.sh start (%s): exit %d: %s" % (
                self.version, p.returncode, err[-500:]))
        self.base = p.stdout.decode().strip().splitlines()[-1]
        return self.base

    def stop(self):
        subprocess.run([FHIR_SERVER_SH, "stop"], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
