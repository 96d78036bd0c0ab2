/*
 * test_runtime.c - unit tests of the runtime services: the random number
 * generator, the moons/circles generators, the CSV reader, the initializers
 * and safetensors checkpoints, including hostile checkpoint files built here
 * in a temporary directory.
 *
 *   test_runtime [GOLDEN/init_seed0.safetensors]
 *
 * With the path, the reference checkpoint (and the CSV files next to it)
 * must load. Prints one line per group and "N passed, N failed"; the exit
 * status is 1 when any check failed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"

#define PI 3.141592653589793238462643383279502884

#include "../check.h"

/* ---- the temporary directory ---- */

static char tmpdir[] = "/tmp/nnc_test_runtime.XXXXXX";
static char *made[256]; /* everything created in tmpdir, for the cleanup */
static int nmade;

static const char *tmp_name(const char *name) {
  size_t len = strlen(tmpdir) + strlen(name) + 2;
  char *path = malloc(len);
  snprintf(path, len, "%s/%s", tmpdir, name);
  if (nmade < (int)(sizeof made / sizeof *made))
    made[nmade++] = path;
  return path;
}

static const char *tmp_file(const char *name, const void *data, size_t len) {
  const char *path = tmp_name(name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    printf("cannot write %s\n", path);
    exit(2);
  }
  return path;
}

static void cleanup(void) {
  for (int i = nmade - 1; i >= 0; i--) {
    remove(made[i]);
    free(made[i]);
  }
  rmdir(tmpdir);
}

/* err must read "PATH" + pos + ": error: " and then contain word. */
static int is_error(const char *err, const char *path, const char *pos,
                    const char *word) {
  char prefix[1024];
  snprintf(prefix, sizeof prefix, "%s%s: error: ", path, pos);
  int ok = strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, word);
  if (!ok)
    printf("  got message: %s\n  wanted: %s... %s\n", err, prefix, word);
  return ok;
}

/* ---- random numbers ---- */

static void test_rng_reference(void) {
  /* From a direct transcription of the reference splitmix64.c and
   * xoshiro256starstar.c. */
  NncRng r;
  nnc_rng_seed(&r, 0);
  CHECK(r.s[0] == 0xe220a8397b1dcdafu && r.s[1] == 0x6e789e6aa1b965f4u &&
        r.s[2] == 0x06c45d188009454fu && r.s[3] == 0xf88bb8a8724c81ecu);
  const uint64_t want0[4] = {0x99ec5f36cb75f2b4u, 0xbf6e1f784956452au,
                             0x1a5f849d4933e6e0u, 0x6aa594f1262d2d2cu};
  for (int i = 0; i < 4; i++)
    CHECK(nnc_rng_next(&r) == want0[i]);
  nnc_rng_seed(&r, 42);
  CHECK(nnc_rng_next(&r) == 0x15780b2e0c2ec716u);
  CHECK(nnc_rng_next(&r) == 0x6104d9866d113a7eu);

  /* Box-Muller from the same transcription (Python's math, glibc's libm). */
  nnc_rng_seed(&r, 1);
  CHECK(fabs(nnc_rng_normal(&r) - -1.5452228371402943) < 1e-14);
  CHECK(fabs(nnc_rng_normal(&r) - -0.19951530557849143) < 1e-14);
  CHECK(fabs(nnc_rng_normal(&r) - -1.0136476397283942) < 1e-14);

  NncRng a, b, c;
  nnc_rng_seed(&a, 7);
  nnc_rng_seed(&b, 7);
  nnc_rng_seed(&c, 8);
  int same = 1, differs = 0;
  for (int i = 0; i < 1000; i++) {
    double x = nnc_rng_normal(&a), y = nnc_rng_normal(&b);
    double z = nnc_rng_normal(&c);
    same &= x == y;
    differs |= x != z;
  }
  CHECK(same);
  CHECK(differs);
}

static void test_rng_statistics(void) {
  enum { N = 1000000 };
  NncRng r;
  nnc_rng_seed(&r, 1);
  double sum = 0, sq = 0, lo = 1, hi = 0;
  for (int i = 0; i < N; i++) {
    double u = nnc_rng_uniform(&r);
    sum += u;
    sq += u * u;
    lo = u < lo ? u : lo;
    hi = u > hi ? u : hi;
  }
  double mean = sum / N, var = sq / N - mean * mean;
  CHECK(lo >= 0 && hi < 1);
  CHECK(fabs(mean - 0.5) < 0.002);
  CHECK(fabs(var - 1.0 / 12) < 0.001);

  sum = sq = 0;
  int within1 = 0, finite = 1;
  for (int i = 0; i < N; i++) {
    double z = nnc_rng_normal(&r);
    finite &= isfinite(z) != 0;
    sum += z;
    sq += z * z;
    within1 += fabs(z) < 1;
  }
  mean = sum / N;
  var = sq / N - mean * mean;
  CHECK(finite);
  CHECK(fabs(mean) < 0.005);
  CHECK(fabs(var - 1) < 0.01);
  CHECK(fabs((double)within1 / N - 0.682689) < 0.003);
}

static void test_permutation(void) {
  enum { N = 1000 };
  static size_t perm[N];
  static int seen[N];
  NncRng r;
  nnc_rng_seed(&r, 3);
  nnc_rng_permutation(&r, N, perm);
  int valid = 1, moved = 0;
  for (int i = 0; i < N; i++) {
    valid &= perm[i] < N && !seen[perm[i]];
    if (perm[i] < N)
      seen[perm[i]] = 1;
    moved += perm[i] != (size_t)i;
  }
  CHECK(valid);
  CHECK(moved > N / 2);

  size_t one = 99;
  nnc_rng_permutation(&r, 1, &one);
  CHECK(one == 0);
  nnc_rng_permutation(&r, 0, NULL);

  /* All 6 orders of 3 elements, about equally often. */
  int count[6] = {0};
  for (int k = 0; k < 60000; k++) {
    size_t p[3];
    nnc_rng_permutation(&r, 3, p);
    count[p[0] * 2 + (p[1] > p[2])]++;
  }
  int even = 1;
  for (int i = 0; i < 6; i++)
    even &= abs(count[i] - 10000) < 500;
  CHECK(even);
}

/* ---- generators ---- */

static void test_moons(void) {
  NncData d;
  char err[256];
  REQUIRE(nnc_data_moons(&d, 1000, 0.1, 42, 2, 1, err, sizeof err) == 0);
  CHECK(d.rows == 1000 && d.in_cols == 2 && d.tgt_cols == 1);
  int ones = 0, labels_ok = 1, in_range = 1;
  double xmin = 9, xmax = -9;
  for (size_t i = 0; i < d.rows; i++) {
    double x = d.x[2 * i], y = d.x[2 * i + 1];
    labels_ok &= d.t[i] == 0 || d.t[i] == 1;
    ones += d.t[i] == 1;
    in_range &= x > -1.5 && x < 2.5 && y > -1 && y < 1.5;
    xmin = x < xmin ? x : xmin;
    xmax = x > xmax ? x : xmax;
  }
  CHECK(labels_ok && ones == 500);
  CHECK(in_range);
  CHECK(xmin < -0.8 && xmax > 1.8);

  NncData same, other, onehot;
  REQUIRE(nnc_data_moons(&same, 1000, 0.1, 42, 2, 1, err, sizeof err) == 0);
  REQUIRE(nnc_data_moons(&other, 1000, 0.1, 43, 2, 1, err, sizeof err) == 0);
  REQUIRE(nnc_data_moons(&onehot, 1000, 0.1, 42, 2, 2, err, sizeof err) == 0);
  CHECK(memcmp(d.x, same.x, 2000 * sizeof *d.x) == 0);
  CHECK(memcmp(d.t, same.t, 1000 * sizeof *d.t) == 0);
  CHECK(memcmp(d.x, other.x, 2000 * sizeof *d.x) != 0);
  CHECK(memcmp(d.x, onehot.x, 2000 * sizeof *d.x) == 0);
  int onehot_ok = onehot.tgt_cols == 2;
  for (size_t i = 0; i < 1000; i++)
    onehot_ok &= onehot.t[2 * i] == 1 - d.t[i] && onehot.t[2 * i + 1] == d.t[i];
  CHECK(onehot_ok);
  nnc_data_free(&d);
  nnc_data_free(&same);
  nnc_data_free(&other);
  nnc_data_free(&onehot);
  CHECK(d.x == NULL && d.rows == 0);
}

/* With noise 0 the rows are scikit-learn's points exactly, in some order. */
static void test_moons_geometry(void) {
  enum { N = 101, OUT = N / 2, IN = N - OUT };
  NncData d;
  char err[256];
  REQUIRE(nnc_data_moons(&d, N, 0, 5, 2, 1, err, sizeof err) == 0);
  REQUIRE(d.rows == N);
  int seen_out[OUT] = {0}, seen_in[IN] = {0}, exact = 1, shuffled = 0;
  for (size_t i = 0; i < N; i++) {
    double x = d.x[2 * i], y = d.x[2 * i + 1];
    if (d.t[i] == 0) {
      long k = lround(atan2(y, x) / (PI / (OUT - 1)));
      double a = k == OUT - 1 ? PI : k * (PI / (OUT - 1));
      exact &= k >= 0 && k < OUT && x == cos(a) && y == sin(a);
      if (k >= 0 && k < OUT)
        seen_out[k]++;
    } else {
      long k = lround(atan2(1 - y - 0.5, 1 - x) / (PI / (IN - 1)));
      double a = k == IN - 1 ? PI : k * (PI / (IN - 1));
      exact &= k >= 0 && k < IN && x == 1 - cos(a) && y == 1 - sin(a) - 0.5;
      if (k >= 0 && k < IN)
        seen_in[k]++;
    }
    shuffled |= i > 0 && d.t[i] < d.t[i - 1];
  }
  int once = 1;
  for (int k = 0; k < OUT; k++)
    once &= seen_out[k] == 1;
  for (int k = 0; k < IN; k++)
    once &= seen_in[k] == 1;
  CHECK(exact);
  CHECK(once);
  CHECK(shuffled);
  nnc_data_free(&d);

  /* The smallest data set: linspace of one point is [0]. */
  REQUIRE(nnc_data_moons(&d, 2, 0, 1, 2, 1, err, sizeof err) == 0);
  for (int i = 0; i < 2; i++)
    CHECK(d.t[i] == 0 ? d.x[2 * i] == 1 && d.x[2 * i + 1] == 0
                      : d.x[2 * i] == 0 && d.x[2 * i + 1] == 0.5);
  nnc_data_free(&d);
  REQUIRE(nnc_data_moons(&d, 7, 0.2, 1, 2, 1, err, sizeof err) == 0);
  double ones = 0;
  for (int i = 0; i < 7; i++)
    ones += d.t[i];
  CHECK(ones == 4); /* n_in = n - n/2 */
  nnc_data_free(&d);
}

static void test_circles(void) {
  NncData d;
  char err[256];
  REQUIRE(nnc_data_circles(&d, 200, 0, 0.5, 9, 2, 1, err, sizeof err) == 0);
  int ones = 0, radius_ok = 1;
  for (size_t i = 0; i < d.rows; i++) {
    double r = hypot(d.x[2 * i], d.x[2 * i + 1]);
    radius_ok &= fabs(r - (d.t[i] == 0 ? 1 : 0.5)) < 1e-12;
    ones += d.t[i] == 1;
  }
  CHECK(d.rows == 200 && ones == 100 && radius_ok);
  nnc_data_free(&d);

  REQUIRE(nnc_data_circles(&d, 2000, 0.05, 0.3, 9, 2, 2, err, sizeof err) == 0);
  double r_out = 0, r_in = 0;
  for (size_t i = 0; i < d.rows; i++) {
    double r = hypot(d.x[2 * i], d.x[2 * i + 1]);
    if (d.t[2 * i] == 1)
      r_out += r;
    else
      r_in += r;
  }
  CHECK(fabs(r_out / 1000 - 1) < 0.01 && fabs(r_in / 1000 - 0.3) < 0.02);
  NncData same, other;
  REQUIRE(nnc_data_circles(&same, 2000, 0.05, 0.3, 9, 2, 2, err, sizeof err) ==
          0);
  REQUIRE(nnc_data_circles(&other, 2000, 0.05, 0.3, 10, 2, 2, err,
                           sizeof err) == 0);
  CHECK(memcmp(d.x, same.x, 4000 * sizeof *d.x) == 0);
  CHECK(memcmp(d.x, other.x, 4000 * sizeof *d.x) != 0);
  nnc_data_free(&d);
  nnc_data_free(&same);
  nnc_data_free(&other);
}

static void test_generator_errors(void) {
  NncData d;
  char err[256];
  CHECK(nnc_data_moons(&d, 1, 0.1, 0, 2, 1, err, sizeof err) < 0);
  CHECK(is_error(err, "moons", "", "samples must be at least 2"));
  CHECK(d.x == NULL && d.t == NULL && d.rows == 0);
  CHECK(nnc_data_moons(&d, NNC_DATA_MAX_ROWS + 1, 0.1, 0, 2, 1, err,
                       sizeof err) < 0);
  CHECK(is_error(err, "moons", "", "at most"));
  CHECK(nnc_data_moons(&d, 10, -0.1, 0, 2, 1, err, sizeof err) < 0);
  CHECK(is_error(err, "moons", "", "noise"));
  CHECK(nnc_data_moons(&d, 10, NAN, 0, 2, 1, err, sizeof err) < 0);
  CHECK(is_error(err, "moons", "", "noise"));
  CHECK(nnc_data_moons(&d, 10, INFINITY, 0, 2, 1, err, sizeof err) < 0);
  CHECK(nnc_data_moons(&d, 10, 0.1, 0, 3, 1, err, sizeof err) < 0);
  CHECK(is_error(err, "moons", "", "2 input values"));
  CHECK(nnc_data_moons(&d, 10, 0.1, 0, 2, 3, err, sizeof err) < 0);
  CHECK(is_error(err, "moons", "", "targets"));
  CHECK(nnc_data_circles(&d, 10, 0.1, 0, 0, 2, 1, err, sizeof err) < 0);
  CHECK(is_error(err, "circles", "", "factor"));
  CHECK(nnc_data_circles(&d, 10, 0.1, 1, 0, 2, 1, err, sizeof err) < 0);
  CHECK(nnc_data_circles(&d, 10, 0.1, NAN, 0, 2, 1, err, sizeof err) < 0);
  CHECK(nnc_data_circles(&d, 1, 0.1, 0.5, 0, 2, 1, err, sizeof err) < 0);
  CHECK(is_error(err, "circles", "", "samples"));
  CHECK(d.x == NULL && d.t == NULL);
}

static void test_split(void) {
  NncData d, train, valid;
  char err[256];
  REQUIRE(nnc_data_moons(&d, 10, 0.1, 1, 2, 1, err, sizeof err) == 0);
  double x7 = d.x[14], t7 = d.t[7], x0 = d.x[0];
  nnc_data_split(&d, 4, &train, &valid);
  CHECK(d.x == NULL && d.rows == 0);
  REQUIRE(train.rows == 4 && valid.rows == 6 && train.x[0] == x0);
  CHECK(valid.in_cols == 2 && valid.tgt_cols == 1);
  CHECK(valid.x[6] == x7 && valid.t[3] == t7);
  nnc_data_free(&train);
  nnc_data_free(&valid);

  REQUIRE(nnc_data_moons(&d, 10, 0.1, 1, 2, 1, err, sizeof err) == 0);
  nnc_data_split(&d, 10, &train, &valid);
  CHECK(train.rows == 10 && valid.rows == 0 && valid.x == NULL);
  nnc_data_free(&train);
  nnc_data_free(&valid);
  REQUIRE(nnc_data_moons(&d, 10, 0.1, 1, 2, 1, err, sizeof err) == 0);
  nnc_data_split(&d, 0, &train, &valid);
  CHECK(train.rows == 0 && train.x == NULL && valid.rows == 10);
  nnc_data_free(&train);
  nnc_data_free(&valid);
}

/* ---- CSV ---- */

static int csv(const char *name, const char *text, int in, int tgt, int classes,
               int optional, NncData *d, char *err, const char **path) {
  *path = tmp_file(name, text, strlen(text));
  return nnc_data_csv(d, *path, in, tgt, classes, optional, err, 512);
}

static void test_csv_good(void) {
  NncData d;
  char err[512];
  const char *p;
  REQUIRE(csv("h.csv", "x1,x2,t\n1,2,0\n3.5,-4e-1,1\n", 2, 1, 0, 0, &d, err,
              &p) == 0);
  CHECK(d.rows == 2 && d.in_cols == 2 && d.tgt_cols == 1);
  CHECK(d.x[0] == 1 && d.x[1] == 2 && d.x[2] == 3.5 && d.x[3] == -0.4);
  CHECK(d.t[0] == 0 && d.t[1] == 1);
  nnc_data_free(&d);

  REQUIRE(csv("nohead.csv", "1,2,0\n3,4,1", 2, 1, 0, 0, &d, err, &p) == 0);
  CHECK(d.rows == 2 && d.x[0] == 1 && d.x[3] == 4 && d.t[1] == 1);
  nnc_data_free(&d);

  REQUIRE(csv("crlf.csv", "x1,x2,t\r\n\r\n 1 , 2 ,0\r\n\n3,\t4,1\r\n", 2, 1, 0,
              0, &d, err, &p) == 0);
  CHECK(d.rows == 2 && d.x[0] == 1 && d.x[1] == 2 && d.x[3] == 4);
  nnc_data_free(&d);

  REQUIRE(csv("bom.csv",
              "\xEF\xBB\xBF"
              "1,2,0\n",
              2, 1, 0, 0, &d, err, &p) == 0);
  CHECK(d.rows == 1 && d.x[0] == 1);
  nnc_data_free(&d);

  REQUIRE(csv("multi.csv", "1,2,3\n4,5,6\n", 1, 2, 0, 0, &d, err, &p) == 0);
  CHECK(d.rows == 2 && d.x[1] == 4 && d.t[0] == 2 && d.t[3] == 6);
  nnc_data_free(&d);

  REQUIRE(csv("onehot.csv", "a,b,label\n1,2,2\n3,4,0\n5,6,1.0\n", 2, 3, 3, 0,
              &d, err, &p) == 0);
  CHECK(d.rows == 3 && d.tgt_cols == 3);
  const double want[9] = {0, 0, 1, 1, 0, 0, 0, 1, 0};
  CHECK(d.t && memcmp(d.t, want, sizeof want) == 0);
  nnc_data_free(&d);

  REQUIRE(csv("pred.csv", "x1,x2\n1,2\n3,4\n", 2, 1, 0, 1, &d, err, &p) == 0);
  CHECK(d.rows == 2 && d.t == NULL && d.tgt_cols == 0 && d.x[3] == 4);
  nnc_data_free(&d);
  REQUIRE(csv("pred2.csv", "1,2,0\n3,4,1\n", 2, 1, 0, 1, &d, err, &p) == 0);
  CHECK(d.rows == 2 && d.t == NULL && d.x[2] == 3);
  nnc_data_free(&d);
  /* --predict on a file with a class label, as the training file has it */
  REQUIRE(csv("predlabel.csv", "1,2,2\n3,4,0\n", 2, 3, 3, 1, &d, err, &p) == 0);
  CHECK(d.rows == 2 && d.t == NULL && d.x[2] == 3);
  nnc_data_free(&d);
  REQUIRE(csv("decimal.csv", "+1.5,-.5,0\n2.,1e-3,1E+2\n", 2, 1, 0, 0, &d, err, &p) == 0);
  CHECK(d.x[0] == 1.5 && d.x[1] == -0.5 && d.x[2] == 2 && d.x[3] == 1e-3 && d.t[1] == 100);
  nnc_data_free(&d);
}

struct CsvCase {
  const char *name, *text;
  int in, tgt, classes, optional;
  const char *pos, *word; /* the expected error */
};

static void test_csv_errors(void) {
  static const struct CsvCase cases[] = {
      {"few.csv", "x1,x2,t\n1,2,0\n3,4\n", 2, 1, 0, 0, ":3:3",
       "expected 3 fields (2 inputs, 1 target), found 2"},
      {"many.csv", "1,2,0\n3,4,1,5\n", 2, 1, 0, 0, ":2:4", "found 4"},
      {"head.csv", "a,b\n1,2,0\n", 2, 1, 0, 0, ":1:3", "found 2"},
      {"abc.csv", "1,2,0\n3,abc,1\n", 2, 1, 0, 0, ":2:2", "got \"abc\""},
      {"tail.csv", "1,2,0\r\n3,4x ,1\r\n", 2, 1, 0, 0, ":2:2", "\"4x\""},
      {"hole.csv", "1,2,0\n\n1,,0\n", 2, 1, 0, 0, ":3:2", "empty field"},
      {"nan.csv", "1,2,0\n3,nan,1\n", 2, 1, 0, 0, ":2:2", "finite"},
      {"inf.csv", "x,y,t\n1,2,0\n-inf,2,1\n", 2, 1, 0, 0, ":3:1", "finite"},
      {"huge.csv", "1,2,0\n1,2,1e999\n", 2, 1, 0, 0, ":2:3", "finite"},
      {"empty.csv", "", 2, 1, 0, 0, "", "no data rows"},
      {"blank.csv", "\n\r\n  \n", 2, 1, 0, 0, "", "no data rows"},
      {"onlyhead.csv", "x,y,t\n", 2, 1, 0, 0, "", "after the header"},
      {"label3.csv", "1,2,3\n", 2, 3, 3, 0, ":1:3", "from 0 to 2"},
      {"labelneg.csv", "1,2,1\n1,2,-1\n", 2, 3, 3, 0, ":2:3", "class label"},
      {"labelhalf.csv", "1,2,0.5\n", 2, 3, 3, 0, ":1:3", "got 0.5"},
      {"labelargs.csv", "1,2,0\n", 2, 2, 3, 0, "", "3 classes"},
      {"optfew.csv", "1\n", 2, 1, 0, 1, ":1:2", "at least 2 fields"},
      {"optragged.csv", "1,2\n1,2,3\n", 2, 1, 0, 1, ":2:3",
       "expected 2 fields as on line 1"},
      {"optwide.csv", "1,2,3,4\n", 2, 1, 0, 1, ":1:4",
       "expected 2 fields (the model's inputs) or 3 (inputs and targets), found 4"},
      {"optpart.csv", "1,2,3\n", 2, 2, 0, 1, ":1:4",
       "expected 2 fields (the model's inputs) or 4 (inputs and targets), found 3"},
      {"optlabel.csv", "1,2,0,1\n", 2, 3, 3, 1, ":1:5",
       "2 fields (the model's inputs), 3 (inputs and a class label) or 5 (inputs and targets), found 4"},
      {"hex.csv", "1,2,0\n0x10,2,1\n", 2, 1, 0, 0, ":2:1", "expected a decimal number, got \"0x10\""},
      {"hexfloat.csv", "1,2,0x1p3\n", 2, 1, 0, 0, ":1:3", "decimal number"},
      {"infinity.csv", "1,2,0\n1,-Infinity,1\n", 2, 1, 0, 0, ":2:2", "finite"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const struct CsvCase *c = &cases[i];
    NncData d;
    char err[512];
    const char *path;
    int rc = csv(c->name, c->text, c->in, c->tgt, c->classes, c->optional, &d,
                 err, &path);
    CHECK(rc < 0 && is_error(err, path, c->pos, c->word));
    CHECK(d.x == NULL && d.t == NULL && d.rows == 0);
  }
}

static void test_csv_files(void) {
  NncData d;
  char err[512];
  const char *missing = tmp_name("missing.csv");
  CHECK(nnc_data_csv(&d, missing, 2, 1, 0, 0, err, sizeof err) < 0);
  CHECK(is_error(err, missing, "", "cannot open"));
  const char *dir = tmp_name("dir.csv");
  mkdir(dir, 0700);
  CHECK(nnc_data_csv(&d, dir, 2, 1, 0, 0, err, sizeof err) < 0);
  CHECK(is_error(err, dir, "", "is a directory"));

  size_t len = ((size_t)1 << 20) + 100;
  char *text = malloc(len + 7);
  memcpy(text, "1,2,0\n", 6);
  memset(text + 6, ' ', len);
  text[6 + len] = '\n';
  const char *path = tmp_file("long.csv", text, len + 7);
  free(text);
  CHECK(nnc_data_csv(&d, path, 2, 1, 0, 0, err, sizeof err) < 0);
  CHECK(is_error(err, path, ":2:1", "longer than 1 MiB"));

  /* Many rows: the arrays grow past their first allocation. */
  size_t rows = 5000;
  text = malloc(rows * 8 + 1);
  size_t n = 0;
  for (size_t i = 0; i < rows; i++)
    n += (size_t)sprintf(text + n, "%zu,%zu\n", i, i % 2);
  path = tmp_file("rows.csv", text, n);
  free(text);
  REQUIRE(nnc_data_csv(&d, path, 1, 1, 0, 0, err, sizeof err) == 0);
  CHECK(d.rows == rows && d.x[rows - 1] == (double)(rows - 1) &&
        d.t[rows - 1] == 1);
  nnc_data_free(&d);
}

/* The limits a CSV read checks as it goes, made small; a FIFO fed by a
 * child stands for a stream whose size nobody knows in advance. */
static const char *fifo_of(const char *name, const char *text, size_t len,
                           pid_t *writer) {
  const char *path = tmp_name(name);
  mkfifo(path, 0600);
  *writer = fork();
  if (*writer == 0) {
    signal(SIGPIPE, SIG_DFL);
    int fd = open(path, O_WRONLY);
    while (fd >= 0 && len > 0) {
      ssize_t w = write(fd, text, len);
      if (w <= 0)
        break;
      text += w;
      len -= (size_t)w;
    }
    _exit(0);
  }
  return path;
}

static void test_csv_limits(void) {
  const NncDataLimits lim = {.line_bytes = 64, .file_bytes = 1000, .rows = 10,
                             .values = 25};
  NncData d;
  char err[512], text[8192];
  size_t n = 0;
  for (int i = 0; i < 11; i++)
    n += (size_t)sprintf(text + n, "%d,%d\n", i, i % 2);
  const char *path = tmp_file("lim_rows.csv", text, n);
  CHECK(nnc_data_csv_within(&d, path, 1, 1, 0, 0, &lim, err, sizeof err) < 0);
  CHECK(is_error(err, path, ":11:1", "more than 10 data rows"));
  CHECK(d.x == NULL && d.rows == 0);

  const char *nine = "1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n1,2,0\n"
                     "1,2,0\n";
  path = tmp_file("lim_values.csv", nine, strlen(nine));
  CHECK(nnc_data_csv_within(&d, path, 2, 1, 0, 0, &lim, err, sizeof err) < 0);
  CHECK(is_error(err, path, ":9:1", "more than 25 values in the data set (8 rows of 3)"));

  const char *wide = "1,2,0\n1,                                             "
                     "                    2,0\n";
  path = tmp_file("lim_line.csv", wide, strlen(wide));
  CHECK(nnc_data_csv_within(&d, path, 2, 1, 0, 0, &lim, err, sizeof err) < 0);
  CHECK(is_error(err, path, ":2:1", "line is longer than 64 bytes"));

  /* a regular file is measured before it is read, a stream as it comes */
  memset(text, '\n', 2000);
  path = tmp_file("lim_file.csv", text, 2000);
  CHECK(nnc_data_csv_within(&d, path, 2, 1, 0, 0, &lim, err, sizeof err) < 0);
  CHECK(is_error(err, path, "", "the file is larger than 1000 bytes"));
  pid_t writer;
  path = fifo_of("lim_fifo.csv", text, 8000, &writer);
  CHECK(nnc_data_csv_within(&d, path, 2, 1, 0, 0, &lim, err, sizeof err) < 0);
  CHECK(is_error(err, path, "", "more than 1000 bytes read"));
  waitpid(writer, NULL, 0);

  /* the default limits stop /dev/zero at its first line */
  CHECK(nnc_data_csv(&d, "/dev/zero", 2, 1, 0, 0, err, sizeof err) < 0);
  CHECK(is_error(err, "/dev/zero", ":1:1", "line is longer than 1 MiB"));

  /* rows from a FIFO, with every kind of line break */
  const char *breaks = "x,y,t\r1,2,0\r\n3,4,1\n5,6,0";
  path = fifo_of("rows_fifo.csv", breaks, strlen(breaks), &writer);
  REQUIRE(nnc_data_csv(&d, path, 2, 1, 0, 0, err, sizeof err) == 0);
  CHECK(d.rows == 3 && d.x[4] == 5 && d.t[1] == 1);
  nnc_data_free(&d);
  waitpid(writer, NULL, 0);

  /* a CR LF split across two reads is one line break: the error is on line 3 */
  size_t first = ((size_t)1 << 17) - 1; /* the first read's last byte */
  char *big = malloc(first + 64);
  memcpy(big, "1,2,0", 5);
  memset(big + 5, ' ', first - 5);
  n = first;
  n += (size_t)sprintf(big + n, "\r\n3,4,1\r\nabc,4,1\r\n");
  CHECK(big[first] == '\r');
  path = tmp_file("crlf_split.csv", big, n);
  free(big);
  CHECK(nnc_data_csv(&d, path, 2, 1, 0, 0, err, sizeof err) < 0);
  CHECK(is_error(err, path, ":3:1", "expected a number, got \"abc\""));
}

/* ---- initializers ---- */

static void moments(const double *v, size_t n, double *mean, double *std) {
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n; i++) {
    sum += v[i];
    sq += v[i] * v[i];
  }
  *mean = sum / (double)n;
  *std = sqrt(sq / (double)n - *mean * *mean);
}

static double max_abs(const double *v, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = fabs(v[i]) > m ? fabs(v[i]) : m;
  return m;
}

static void test_init(void) {
  enum { N = 200 * 300 };
  static double w[N], w2[N];
  const int64_t dims[2] = {200, 300};
  NncRng r;
  double mean, std;

  nnc_rng_seed(&r, 0);
  nnc_init_fill(NNC_INIT_XAVIER_NORMAL, 0, &r, 2, dims, w);
  moments(w, N, &mean, &std);
  CHECK(fabs(mean) < 0.002);
  CHECK(fabs(std / sqrt(2.0 / 500) - 1) < 0.02);
  nnc_rng_seed(&r, 0);
  nnc_init_fill(NNC_INIT_XAVIER_NORMAL, 0, &r, 2, dims, w2);
  CHECK(memcmp(w, w2, sizeof w) == 0);

  nnc_init_fill(NNC_INIT_HE_NORMAL, 0, &r, 2, dims, w);
  moments(w, N, &mean, &std);
  CHECK(fabs(std / sqrt(2.0 / 300) - 1) < 0.02);

  nnc_init_fill(NNC_INIT_NORMAL, 0.5, &r, 2, dims, w);
  moments(w, N, &mean, &std);
  CHECK(fabs(std / 0.5 - 1) < 0.02);

  double a = sqrt(6.0 / 500);
  nnc_init_fill(NNC_INIT_XAVIER_UNIFORM, 0, &r, 2, dims, w);
  moments(w, N, &mean, &std);
  CHECK(max_abs(w, N) <= a && max_abs(w, N) > 0.999 * a);
  CHECK(fabs(std / (a / sqrt(3)) - 1) < 0.02 && fabs(mean) < 0.002);

  nnc_init_fill(NNC_INIT_UNIFORM, 0.3, &r, 2, dims, w);
  CHECK(max_abs(w, N) <= 0.3 && max_abs(w, N) > 0.299);

  /* Rank 4, as a convolution kernel: the receptive field scales both fans. */
  const int64_t kernel[4] = {8, 4, 3, 3};
  nnc_init_fill(NNC_INIT_XAVIER_UNIFORM, 0, &r, 4, kernel, w);
  double bound = sqrt(6.0 / (36 + 72));
  CHECK(max_abs(w, 288) <= bound && max_abs(w, 288) > 0.9 * bound);

  /* Zeros and constants draw nothing. */
  uint64_t s0 = r.s[0], s3 = r.s[3];
  int spare = r.has_spare;
  w[12] = 5;
  nnc_init_fill(NNC_INIT_ZEROS, 0, &r, 2, dims, w);
  CHECK(max_abs(w, N) == 0 && w[N - 1] == 0);
  nnc_init_fill(NNC_INIT_CONSTANT, 0.7, NULL, 2, dims, w);
  int all = 1;
  for (int i = 0; i < N; i++)
    all &= w[i] == 0.7;
  CHECK(all);
  CHECK(r.s[0] == s0 && r.s[3] == s3 && r.has_spare == spare);

  w[1] = 42;
  nnc_init_fill(NNC_INIT_XAVIER_NORMAL, 0, &r, 0, NULL, w);
  CHECK(w[0] != 0 && w[1] == 42);
  const int64_t vec[1] = {5};
  nnc_init_fill(NNC_INIT_UNIFORM, 2, &r, 1, vec, w);
  CHECK(max_abs(w, 5) <= 2 && max_abs(w, 5) > 0 && w[5] == 0.7);
}

/* ---- safetensors ---- */

static int file_has_temp(void) {
  DIR *dir = opendir(tmpdir);
  int found = 0;
  for (struct dirent *e; dir && (e = readdir(dir));)
    found |= strstr(e->d_name, ".tmp.") != NULL;
  if (dir)
    closedir(dir);
  return found;
}

static void test_st_roundtrip(void) {
  char err[512];
  const float w[6] = {1.5f, -0.0f, 1e-40f, FLT_MAX, -3.25f, 7};
  const float s = 0.125f;
  const NncTensorSpec specs[3] = {
      {"layer.W", NNC_ST_F32, 2, {2, 3}},
      {"s", NNC_ST_F32, 0, {0}},
      {"none", NNC_ST_F32, 2, {0, 4}},
  };
  const void *data[3] = {w, &s, w};
  const char *meta[4] = {"epoch", "12", "note", "a \"quoted\"\nvalue"};
  const char *path = tmp_name("f32.safetensors");
  REQUIRE(nnc_st_save(path, specs, data, 3, meta, 2, err, sizeof err) == 0);
  CHECK(!file_has_temp());

  FILE *f = fopen(path, "rb");
  unsigned char head[9] = {0};
  CHECK(f && fread(head, 1, 9, f) == 9);
  if (f)
    fclose(f);
  uint64_t len = 0;
  for (int i = 0; i < 8; i++)
    len |= (uint64_t)head[i] << (8 * i);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size == 8 + len + 28);
  CHECK(len % 8 == 0 && head[8] == '{');

  float w_back[6], s_back = 0, none_back = 99;
  memset(w_back, 0xff, sizeof w_back);
  void *dst[3] = {w_back, &s_back, &none_back};
  REQUIRE(nnc_st_load(path, specs, dst, 3, err, sizeof err) == 0);
  CHECK(memcmp(w, w_back, sizeof w) == 0 && s_back == s && none_back == 99);

  char value[64];
  CHECK(nnc_st_metadata(path, "epoch", value, sizeof value, err, sizeof err) ==
            0 &&
        strcmp(value, "12") == 0);
  CHECK(nnc_st_metadata(path, "note", value, sizeof value, err, sizeof err) ==
            0 &&
        strcmp(value, meta[3]) == 0);
  CHECK(nnc_st_metadata(path, "nope", value, sizeof value, err, sizeof err) ==
        1);
  CHECK(nnc_st_metadata(path, "note", value, 4, err, sizeof err) < 0);

  const double a[8] = {1, 2, 3, 4, 5, 6, 7, -8.125};
  const double b[4] = {0.1, 0.2, -0.3, 1e300};
  const double c[1] = {-1e-310};
  const NncTensorSpec specs64[3] = {
      {"linear1.W", NNC_ST_F64, 2, {4, 2}},
      {"linear1.b", NNC_ST_F64, 1, {4}},
      {"k", NNC_ST_F64, 4, {1, 1, 1, 1}},
  };
  const void *data64[3] = {a, b, c};
  path = tmp_name("f64.safetensors");
  REQUIRE(nnc_st_save(path, specs64, data64, 3, NULL, 0, err, sizeof err) == 0);
  /* Saving again replaces the file. */
  REQUIRE(nnc_st_save(path, specs64, data64, 3, NULL, 0, err, sizeof err) == 0);
  double a2[8], b2[4], c2[1];
  void *dst64[3] = {a2, b2, c2};
  REQUIRE(nnc_st_load(path, specs64, dst64, 3, err, sizeof err) == 0);
  CHECK(memcmp(a, a2, sizeof a) == 0 && memcmp(b, b2, sizeof b) == 0 &&
        memcmp(c, c2, sizeof c) == 0);
  CHECK(nnc_st_metadata(path, "epoch", value, sizeof value, err, sizeof err) ==
        1);
}

static void test_st_save_errors(void) {
  char err[512];
  const double a[2] = {1, 2};
  const NncTensorSpec spec = {"w", NNC_ST_F64, 1, {2}};
  const void *data[2] = {a, a};

  const char *nodir = tmp_name("nodir/x.safetensors");
  CHECK(nnc_st_save(nodir, &spec, data, 1, NULL, 0, err, sizeof err) < 0);
  CHECK(is_error(err, nodir, "", "cannot write: No such file or directory"));

  /* a directory is refused, and no temporary file is left */
  const char *dir = tmp_name("dir.safetensors");
  mkdir(dir, 0700);
  CHECK(nnc_st_save(dir, &spec, data, 1, NULL, 0, err, sizeof err) < 0);
  CHECK(is_error(err, dir, "", "cannot write: Is a directory"));
  CHECK(!file_has_temp());

  const NncTensorSpec twice[2] = {spec, spec};
  const char *path = tmp_name("twice.safetensors");
  CHECK(nnc_st_save(path, twice, data, 2, NULL, 0, err, sizeof err) < 0);
  CHECK(is_error(err, path, "", "appears twice"));
  const NncTensorSpec rank5 = {"w", NNC_ST_F64, 5, {1, 1, 1, 1}};
  CHECK(nnc_st_save(path, &rank5, data, 1, NULL, 0, err, sizeof err) < 0);
  CHECK(access(path, F_OK) != 0 && !file_has_temp());
}

/* A safetensors file with header length len (the header's own length when
 * len is 0) and a blob of blob_len bytes. */
static const char *st_file(const char *name, uint64_t len, const char *header,
                           size_t blob_len) {
  size_t hlen = strlen(header);
  size_t size = 8 + hlen + blob_len;
  unsigned char *bytes = calloc(1, size);
  if (len == 0)
    len = hlen;
  for (int i = 0; i < 8; i++)
    bytes[i] = (unsigned char)(len >> (8 * i));
  memcpy(bytes + 8, header, hlen);
  for (size_t i = 0; i < blob_len; i++)
    bytes[8 + hlen + i] = (unsigned char)i;
  const char *path = tmp_file(name, bytes, size);
  free(bytes);
  return path;
}

struct StCase {
  const char *name, *header;
  size_t blob;
  const char *word;
};

#define W_F64                                                                  \
  "\"w\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[0,64]}"

static void test_st_hostile(void) {
  static const struct StCase cases[] = {
      {"json.st", "{" W_F64 ",", 64, "not valid JSON"},
      {"trailing.st", "{" W_F64 "} x", 64, "not valid JSON"},
      {"array.st", "[1,2]", 64, "not a JSON object"},
      {"entry.st", "{\"w\":5}", 64, "not a JSON object"},
      {"range.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[0,64]}}",
       32, "outside the data (32 bytes)"},
      {"reversed.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[64,0]}}", 64,
       "begin after end"},
      {"overlap.st",
       "{" W_F64 ",\"v\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":"
       "[32,64]}}",
       64, "overlapping"},
      {"size.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[0,32]}}",
       64, "hold 32 bytes, but F64 [4,2] needs 64"},
      {"dtype.st",
       "{\"w\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,32]}}",
       64, "tensor w has dtype F32, model expects F64"},
      {"shape.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4,3],\"data_offsets\":[0,96]}}",
       96, "tensor w has shape [4,3], model expects [4,2]"},
      {"scalar.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 64,
       "has shape [], model expects [4,2]"},
      {"missing.st",
       "{\"v\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[0,64]}}",
       64, "tensor w is missing"},
      {"extra.st",
       "{" W_F64 ",\"extra\":{\"dtype\":\"F64\",\"shape\":[],"
       "\"data_offsets\":[64,72]}}",
       72, "unexpected tensor extra"},
      {"f16.st",
       "{\"w\":{\"dtype\":\"F16\",\"shape\":[4,2],\"data_offsets\":[0,16]}}",
       64, "unsupported dtype \"F16\""},
      {"i64.st",
       "{\"w\":{\"dtype\":\"I64\",\"shape\":[4,2],\"data_offsets\":[0,64]}}",
       64, "unsupported dtype"},
      {"nodtype.st", "{\"w\":{\"shape\":[4,2],\"data_offsets\":[0,64]}}", 64,
       "dtype is missing"},
      {"negdim.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[-4,2],\"data_offsets\":[0,64]}}",
       64, "shape"},
      {"fracdim.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4.5,2],\"data_offsets\":[0,72]}}",
       72, "shape"},
      {"rank5.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[1,1,1,4,2],\"data_offsets\":"
       "[0,64]}}",
       64, "at most 4"},
      {"bigdim.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4503599627370496,"
       "4503599627370496,4503599627370496],\"data_offsets\":[0,64]}}",
       64, "too large"},
      {"offsets3.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":[0,32,64]}}",
       64, "data_offsets must be"},
      {"offsetstr.st",
       "{\"w\":{\"dtype\":\"F64\",\"shape\":[4,2],\"data_offsets\":\"0-64\"}}",
       64, "data_offsets must be"},
      {"dup.st", "{" W_F64 "," W_F64 "}", 64, "appears twice"},
      {"meta.st", "{" W_F64 ",\"__metadata__\":{\"epoch\":12}}", 64,
       "not a string"},
      {"metaobj.st", "{" W_F64 ",\"__metadata__\":[\"a\"]}", 64,
       "__metadata__ is not a JSON object"},
  };
  const NncTensorSpec spec = {"w", NNC_ST_F64, 2, {4, 2}};
  double w[8];
  void *dst[1] = {w};
  char err[512], value[64];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const struct StCase *c = &cases[i];
    const char *path = st_file(c->name, 0, c->header, c->blob);
    memset(w, 0x5a, sizeof w);
    CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
          is_error(err, path, "", c->word));
    CHECK(((unsigned char *)w)[63] == 0x5a); /* nothing was copied */
  }

  /* Both tensors of the same model: a missing one is named. */
  const NncTensorSpec two[2] = {spec, {"b", NNC_ST_F64, 1, {4}}};
  double b[4];
  void *dst2[2] = {w, b};
  const char *path = st_file("one.st", 0, "{" W_F64 "}", 64);
  CHECK(nnc_st_load(path, two, dst2, 2, err, sizeof err) < 0 &&
        is_error(err, path, "", "tensor b is missing"));

  /* Files broken below the JSON level. */
  path = tmp_file("short.st", "\x10\0\0\0\0", 5);
  CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
        is_error(err, path, "", "too short"));
  path = st_file("len40.st", (uint64_t)1 << 40, "{}", 0);
  CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
        is_error(err, path, "", "header length 1099511627776"));
  path = st_file("lenbig.st", 100, "{}", 50);
  CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
        is_error(err, path, "", "larger than the rest of the file"));
  /* Just over the 100 MiB limit, in a sparse file of the matching size:
   * refused without reading it. */
  path = tmp_name("limit.st");
  FILE *f = fopen(path, "wb");
  uint64_t limit = ((uint64_t)100 << 20) + 1;
  unsigned char len_field[8];
  for (int i = 0; i < 8; i++)
    len_field[i] = (unsigned char)(limit >> (8 * i));
  CHECK(f && fwrite(len_field, 1, 8, f) == 8 && fflush(f) == 0 &&
        ftruncate(fileno(f), (off_t)(8 + limit)) == 0);
  if (f)
    fclose(f);
  CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
        is_error(err, path, "", "exceeds the 100 MiB limit"));
  path = tmp_file("nul.st", "\x04\0\0\0\0\0\0\0{}\0\0", 12);
  CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
        is_error(err, path, "", "not valid JSON"));
  path = tmp_name("absent.st");
  CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
        is_error(err, path, "", "cannot open"));
  CHECK(nnc_st_metadata(path, "k", value, sizeof value, err, sizeof err) < 0);
  path = tmp_name("dir.st");
  mkdir(path, 0700);
  CHECK(nnc_st_load(path, &spec, dst, 1, err, sizeof err) < 0 &&
        is_error(err, path, "", "is a directory"));

  /* A correct file written by someone else: metadata first, padding,
   * spaces, an empty tensor inside another's range. */
  path = st_file("other.st", 0,
                 "{\"__metadata__\":{\"format\":\"pt\"}, " W_F64
                 ", \"e\": {\"dtype\":\"F64\",\"shape\":[0,3],"
                 "\"data_offsets\":[8,8]}}   ",
                 64);
  const NncTensorSpec with_empty[2] = {spec, {"e", NNC_ST_F64, 2, {0, 3}}};
  void *dst3[2] = {w, b};
  REQUIRE(nnc_st_load(path, with_empty, dst3, 2, err, sizeof err) == 0);
  CHECK(((unsigned char *)w)[0] == 0 && ((unsigned char *)w)[63] == 63);
  CHECK(nnc_st_metadata(path, "format", value, sizeof value, err, sizeof err) ==
            0 &&
        strcmp(value, "pt") == 0);
}

/* ---- the reference files ---- */

static const char *golden_path;

static void test_golden(void) {
  static const NncTensorSpec specs[8] = {
      {"linear1.W", NNC_ST_F64, 2, {4, 2}}, {"linear1.b", NNC_ST_F64, 1, {4}},
      {"linear2.W", NNC_ST_F64, 2, {4, 4}}, {"linear2.b", NNC_ST_F64, 1, {4}},
      {"linear3.W", NNC_ST_F64, 2, {4, 4}}, {"linear3.b", NNC_ST_F64, 1, {4}},
      {"linear4.W", NNC_ST_F64, 2, {1, 4}}, {"linear4.b", NNC_ST_F64, 1, {1}},
  };
  double w1[8], b1[4], w2[16], b2[4], w3[16], b3[4], w4[4], b4[1];
  void *dst[8] = {w1, b1, w2, b2, w3, b3, w4, b4};
  char err[512], value[256];
  REQUIRE(nnc_st_load(golden_path, specs, dst, 8, err, sizeof err) == 0);
  CHECK(w1[0] == 0.07259037699354177 && w1[7] == 0.546797449007038);
  CHECK(b1[0] == 0 && b1[3] == 0 && b4[0] == 0);
  CHECK(nnc_st_metadata(golden_path, "sizes", value, sizeof value, err,
                        sizeof err) == 0 &&
        strcmp(value, "2,4,4,4,1") == 0);
  /* Strict: a model with f32 parameters must not load it. */
  NncTensorSpec f32[8];
  memcpy(f32, specs, sizeof specs);
  f32[0].dtype = NNC_ST_F32;
  CHECK(nnc_st_load(golden_path, f32, dst, 8, err, sizeof err) < 0 &&
        strstr(err, "linear1.W has dtype F64, model expects F32"));

  /* The CSV files beside it, when they are there. */
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", golden_path);
  char *slash = strrchr(dir, '/');
  if (slash)
    slash[1] = '\0';
  else
    strcpy(dir, "./");
  char path[1100];
  NncData d;
  snprintf(path, sizeof path, "%smoons_train.csv", dir);
  if (access(path, R_OK) == 0) {
    REQUIRE(nnc_data_csv(&d, path, 2, 1, 0, 0, err, sizeof err) == 0);
    CHECK(d.rows == 320 && d.x[0] == 0.84566325256198627 &&
          d.x[1] == -0.48801636048849895 && d.t[0] == 1);
    nnc_data_free(&d);
  }
  snprintf(path, sizeof path, "%sdigits.csv", dir);
  if (access(path, R_OK) == 0) {
    REQUIRE(nnc_data_csv(&d, path, 64, 10, 10, 0, err, sizeof err) == 0);
    CHECK(d.rows == 1797 && d.tgt_cols == 10);
    double total = 0;
    for (size_t i = 0; i < d.rows * 10; i++)
      total += d.t[i];
    CHECK(total == 1797);
    nnc_data_free(&d);
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* the lines so far survive a crash */
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 2;
  }
  run_group("rng: reference values, determinism", test_rng_reference);
  run_group("rng: uniform and normal statistics", test_rng_statistics);
  run_group("rng: permutation", test_permutation);
  run_group("data: moons", test_moons);
  run_group("data: moons geometry", test_moons_geometry);
  run_group("data: circles", test_circles);
  run_group("data: generator arguments refused", test_generator_errors);
  run_group("data: split", test_split);
  run_group("csv: accepted files", test_csv_good);
  run_group("csv: refused files", test_csv_errors);
  run_group("csv: missing, directory, long lines, many rows", test_csv_files);
  run_group("csv: limits, streams, line breaks", test_csv_limits);
  run_group("init: formulas", test_init);
  run_group("safetensors: round trip", test_st_roundtrip);
  run_group("safetensors: save failures", test_st_save_errors);
  run_group("safetensors: hostile files", test_st_hostile);
  if (argc > 1) {
    golden_path = argv[1];
    run_group("golden: init_seed0.safetensors and CSV", test_golden);
  } else {
    printf("skip  golden: no path given\n");
  }
  cleanup();
  return check_report();
}
