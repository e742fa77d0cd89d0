#!/usr/bin/env python3
"""File circles: which source files of a directory call each other.

Reads the object files of a build (nm: the global symbols each defines
and uses), draws an edge A -> B when A uses a symbol B defines, and
prints every strongly connected group of two or more files per directory
(runtime/ + hooks/, tracer/, viewer/).  Exit status 1 if there is one,
2 if a directory has no object files to read (nothing was checked).

    scripts/file-circles.py [BUILD_DIR]      (default: build)
"""
import os
import subprocess
import sys

build = sys.argv[1] if len(sys.argv) > 1 else "build"
groups = {
    "runtime": [os.path.join(build, "CMakeFiles/uvtask_debug.dir/runtime"),
                os.path.join(build, "CMakeFiles/uvtask_debug.dir/hooks")],
    "tracer": [os.path.join(build, "CMakeFiles/uvtask_debug.dir/tracer")],
    "viewer": [os.path.join(build, "viewer/CMakeFiles/uvtask_cmd.dir")],
}


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True,
                         check=True).stdout
    defs, uses = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            uses.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRV":
            defs.add(parts[2])
    return defs, uses


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


found = False
missing = False
for name, dirs in groups.items():
    objs = {}
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith(".o"):
                objs[f[:-2]] = symbols(os.path.join(d, f))
    if not objs:
        print(f"{name}: no object files under {dirs[0]} (build first)")
        missing = True
        continue
    definer = {}
    for f, (defs, _) in objs.items():
        for s in defs:
            definer[s] = f
    edges = {f: set() for f in objs}
    why = {}
    for f, (_, uses) in objs.items():
        for s in uses:
            g = definer.get(s)
            if g is not None and g != f:
                edges[f].add(g)
                why.setdefault((f, g), s)
    circles = sccs(objs, edges)
    if not circles:
        print(f"{name}: no circles ({len(objs)} files)")
    for comp in circles:
        found = True
        print(f"{name}: circle: {' '.join(comp)}")
        for a in comp:
            for b in sorted(edges[a] & set(comp)):
                print(f"    {a} -> {b} ({why[(a, b)]})")
sys.exit(1 if found else 2 if missing else 0)
