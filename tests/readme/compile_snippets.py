#!/usr/bin/env python3
"""Compiles the README's C++ snippets against the headers, as an installed user includes them
(<eccl/...>), so they cannot drift from the API. A ```cpp block preceded by
<!-- readme-test: compile NAME --> is wrapped in a function after preludes/NAME.h (the
variables the snippet takes as given); its #include and using lines go to file scope. Every
```cpp block needs a marker. Compile only (-fsyntax-only)."""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--cxx", required=True)
    ap.add_argument("--include", action="append", default=[])
    a = ap.parse_args()
    lines = open(os.path.join(a.root, "README.md")).read().split("\n")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(a.root, os.path.join(tmp, "eccl"))  # <eccl/groups/...> as after an install
        for i, line in enumerate(lines):
            if line.strip() != "```cpp":
                continue
            end = lines.index("```", i + 1)
            m = re.match(r"<!-- readme-test: compile (\w+) -->", lines[i - 1].strip())
            where = f"README.md:{i + 1}"
            if not m:
                print(f"{where}: a ```cpp block without a readme-test marker")
                failures += 1
                continue
            body = lines[i + 1:end]
            top = [l for l in body if l.startswith("#include") or l.startswith("using ")]
            rest = [l for l in body if l not in top]
            prelude = open(os.path.join(a.root, "tests/readme/preludes", m.group(1) + ".h")).read()
            src = "\n".join(["#include <cstdint>", "#include <memory>", "#include <string>", "#include <vector>"] + top +
                            ["void snippet() {", prelude] + rest + ["}"]) + "\n"
            path = os.path.join(tmp, f"snippet_{i + 1}.cc")
            open(path, "w").write(src)
            cmd = [a.cxx, "-std=c++20", "-fsyntax-only", "-Wno-unused-variable", "-I", tmp, "-I", a.root, path]
            for inc in a.include:
                cmd += ["-I", inc]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{where}: does not compile:\n{r.stderr[-3000:]}")
                failures += 1
            else:
                print(f"{where}: compiles")
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
