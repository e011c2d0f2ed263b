#!/usr/bin/env python3
"""scripts/imports.py [ROOT]: the crate's import graph, tests and comments left out.

For each top-level module, the top-level modules its code names (`crate::X`,
`crate::{X, Y}`); then, inside each folder module, which of its files name which
siblings (`super::b`, `super::{b, c}`, `crate::folder::b`, and items that `mod.rs`
re-exports from a sibling). Prints every circle found, `cycle: none` when there
is none, and the longest chain of floors (modules each naming the next).
Exit status 1 when there is a circle."""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else '.'
src = os.path.join(root, 'src')


def code(path):
    text = ''.join(l for l in open(path) if not l.lstrip().startswith('//'))
    return re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*', '', text, flags=re.S)


def rust_files(folder):
    out = []
    for d, _, fs in os.walk(folder):
        out += [os.path.join(d, f) for f in fs if f.endswith('.rs') and not f.startswith('tests')]
    return out


def names_after(prefix, text):
    """The first path segment after each `prefix` (`prefix::x`, `prefix::{x, y::z}`)."""
    found = set(re.findall(re.escape(prefix) + r'::([A-Za-z_][A-Za-z0-9_]*)', text))
    for group in re.findall(re.escape(prefix) + r'::\{([^}]*)\}', text):
        found |= {g.strip().split('::')[0] for g in group.split(',') if g.strip()}
    return found


def cycles(graph):
    """Every elementary circle's first occurrence from a depth-first walk."""
    found, state = [], {}

    def visit(n, path):
        state[n] = 1
        for d in graph.get(n, []):
            if state.get(d) == 1:
                found.append(path[path.index(d):] + [n, d] if d in path else [n, d])
            elif d in graph and not state.get(d):
                visit(d, path + [n])
        state[n] = 2

    for m in sorted(graph):
        if not state.get(m):
            visit(m, [])
    return found


def longest(graph):
    memo = {}

    def chain(n, seen=()):
        if n in memo:
            return memo[n]
        best = [n]
        for d in graph.get(n, []):
            if d in graph and d not in seen:
                c = [n] + chain(d, seen + (n,))
                best = c if len(c) > len(best) else best
        memo[n] = best
        return best

    return max((chain(m) for m in graph), key=len, default=[])


mods = sorted({n[:-3] if n.endswith('.rs') else n for n in os.listdir(src)} - {'main', 'lib'})
top = {}
for m in mods:
    files = [os.path.join(src, m + '.rs')] if os.path.exists(os.path.join(src, m + '.rs')) else []
    if os.path.isdir(os.path.join(src, m)):
        files += rust_files(os.path.join(src, m))
    deps = names_after('crate', '\n'.join(code(f) for f in files))
    top[m] = sorted(d for d in deps if d != m and d in mods)
for m in mods:
    print(f"{m} -> {' '.join(top[m])}")

circles = [' -> '.join(c) for c in cycles(top)]
for m in mods:
    folder = os.path.join(src, m)
    if not os.path.isdir(folder):
        continue
    subs = sorted({n[:-3] if n.endswith('.rs') else n for n in os.listdir(folder)} - {'mod', 'tests'})
    subs = [s for s in subs if not s.startswith('tests')]
    mod_rs = os.path.join(folder, 'mod.rs')
    reexported = {}
    if os.path.exists(mod_rs):
        for sub, items in re.findall(r'pub(?:\(crate\))? use (\w+)::\{?([^;]*)\}?;', code(mod_rs)):
            for item in re.split(r'[,\s{}]+', items):
                if item and sub in subs:
                    reexported[item.split('::')[-1]] = sub
    inner = {}
    for s in subs:
        path = os.path.join(folder, s + '.rs')
        files = ([path] if os.path.exists(path) else []) + (
            rust_files(os.path.join(folder, s)) if os.path.isdir(os.path.join(folder, s)) else [])
        text = '\n'.join(code(f) for f in files)
        named = names_after('super', text) | names_after(f'crate::{m}', text)
        deps = {reexported.get(n, n) for n in named}
        inner[f"{m}/{s}"] = sorted(f"{m}/{d}" for d in deps if d != s and d in subs)
    circles += [' -> '.join(c) for c in cycles(inner)]

for c in circles:
    print(f"cycle: {c}")
if not circles:
    print('cycle: none')
chain = longest(top)
print(f"longest chain: {len(chain)} floors: {' -> '.join(chain)}")
sys.exit(1 if circles else 0)
