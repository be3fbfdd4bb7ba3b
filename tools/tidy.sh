#!/usr/bin/env bash
# Static analysis: clang-tidy (the checks of .clang-tidy) over every .cc file
# of the project, with the compile commands of build/ (tools/test.sh makes it).
# Exits 1 when there is any finding, 0 when there is none, 2 on a usage error,
# 77 when clang-tidy is not installed. Not part of tools/test.sh or CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() {
  cat <<'EOF'
usage: tools/tidy.sh [--build DIR] [--jobs N] [--checks LIST] [--keep-log FILE] [FILE.cc ...]

Runs clang-tidy with the checks of .clang-tidy over the project's .cc files
(all of them in DIR/compile_commands.json, or the FILEs given) and prints each
finding once, then a count per check and the CPU time used. Exits 1 when
anything was found.

  --build DIR      the build tree whose compile_commands.json is used
                   (default: build; configured as tools/test.sh does if missing)
  --jobs N         clang-tidy processes at once (default: nproc)
  --checks LIST    passed to clang-tidy --checks (added to .clang-tidy's), e.g.
                   '-*,bugprone-use-after-move' to run one check
  --keep-log FILE  also writes the raw clang-tidy output to FILE
  --help           prints this

A finding that is wrong is silenced on its line with
  // NOLINT(check-name): the reason, in one line
Needs clang-tidy (Debian: clang-tidy).
EOF
}

build=build
jobs=$(nproc)
checks=
keep_log=
files=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --checks) checks=$2; shift 2 ;;
    --keep-log) keep_log=$2; shift 2 ;;
    --build=* | --jobs=* | --checks=* | --keep-log=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "tools/tidy.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done

command -v clang-tidy >/dev/null || { echo "tools/tidy.sh: clang-tidy is not installed (apt-get install clang-tidy)"; exit 77; }
if [ ! -f "$build/compile_commands.json" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLOG_BUILD_BENCH=ON -DREPLOG_NODE_SUITES=ON >/dev/null
fi

# Every project .cc file in the compile commands, once (the fuzz targets'
# replay main is compiled once per target).
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(/usr/bin/python3 - "$build/compile_commands.json" "$root" <<'EOF'
import json, os, sys
root = os.path.realpath(sys.argv[2]) + "/"
seen = set()
for entry in json.load(open(sys.argv[1])):
    f = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
    if f.startswith(root) and f.endswith(".cc") and f not in seen:
        seen.add(f)
        print(os.path.relpath(f, root))
EOF
  )
fi
[ ${#files[@]} -gt 0 ] || { echo "tools/tidy.sh: no files"; exit 2; }

# Findings in the project's own headers count; system and dependency headers do not.
header_filter="^$root/(include|protocol|storage|node|tools|tests|bench)/"
args=(-p "$build" --quiet "--header-filter=$header_filter" --extra-arg=-Wno-unknown-warning-option)
[ -z "$checks" ] || args+=("--checks=$checks")

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p') over ${#files[@]} files, $jobs at a time" >&2
TIMEFORMAT='cpu %U s user + %S s system, wall %R s'
{ time printf '%s\0' "${files[@]}" |
  xargs -0 -n 1 -P "$jobs" sh -c 'clang-tidy "$@" 2>&1 || true' tidy "${args[@]}" >"$out"; } 2>"$out.time"
cpu=$(cat "$out.time")
rm -f "$out.time"
[ -z "$keep_log" ] || cp "$out" "$keep_log"

# A finding in a header shows once per file that includes it: print each once.
# clang-tidy's own errors (a file that does not parse) count as findings too.
rc=0
/usr/bin/python3 - "$out" "$root" <<'EOF' || rc=$?
import collections, re, sys
root = sys.argv[2] + "/"
finding = re.compile(r"^(/[^:]+):(\d+):(\d+): (warning|error): (.*?)(?: \[([\w.,-]+)\])?$")
seen, by_check, current = set(), collections.Counter(), None
for line in open(sys.argv[1], errors="replace"):
    line = line.rstrip("\n")
    m = finding.match(line)
    if m:
        path, ln, col, kind, msg, check = m.groups()
        key = (path, ln, col, check or msg)
        current = key not in seen
        if current:
            seen.add(key)
            by_check[check or "clang-" + kind] += 1
            print(line.replace(root, ""))
        continue
    if current and line and not re.match(r"^\d+ warnings? (and \d+ errors? )?generated", line) \
            and not line.startswith(("Suppressed ", "Use -header-filter", "Error while processing")):
        print(line)
print()
for check, n in sorted(by_check.items(), key=lambda kv: (-kv[1], kv[0])):
    print("%5d  %s" % (n, check))
print("%5d  findings in all" % sum(by_check.values()))
sys.exit(1 if by_check else 0)
EOF
echo "$cpu"
exit $rc
