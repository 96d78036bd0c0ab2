/*
 * test_util.c - unit tests of util's string map and closest-name search.
 * Prints "N passed, N failed"; the exit status is 1 when any check failed.
 */
#include <stdio.h>
#include <string.h>

#include "util.h"

#include "../check.h"

static void test_strmap(void) {
  StrMap m = {0};
  CHECK(strmap_get(&m, "x") == NULL); /* an empty map */
  /* enough keys to grow the table several times */
  static char keys[5000][8];
  for (int i = 0; i < 5000; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    strmap_put(&m, keys[i], keys[i]);
  }
  CHECK(m.len == 5000);
  int found = 0;
  for (int i = 0; i < 5000; i++) {
    char probe[8];
    snprintf(probe, sizeof probe, "k%d", i); /* equal text, another pointer */
    found += strmap_get(&m, probe) == keys[i];
  }
  CHECK(found == 5000);
  CHECK(strmap_get(&m, "k5000") == NULL);
  CHECK(strmap_get(&m, "") == NULL);
  /* putting a key again replaces its value */
  strmap_put(&m, "k7", keys[8]);
  CHECK(strmap_get(&m, "k7") == keys[8]);
  CHECK(m.len == 5000);
  strmap_free(&m);
  CHECK(m.cap == 0 && strmap_get(&m, "k1") == NULL);
}

static const char *closest(const char *name, int max_edits, const char *const *names) {
  Closest c = closest_start(name, max_edits);
  for (; *names; names++) closest_offer(&c, *names);
  return c.best;
}

static void test_closest(void) {
  const char *keys[] = {"data", "valid", "epochs", "batch", "seed", NULL};
  CHECK(closest("epoch", 2, keys) && strcmp(closest("epoch", 2, keys), "epochs") == 0);
  CHECK(closest("bacth", 2, keys) && strcmp(closest("bacth", 2, keys), "batch") == 0);
  CHECK(closest("momentum", 2, keys) == NULL); /* nothing close */
  CHECK(closest("seeds", 0, keys) == NULL);    /* one edit away, none allowed */
  /* fewer edits than the name has letters: 'ed' is not a misspelling of 'seed' */
  CHECK(closest("ed", 2, keys) == NULL);
  /* the closest wins, and the first of equally close ones */
  const char *names[] = {"relu", "reli", "rel", NULL};
  CHECK(closest("relx", 2, names) && strcmp(closest("relx", 2, names), "relu") == 0);
  CHECK(closest("rel", 2, names) && strcmp(closest("rel", 2, names), "rel") == 0);
  /* names past 40 characters are never close */
  char longer[64];
  memset(longer, 'a', 50);
  longer[50] = 0;
  const char *only[] = {longer, NULL};
  CHECK(closest(longer, 2, only) == NULL);
}

int main(void) {
  test_strmap();
  test_closest();
  return check_report();
}
