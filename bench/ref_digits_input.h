/* ref_digits_input.h -- the input of bench/ref_digits.c and
 * bench/ref_digits_threads.c: the digits CSV laid out as transposed batches
 * with one-hot targets scaled by 1/batch, and the initial weights from a
 * safetensors file.  Included by both after their buffers (X, T, W1, b1,
 * W2, b2, W3, b3 and the sizes and leading dimensions they are declared
 * with); REF_NAME is the program's name for its error messages (ref_io.h).
 */

#include "ref_io.h"

/* CSV: header p0..p63,label then rows of 64 pixels and a label 0..9 */
static int
load_csv(const char *path)
{
	char *buf, *p = csv_open(path, &buf);
	double v[NIN + 1];
	int n = 0;
	while (csv_row(path, &p, v, NIN + 1)) {
		if (n == MAX_ROWS)
			die("%s: too many rows", path);
		for (int k = 0; k < NIN; k++)
			Xrow[n * NIN + k] = (float)v[k];
		if (v[NIN] < 0 || v[NIN] >= NOUT || v[NIN] != (int)v[NIN])
			die("%s: bad label", path);
		label[n++] = (int)v[NIN];
	}
	free(buf);
	return n;
}

/* the data set laid out for training: transposed batches, scaled one-hot */
static void
layout_batches(int nrows)
{
	for (int bt = 0; bt * BATCH < nrows; bt++) {
		const int row0 = bt * BATCH;
		const int nb = nrows - row0 < BATCH ? nrows - row0 : BATCH;
		for (int b = 0; b < nb; b++) {
			for (int i = 0; i < NIN; i++)
				XT[bt][i * LDT + b] = Xrow[(row0 + b) * NIN + i];
			TT[bt][label[row0 + b] * LDT + b] = 1.0f / (float)nb;
			VT[bt][b] = 1.0f / (float)nb;
		}
	}
}

static void
load_init(const char *path)
{
	Safetensors st = st_open(path);
	st_get(&st, "linear1.W", "F32", W1, NH * NIN, sizeof(float));
	st_get(&st, "linear1.b", "F32", b1, NH, sizeof(float));
	float *w2 = malloc(sizeof(float) * NH * NH);	/* rows padded to LDH */
	if (!w2)
		die("%s", "out of memory");
	st_get(&st, "linear2.W", "F32", w2, NH * NH, sizeof(float));
	for (int o = 0; o < NH; o++)
		memcpy(W2 + o * LDH, w2 + o * NH, sizeof(float) * NH);
	free(w2);
	st_get(&st, "linear2.b", "F32", b2, NH, sizeof(float));
	st_get(&st, "linear3.W", "F32", W3, NOUT * NH, sizeof(float));
	st_get(&st, "linear3.b", "F32", b3, NOUT, sizeof(float));
	st_close(&st);
}
