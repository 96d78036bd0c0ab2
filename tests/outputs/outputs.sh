#!/usr/bin/env bash
# outputs.sh NNC EXAMPLES_DIR - what nnc does to the files it writes
# (util/util.h, nnc_out_open), for -o, --save and --plot alike:
#   - a symbolic link stays; the file it names is replaced (also when that
#     file does not exist yet);
#   - a character device (a copy of /dev/null made with mknod, as root) and a
#     FIFO are written through, never replaced by a regular file;
#   - /dev/stdout writes to standard output; /dev/full (through a link) is
#     an error and leaves nothing behind; a socket is an error before any
#     work;
#   - a file that is replaced keeps its mode, and (written by root) its
#     owner and group;
#   - an output that can name no file ("", "dir/", ".") is a usage error
#     (exit 2) before any work: even the .nn file is not read;
#   - two outputs on one file, or an output over the model or its data, is
#     an error (exit 1) before any work, the files as they were; --save over
#     the --resume checkpoint is not (read first, then replaced whole).
#   - an output that could not be written at the end (a deleted working
#     directory, too few descriptors, another user's file in a sticky
#     directory, a name longer than the file system takes) is an error
#     before any work.
set -u
nnc=$1 examples=$2
moons=$examples/moons.nn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
fail() { echo "FAILED: $*"; exit 1; }
# write KIND PATH: one output of each kind to PATH
write() {
  case $1 in
    o) "$nnc" "$moons" --emit ir -o "$2" ;;
    save) "$nnc" "$moons" --train --epochs 1 --save "$2" >/dev/null ;;
    plot) "$nnc" "$moons" --train --epochs 1 --plot "$2" >/dev/null ;;
  esac
}
ext() { case $1 in o) echo ir ;; save) echo safetensors ;; plot) echo svg ;; esac; }

for kind in o save plot; do
  e=$(ext $kind)
  # a link to an existing file, and a dangling link
  echo old >"real.$e"
  ln -s "real.$e" "link.$e"
  write $kind "link.$e" 2>err || fail "$kind to a link: $(cat err)"
  [ -L "link.$e" ] || fail "$kind replaced the link link.$e"
  echo old | cmp -s - "real.$e" && fail "$kind did not write the link's target"
  ln -s "new.$e" "dangling.$e"
  write $kind "dangling.$e" 2>err || fail "$kind to a dangling link: $(cat err)"
  [ -L "dangling.$e" ] && [ -s "new.$e" ] || fail "$kind to a dangling link: the link or its new target"
  # a replaced file keeps its mode
  echo old >"mode.$e" && chmod 0640 "mode.$e"
  write $kind "mode.$e" 2>err || fail "$kind over a file: $(cat err)"
  [ "$(stat -c %a "mode.$e")" = 640 ] || fail "$kind changed the mode of a file it replaced to $(stat -c %a "mode.$e")"
  # a FIFO is written through, with a reader on the other side
  mkfifo "fifo.$e"
  (cat "fifo.$e" >"read.$e") &
  reader=$!
  timeout 120 bash -c "$(declare -f write); nnc='$nnc' moons='$moons' write $kind fifo.$e" 2>err ||
    fail "$kind to a FIFO: $(cat err)"
  wait $reader
  [ -p "fifo.$e" ] || fail "$kind replaced a FIFO"
  [ -s "read.$e" ] || fail "$kind to a FIFO: the reader got nothing"
  # a character device: a copy of /dev/null (root can make one)
  if [ "$(id -u)" = 0 ] && mknod "null.$e" c 1 3 2>/dev/null; then
    write $kind "null.$e" 2>err || fail "$kind to a device: $(cat err)"
    [ -c "null.$e" ] || fail "$kind replaced a character device with $(stat -c %F "null.$e")"
  fi
  # /dev/full, through a link: an error, nothing left
  ln -s /dev/full "full.$e"
  write $kind "full.$e" 2>err && fail "$kind to /dev/full succeeded"
  grep -q "^full.$e: error: .*No space left on device" err || fail "$kind to /dev/full: $(cat err)"
  # a socket cannot be opened as a file: an error before any work
  if command -v python3 >/dev/null; then
    python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "sock.$e"
    case $kind in
      o) "$nnc" "$moons" --emit ir -o "sock.$e" >out 2>err ;;
      *) "$nnc" "$moons" --train --epochs 1 --$kind "sock.$e" >out 2>err ;;
    esac && fail "$kind to a socket succeeded"
    [ "$(cat err)" = "sock.$e: error: cannot write: No such device or address" ] || fail "$kind to a socket: $(cat err)"
    [ ! -s out ] || fail "$kind to a socket: found only after the work"
  fi
  # unusable names: usage errors before anything is read
  for bad in "" "dir/" "." ".."; do
    case $kind in
      o) "$nnc" missing.nn --emit ir -o "$bad" 2>err; rc=$? ;;
      save) "$nnc" missing.nn --train --save "$bad" 2>err; rc=$? ;;
      plot) "$nnc" missing.nn --train --plot "$bad" 2>err; rc=$? ;;
    esac
    [ $rc = 2 ] || fail "$kind '$bad': exit status $rc, expected 2: $(cat err)"
    flag=$([ $kind = o ] && echo -o || echo --$kind)
    head -1 err | grep -qxF "nnc: $flag needs a file name, got '$bad'" || fail "$kind '$bad': $(cat err)"
    grep -q '^usage: nnc ' err || fail "$kind '$bad': no usage line"
  done
done
"$nnc" "$moons" --emit ir -o /dev/stdout >stdout.txt 2>err || fail "-o /dev/stdout: $(cat err)"
"$nnc" "$moons" --emit ir >plain.txt
cmp -s stdout.txt plain.txt || fail "-o /dev/stdout did not write standard output"
cp "$examples/digits.nn" d.nn && cp -r "$examples/data" . && cp d.nn d.orig && cp data/digits.csv digits.orig
clash() { # MESSAGE ARGS...
  local want=$1
  shift
  "$nnc" d.nn --train --epochs 1 "$@" >/dev/null 2>err
  [ $? = 1 ] && [ "$(cat err)" = "$want" ] || fail "nnc d.nn $*: $(cat err)"
}
clash "same.svg: error: --save and --plot name the same file: one would replace the other" --save same.svg --plot same.svg
clash "d.nn: error: --save would write over the model file" --save d.nn
# a link to a file not there yet: a write follows it (relative to the link's directory)
ln -s same.png link.png && mkdir -p sub && ln -s ../same2.png sub/link2.png
clash "link.png: error: --save and --plot name the same file: one would replace the other" --save link.png --plot same.png
clash "sub/link2.png: error: --save and --plot name the same file: one would replace the other" --save sub/link2.png --plot ./same2.png
[ ! -e same.png ] && [ ! -e same2.png ] || fail "a clash through a link wrote its file"
rm -f link.png sub/link2.png
clash "./data/digits.csv: error: --plot would write over the training data" --plot ./data/digits.csv
cmp -s d.nn d.orig && cmp -s data/digits.csv digits.orig || fail "a clash changed the model or its data"
[ ! -e same.svg ] || fail "a clash wrote same.svg"
"$nnc" d.nn --jit --train --epochs 1 --save c.st >/dev/null 2>err || fail "--save c.st: $(cat err)"
"$nnc" d.nn --jit --train --epochs 2 --resume c.st --save c.st >/dev/null 2>err || fail "--resume c.st --save c.st: $(cat err)"
# a name of 250 bytes (its temporary file's name must be shorter)
long=$(printf 'n%.0s' $(seq 1 247)).st
write save "$long" 2>err && [ -s "$long" ] || fail "a 250-byte name: $(cat err)"
if [ "$(id -u)" = 0 ]; then
  write save theirs.st 2>err && chown nobody:nogroup theirs.st && chmod 600 theirs.st || fail "theirs.st: $(cat err)"
  write save theirs.st 2>err || fail "replacing theirs.st: $(cat err)"
  [ "$(stat -c '%U:%G %a' theirs.st)" = "nobody:nogroup 600" ] || fail "theirs.st is now $(stat -c '%U:%G %a' theirs.st)"
fi
# outputs that could not be written at the end are refused before any work:
# a relative name in a deleted working directory, too few descriptors
before_work() { # NAME ARGS...: exit 1, the one line "NAME: error: cannot write: ...", nothing printed
  local name=$1
  shift
  "$nnc" "$@" >"$tmp/out" 2>"$tmp/err" && fail "$* succeeded"
  [ ! -s "$tmp/out" ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "^$name: error: cannot write: " "$tmp/err" ||
    fail "$*: $(cat "$tmp/out" "$tmp/err")"
}
mkdir gone && (cd gone && rmdir ../gone && before_work rel.st "$moons" --train --epochs 1 --save rel.st) || exit 1
nnc_few_fds() { # (descriptors the test runner left open would count too)
  (for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
   ulimit -n 5 && exec "$nnc_real" "$@")
}
nnc_real=$nnc nnc=nnc_few_fds before_work few.st "$moons" --train --epochs 1 --save few.st || exit 1
# a name past the file system's NAME_MAX (255 here), for each output
toolong=$(printf 'n%.0s' $(seq 1 300))
before_work "$toolong.st" "$moons" --train --epochs 1 --save "$toolong.st"
before_work "$toolong.svg" "$moons" --train --epochs 1 --plot "$toolong.svg"
before_work "$toolong.o" "$moons" --emit obj -o "$toolong.o"
grep -q 'File name too long$' "$tmp/err" || fail "a 304-byte name: $(cat "$tmp/err")"
# a file of another user in a sticky directory (/tmp), which only its owner
# or the directory's may replace
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
  setpriv --reuid=daemon --regid=daemon --clear-groups test -x "$nnc" 2>/dev/null; then
  mkdir -m 1777 sticky && echo old >sticky/other.st && chown nobody sticky/other.st && chmod 666 sticky/other.st
  chmod 755 .
    setpriv --reuid=daemon --regid=daemon --clear-groups env HOME=/nonexistent NNC_CACHE=0 \
    "$nnc" "$moons" --train --epochs 1 --save sticky/other.st >out 2>err && fail "replacing another user's file in a sticky directory succeeded"
  [ ! -s out ] && [ "$(cat err)" = "sticky/other.st: error: cannot write: Operation not permitted" ] || fail "sticky: $(cat out err)"
  [ "$(cat sticky/other.st)" = old ] || fail "sticky: the other user's file changed"
fi
leftover=$(ls | grep '\.tmp\.' || true)
[ -z "$leftover" ] || fail "temporary files left: $leftover"
echo "1 passed, 0 failed"
