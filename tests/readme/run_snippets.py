#!/usr/bin/env python3
"""Runs the README's shell snippets as written, from the repository root, so they cannot drift
from the code. Every ```sh block must be preceded by a marker line:
  <!-- readme-test: run -->            run the block with bash -euo pipefail; it must exit 0
  <!-- readme-test: exists (why) -->   each line's first word must be an existing executable
  <!-- readme-test: skip (why) -->     not run (the set-up commands themselves)
`build/` in a snippet means the build tree under test (--build-dir)."""
import argparse
import os
import re
import subprocess
import sys


def blocks(readme):
    lines = open(readme).read().split("\n")
    for i, line in enumerate(lines):
        if line.strip() != "```sh":
            continue
        end = lines.index("```", i + 1)
        marker = lines[i - 1].strip() if i > 0 else ""
        m = re.match(r"<!-- readme-test: (run|exists|skip)\b.*-->", marker)
        yield i + 1, (m.group(1) if m else None), lines[i + 1:end]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    rel = os.path.relpath(a.build_dir, a.root)
    failures = 0
    for line_no, kind, body in blocks(os.path.join(a.root, "README.md")):
        text = "\n".join(body)
        if rel != "build":
            text = re.sub(r"(?<![\w/.-])build/", rel + "/", text)
        where = f"README.md:{line_no}"
        if kind is None:
            print(f"{where}: a ```sh block without a readme-test marker")
            failures += 1
        elif kind == "exists":
            for cmd in text.split("\n"):
                exe = cmd.split()[0] if cmd.split() else ""
                if exe and not os.access(os.path.join(a.root, exe), os.X_OK):
                    print(f"{where}: {exe} is not an executable file")
                    failures += 1
        elif kind == "run":
            print(f"== {where}\n{text}", flush=True)
            # `python3` in a snippet is the interpreter running this script (the one CMake found,
            # Debian's with python3-torch), even where another python3 comes first on PATH.
            env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=a.root, timeout=600, env=env)
            if r.returncode != 0:
                print(f"{where}: exited {r.returncode}")
                failures += 1
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
