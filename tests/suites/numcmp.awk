# numcmp.awk - compare two outputs of `nnc --grad` (or any lines of
# `word [shape] numbers...`) number by number.
#
#   awk -v rtol=1e-12 -v floor=1e-12 -v other=B.txt -f numcmp.awk A.txt
#
# Words that are not numbers must be equal. Two numbers a, b on a line agree
# when |a - b| <= rtol * max(|a|, |b|) or |a - b| <= floor * M, where M is
# the largest magnitude on that line (of either file): an absolute floor for
# values that are zero up to rounding. Prints every mismatch; exit 1 if any.
function abs(v) { return v < 0 ? -v : v }
function isnum(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ || s ~ /^[-+]?(inf|nan)$/ }
BEGIN { bad = 0 }
{
  if ((getline line < other) <= 0) { printf "line %d: only in the first output: %s\n", NR, $0; bad = 1; exit 1 }
  na = split($0, A, " "); nb = split(line, B, " ")
  if (na != nb) { printf "line %d: %d fields vs %d:\n  %s\n  %s\n", NR, na, nb, $0, line; bad = 1; next }
  m = 0
  for (i = 1; i <= na; i++)
    if (isnum(A[i]) && isnum(B[i])) {
      if (abs(A[i] + 0) > m) m = abs(A[i] + 0)
      if (abs(B[i] + 0) > m) m = abs(B[i] + 0)
    }
  for (i = 1; i <= na; i++) {
    if (isnum(A[i]) && isnum(B[i])) {
      if (A[i] ~ /nan|inf/ || B[i] ~ /nan|inf/) {
        if (A[i] != B[i]) { printf "line %d field %d: %s vs %s\n", NR, i, A[i], B[i]; bad = 1 }
        continue
      }
      a = A[i] + 0; b = B[i] + 0; d = abs(a - b)
      s = abs(a) > abs(b) ? abs(a) : abs(b)
      if (d > rtol * s && d > floor * m) {
        printf "line %d (%s) field %d: %s vs %s (rel %.3g)\n", NR, A[1], i, A[i], B[i], (s > 0 ? d / s : 0)
        bad = 1
      }
    } else if (A[i] != B[i]) {
      printf "line %d field %d: '%s' vs '%s'\n", NR, i, A[i], B[i]; bad = 1
    }
  }
}
END {
  if (!bad && (getline line < other) > 0) { printf "line %d: only in the second output: %s\n", NR + 1, line; bad = 1 }
  exit bad
}
