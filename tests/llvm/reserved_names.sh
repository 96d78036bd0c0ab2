#!/usr/bin/env bash
# reserved_names.sh NNC NNC_H - a model whose object would have symbols in
# libnnc's namespace is refused by --emit obj and --emit header: for every
# first word of a function nnc.h declares (nnc_interp_forward: interp), a
# model named that word, or that word, `_` and more, is an error at the
# model's name (with the source line and a caret), exit status 1 and no
# file; a name that only starts with the word (interpx) is fine, and so is
# every other --emit of a refused name. (`model` is a keyword: no name.)
set -eu
nnc=$1 header=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
words=$(grep -E '^NNC_API' "$header" | grep -oE 'nnc_[a-z0-9_]+\(' | sed -E 's/^nnc_([a-z0-9]+).*/\1/' | sort -u)
[ "$(echo "$words" | wc -l)" -ge 10 ] || { echo "too few words from $header: $words"; exit 1; }
model() {
  printf 'model %s {\n  input x[2]\n  target t[1]\n  y = x -> linear(1)\n  loss squared(y, t)\n}\n' "$1" > "$tmp/$1.nn"
}
for word in $words; do
  for name in "$word" "${word}_net"; do
    model "$name"
    for kind in obj header; do
      status=0
      "$nnc" "$tmp/$name.nn" --emit $kind -o "$tmp/out" 2> "$tmp/err" || status=$?
      [ $status = 1 ] || { echo "$name: --emit $kind exits $status"; exit 1; }
      [ ! -e "$tmp/out" ] || { echo "$name: --emit $kind wrote a file"; exit 1; }
      # (a keyword, as `model`, is no name anyway)
      grep -q "^$tmp/$name.nn:1:7: error: model name '$name' would give the object's symbols (nnc_${name}_forward, ...) the prefix nnc_${word}_ of libnnc's functions: rename the model\$" "$tmp/err" ||
        grep -q "^$tmp/$name.nn:1:7: error: unexpected '$name'; '$name' is a keyword" "$tmp/err" ||
        { echo "$name: --emit $kind:"; cat "$tmp/err"; exit 1; }
      [ "$(sed -n 3p "$tmp/err")" = "        ^" ] || { echo "$name: no caret under the name"; cat "$tmp/err"; exit 1; }
    done
  done
  "$nnc" "$tmp/${word}_net.nn" --emit llvm > /dev/null
  model "${word}x"
  "$nnc" "$tmp/${word}x.nn" --emit header -o "$tmp/ok.h"
done
echo "ok: refused" $words
