#!/usr/bin/env bash
# run.sh NNC [NAME]
#
# The hostile-file test set: runs every case of cases.txt (or only NAME),
# each in a fresh temporary copy of this directory, and checks that nnc
#   - exits with status 1,
#   - prints nothing on standard output,
#   - prints exactly one line on standard error, equal to the case's
#     expected message,
#   - leaves the directory as it found it: no new file (a *.tmp.* file, a
#     half-written output) and no file removed.
# Then it prints `N passed, N failed` and exits 1 when a case failed.
#
# cases.txt: one case a line, `NAME|ARGS|EXPECTED STDERR`; ARGS are nnc's
# arguments, split at blanks (no quoting), run from the copy of this
# directory. Blank lines and lines starting with `#` are ignored.
#
# Files too large to commit, and directories, are made in the copy when a
# case's ARGS name them (see setup below). When post_NAME.py exists it runs
# in the copy after nnc (python3 post_NAME.py), must exit 0, and removes the
# files the case is meant to leave, after checking them.
set -u
set -f  # ARGS are split at blanks, never globbed

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: run.sh NNC [NAME]" >&2
  exit 2
fi
nnc=$1
only=${2:-}
case $nnc in /*) ;; *) nnc=$PWD/$nnc ;; esac
if [ ! -x "$nnc" ]; then
  echo "run.sh: $nnc is not an executable" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
cases=$here/cases.txt
timeout=
command -v timeout >/dev/null 2>&1 && timeout="timeout 120"

work=$(mktemp -d "${TMPDIR:-/tmp}/nnc-hostile.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

# setup ARGS...: make the generated inputs the arguments name.
setup() {
  local a
  for a in "$@"; do
    case $a in
      dir.csv | dir.nn | dir.safetensors) mkdir -p "$a" ;;
      fifo.safetensors) mkfifo "$a" ;; # with no writer: opening it must not wait
      csv_dir.nn) mkdir -p dir.csv ;; # its train block reads dir.csv
      csv_huge_line.csv | csv_huge_line.nn)
        # a 2 MiB line, past the CSV reader's 1 MiB limit, on line 3
        { printf 'x0,x1,t\n0.5,-1,1\n'
          head -c $((2 << 20)) /dev/zero | tr '\0' '1'
          printf ',2,0\n'; } >csv_huge_line.csv ;;
      nn_enormous.nn)
        # a valid model followed by 5 MiB of comments (the limit is 4 MiB)
        { cat model.nn
          head -c $((5 << 20)) /dev/zero | tr '\0' '#' | fold -w 79; } >nn_enormous.nn ;;
      st_header_over_limit.safetensors)
        # header length 150 MiB in a 200 MiB sparse file: within the
        # file, past the 100 MiB limit on headers
        printf '\000\000\140\011\000\000\000\000' >"$a"
        truncate -s $((200 << 20)) "$a" ;;
    esac
  done
}

# run_case NAME ARGS EXPECTED: 0 when it passes, else prints why.
run_case() {
  local name=$1 args=$2 expected=$3
  local dir=$work/$name
  rm -rf "$dir"
  mkdir -p "$dir"
  cp -R "$here/." "$dir/d"
  local d=$dir/d
  # shellcheck disable=SC2086 # ARGS are meant to be split
  (cd "$d" && setup $args)
  (cd "$d" && find . -mindepth 1 | LC_ALL=C sort) >"$dir/before"
  # shellcheck disable=SC2086
  (cd "$d" && exec $timeout "$nnc" $args) >"$dir/stdout" 2>"$dir/stderr" </dev/null
  local status=$?
  local why=()
  [ "$status" -eq 1 ] || why+=("exit status $status, expected 1")
  [ -s "$dir/stdout" ] && why+=("standard output is not empty")
  if ! printf '%s\n' "$expected" | cmp -s - "$dir/stderr"; then
    why+=("standard error is not the expected line: $expected")
  fi
  if [ -f "$here/post_$name.py" ]; then
    if ! (cd "$d" && python3 "post_$name.py") >"$dir/post" 2>&1; then
      why+=("post_$name.py failed: $(head -c 500 "$dir/post")")
    fi
  fi
  (cd "$d" && find . -mindepth 1 | LC_ALL=C sort) >"$dir/after"
  local added removed
  added=$(LC_ALL=C comm -13 "$dir/before" "$dir/after" | tr '\n' ' ')
  removed=$(LC_ALL=C comm -23 "$dir/before" "$dir/after" | tr '\n' ' ')
  [ -n "$added" ] && why+=("left behind: $added")
  [ -n "$removed" ] && why+=("removed: $removed")
  if [ ${#why[@]} -eq 0 ]; then
    rm -rf "$dir"
    return 0
  fi
  echo "FAIL $name: nnc $args"
  local w
  for w in "${why[@]}"; do echo "  $w"; done
  echo "  --- stdout"; head -c 2000 "$dir/stdout" | head -n 10 | sed 's/^/  /'
  echo "  --- stderr"; head -c 2000 "$dir/stderr" | head -n 10 | sed 's/^/  /'
  rm -rf "$dir"
  return 1
}

passed=0 failed=0 found=0
while IFS= read -r line || [ -n "$line" ]; do
  case $line in '' | '#'*) continue ;; esac
  name=${line%%|*}
  rest=${line#*|}
  args=${rest%%|*}
  expected=${rest#*|}
  if [ "$name" = "$line" ] || [ "$args" = "$rest" ]; then
    echo "run.sh: malformed line in cases.txt: $line" >&2
    exit 2
  fi
  [ -n "$only" ] && [ "$name" != "$only" ] && continue
  found=$((found + 1))
  if run_case "$name" "$args" "$expected"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done <"$cases"

if [ -n "$only" ] && [ $found -eq 0 ]; then
  echo "run.sh: no case named $only in cases.txt" >&2
  exit 2
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
