#!/usr/bin/env bash
# scripts/check-calls.sh - calls run one way (issue 14): from the object files of src/
# (nm: the symbols each file defines and the ones it leaves undefined), builds the
# file-level graph of uses (a call or a reference to a table) and fails when
#   - a file uses a file of a later stage (a call up the pipeline), or
#   - files of one stage use each other in a circle (a strongly connected set of files),
#     unless that circle is listed in KNOWN below, which may only shrink: a listed circle
#     that no longer exists fails too, so that the list stays true;
#   - within a stage given LAYERS below, a file uses a file of its own or a higher layer
#     (the FHIR stage: the driver calls the resource writers, which call the shared
#     pieces, which call the JSON writer; no writer calls another; issue 14).
# Prints one line per finding, "check-calls: OK ..." or "check-calls: FAIL ...".
#
#   scripts/check-calls.sh [BUILD]        # objects of BUILD (default build), after `make`
#
# Stage order, lowest first (a file may use its own stage and earlier ones); measured from
# the objects, docs/architecture.md describes it:
#   util < dicom < sr < report < json < fhir < deliver < gateway < cli
# json (the streaming writer) comes before fhir, whose writers write through it.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
STAGES="util dicom sr report json fhir deliver gateway cli"
# Circles still present, one per line: "stage: file file ..." (sorted base names).
KNOWN='
'
# Layers of the files of a stage, highest first, separated by '>': a file may use files of
# lower layers only. Every file of such a stage must be listed.
LAYERS='
fhir: api > convert > observations resources selections subjects diagnostic_report > ids entries refs > common > codes uuid
'
[ -d "$BUILD/src" ] || { echo "check-calls: FAIL: no objects in $BUILD/src (run make)"; exit 2; }
command -v nm >/dev/null || { echo "check-calls: FAIL: nm not installed (binutils)"; exit 2; }

tab=$(mktemp); trap 'rm -f "$tab"' EXIT
# "D|U stage file symbol" for each global symbol defined or used by each object
for o in "$BUILD"/src/*/*.o; do
    rel=${o#"$BUILD"/src/}; stage=${rel%%/*}; file=${rel#*/}; file=${file%.o}
    nm -g --defined-only "$o" | awk -v s="$stage" -v f="$file" 'NF >= 3 { print "D", s, f, $3 }'
    nm -u "$o" | awk -v s="$stage" -v f="$file" '{ print "U", s, f, $NF }'
done >"$tab"

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || PY=/usr/bin/python3
STAGES=$STAGES KNOWN=$KNOWN LAYERS=$LAYERS "$PY" - "$tab" <<'PY'
import os, sys
from collections import defaultdict

order = os.environ["STAGES"].split()
rank = {s: i for i, s in enumerate(order)}
known = set()
for line in os.environ["KNOWN"].strip().splitlines():
    stage, files = line.split(":", 1)
    known.add((stage.strip(), tuple(sorted(files.split()))))

defs, uses = {}, []
for line in open(sys.argv[1]):
    kind, stage, f, sym = line.split()
    if kind == "D":
        defs[sym] = (stage, f)
    else:
        uses.append(((stage, f), sym))
edges = defaultdict(set)     # (stage, file) -> {(stage, file)}
why = {}
for src, sym in uses:
    dst = defs.get(sym)
    if dst and dst != src:
        edges[src].add(dst)
        why.setdefault((src, dst), sym)

bad = 0
unknown_stage = sorted({s for s, _ in list(edges) + [d for v in edges.values() for d in v]} - set(rank))
for s in unknown_stage:
    print(f"check-calls: FAIL: stage src/{s}/ is not in the stage order (add it to STAGES)")
    bad += 1
for src in sorted(edges):
    for dst in sorted(edges[src]):
        if src[0] in rank and dst[0] in rank and rank[dst[0]] > rank[src[0]]:
            print(f"check-calls: FAIL: up the pipeline: {src[0]}/{src[1]}.c uses "
                  f"{dst[0]}/{dst[1]}.c ({why[(src, dst)]})")
            bad += 1

# layers within a stage
layer = {}
for line in os.environ["LAYERS"].strip().splitlines():
    stage, spec = line.split(":", 1)
    for depth, names in enumerate(spec.split(">")):
        for name in names.split():
            layer[(stage.strip(), name)] = depth
layered = {s for s, _ in layer}
all_files = set(edges) | {d for v in edges.values() for d in v}
for st, f in sorted(all_files):
    if st in layered and (st, f) not in layer:
        print(f"check-calls: FAIL: {st}/{f}.c is in no layer of LAYERS in scripts/check-calls.sh")
        bad += 1
for src in sorted(edges):
    for dst in sorted(edges[src]):
        if src[0] == dst[0] and src in layer and dst in layer and layer[dst] <= layer[src]:
            how = "a file of its own layer" if layer[dst] == layer[src] else "a higher layer"
            print(f"check-calls: FAIL: {src[0]}/{src[1]}.c uses {how}: {dst[1]}.c "
                  f"({why[(src, dst)]})")
            bad += 1

# strongly connected sets of files within one stage (Tarjan, iterative)
nodes = sorted(set(edges) | {d for v in edges.values() for d in v})
index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
def strong(v0):
    work = [(v0, iter(sorted(w for w in edges.get(v0, ()) if w[0] == v0[0])))]
    index[v0] = low[v0] = counter[0]; counter[0] += 1; stack.append(v0); on.add(v0)
    while work:
        v, it = work[-1]
        advanced = False
        for w in it:
            if w not in index:
                index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                work.append((w, iter(sorted(x for x in edges.get(w, ()) if x[0] == w[0]))))
                advanced = True
                break
            if w in on:
                low[v] = min(low[v], index[w])
        if advanced:
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[v])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)
for v in nodes:
    if v not in index:
        strong(v)

found = set()
for comp in comps:
    stage = comp[0][0]
    files = tuple(sorted(f for _, f in comp))
    found.add((stage, files))
    detail = "; ".join(f"{a[1]} -> {b[1]} ({why[(a, b)]})" for a in sorted(comp)
                       for b in sorted(edges[a]) if b in comp)
    if (stage, files) in known:
        print(f"check-calls: known circle in {stage}/ (to remove): {' '.join(files)}")
    else:
        print(f"check-calls: FAIL: circle in {stage}/: {' '.join(files)}: {detail}")
        bad += 1
for stage, files in sorted(known - found):
    print(f"check-calls: FAIL: the known circle '{stage}: {' '.join(files)}' is gone: "
          "remove it from KNOWN in scripts/check-calls.sh")
    bad += 1

n_edges = sum(len(v) for v in edges.values())
if bad:
    print(f"check-calls: FAIL: {bad} findings over {len(nodes)} files, {n_edges} uses")
    sys.exit(1)
print(f"check-calls: OK: {len(nodes)} files, {n_edges} uses between files, "
      f"calls down the pipeline only ({' < '.join(order)}), {len(found)} known circles, "
      f"layers kept in {', '.join(sorted(layered))}")
PY
