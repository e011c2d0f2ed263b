#!/usr/bin/env python3
"""scripts/imports.py [ROOT]: the crate's import graph: for each top-level module, the top-level modules its
code names (`crate::X`, `crate::{X, Y}`; comments and tests left out), and any cycle."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else '.'
src = os.path.join(root, 'src')
mods = sorted({n[:-3] if n.endswith('.rs') else n for n in os.listdir(src)} - {'main', 'lib'})
graph = {}
for m in mods:
    files = [os.path.join(src, m + '.rs')] if os.path.exists(os.path.join(src, m + '.rs')) else []
    if os.path.isdir(os.path.join(src, m)):
        for d, _, fs in os.walk(os.path.join(src, m)):
            files += [os.path.join(d, f) for f in fs if f.endswith('.rs') and f != 'tests.rs']
    def code(f):
        t = ''.join(l for l in open(f) if not l.lstrip().startswith('//'))
        return re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*', '', t, flags=re.S)
    text = '\n'.join(code(f) for f in files)
    deps = set(re.findall(r'crate::([a-z_]+)', text))
    for group in re.findall(r'crate::\{([^}]*)\}', text):
        deps |= {g.strip().split('::')[0] for g in group.split(',') if g.strip()}
    graph[m] = sorted(d for d in deps if d != m and (d in mods or d == 'say' or d == 'Outcome'))
for m in mods:
    print(f"{m} -> {' '.join(graph[m])}")
def cycle():
    state = {}
    def visit(n, path):
        state[n] = 1
        for d in graph.get(n, []):
            if state.get(d) == 1:
                return path + [n, d]
            if d in graph and not state.get(d):
                c = visit(d, path + [n])
                if c: return c
        state[n] = 2
    for m in mods:
        if not state.get(m):
            c = visit(m, [])
            if c: return c
c = cycle()
print('cycle: ' + (' -> '.join(c[c.index(c[-1]):]) if c else 'none'))
