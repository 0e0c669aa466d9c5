#!/usr/bin/env python3
"""Fails when a function body in the given source folders is longer than MAX lines.

Usage: check_function_length.py MAX DIR [DIR ...]

A C++ function body is found as a `{` that closes a line starting a definition (a line ending
in `)`, `) const`, `) override` ... followed by `{`, or a constructor's initialiser list) at
namespace or class level, matched to its closing brace; lambdas and blocks inside a body are
part of it. Comments and string literals are skipped. Prints every function over MAX with its
file, first line and length, and exits 1 if there is one.
"""
import re
import sys
from pathlib import Path


def strip(text):
    """Blanks out comments, string and character literals, keeping line breaks."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c == 'R' and text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(')' + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            out.append(' ' * (min(j + 1, n) - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return ''.join(out)


HEAD = re.compile(r'\)\s*(const)?\s*(noexcept)?\s*(override|final)?\s*(->\s*[\w:<>,\s*&]+)?\s*$|^\s*:\s*\w+\(|,\s*\w+_?\(.*\)\s*$')


def functions(path):
    text = strip(path.read_text(encoding='utf-8', errors='replace'))
    lines = text.split('\n')
    depth = 0           # brace depth
    scopes = []         # per open brace: 'ns' (namespace / class / extern), 'fn' or 'in'
    found = []
    start = None
    for no, line in enumerate(lines, 1):
        for pos, ch in enumerate(line):
            if ch == '{':
                before = (line[:pos].strip() or (lines[no - 2].strip() if no > 1 else ''))
                outer = all(s == 'ns' for s in scopes)
                if outer and re.match(r'^(namespace|class|struct|union|enum|extern)\b', before.split('{')[0].strip()) is None \
                        and HEAD.search(line[:pos].rstrip() or (lines[no - 2] if no > 1 else '')) is not None:
                    scopes.append('fn')
                    start = no
                elif outer and re.search(r'^(namespace|class|struct|union|extern)\b|\b(class|struct)\s+\w+', before):
                    scopes.append('ns')
                else:
                    scopes.append('in')
            elif ch == '}':
                if not scopes:
                    continue
                kind = scopes.pop()
                if kind == 'fn':
                    found.append((start, no - start + 1))
    return found


def main():
    limit = int(sys.argv[1])
    worst, bad = (None, 0), []
    for d in sys.argv[2:]:
        for path in sorted(Path(d).rglob('*')):
            if path.suffix not in ('.cc', '.h', '.cpp'):
                continue
            for start, length in functions(path):
                if length > worst[1]:
                    worst = (f'{path}:{start}', length)
                if length > limit:
                    bad.append(f'{path}:{start}: a function of {length} lines (limit {limit})')
    for b in bad:
        print(b)
    print(f'longest function: {worst[0]} ({worst[1]} lines)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
