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
	size_t len;
	char *buf = read_file(path, &len);
	char *p = strchr(buf, '\n');
	if (!p)
		die("%s: no header line", path);
	p++;
	int n = 0;
	for (;;) {
		while (*p == '\n' || *p == '\r' || *p == ' ')
			p++;
		if (!*p)
			break;
		if (n == MAX_ROWS)
			die("%s: too many rows", path);
		for (int k = 0; k <= NIN; k++) {
			char *end;
			double v = strtod(p, &end);
			if (end == p)
				die("%s: bad number", path);
			p = end;
			if (k < NIN) {
				if (*p != ',')
					die("%s: expected ','", path);
				p++;
				Xrow[n * NIN + k] = (float)v;
			} else {
				if (v < 0 || v >= NOUT || v != (int)v)
					die("%s: bad label", path);
				label[n] = (int)v;
			}
		}
		n++;
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
get_tensor(const cJSON *hdr, const char *blob, size_t blob_len,
    const char *name, float *dst, size_t count)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(hdr, name);
	const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
	const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
	if (!t || !cJSON_IsString(dt) || strcmp(dt->valuestring, "F32") != 0)
		die("init: tensor %s missing or not F32", name);
	if (cJSON_GetArraySize(off) != 2)
		die("init: tensor %s: bad data_offsets", name);
	double b = cJSON_GetArrayItem(off, 0)->valuedouble;
	double e = cJSON_GetArrayItem(off, 1)->valuedouble;
	if (b < 0 || e > (double)blob_len || e - b != (double)(count * sizeof(float)))
		die("init: tensor %s: wrong size", name);
	memcpy(dst, blob + (size_t)b, count * sizeof(float)); /* little-endian host */
}

static void
load_init(const char *path)
{
	size_t len;
	char *buf = read_file(path, &len);
	if (len < 8)
		die("%s: too short", path);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | (unsigned char)buf[i];
	if (hlen > len - 8)
		die("%s: bad header length", path);
	cJSON *hdr = cJSON_ParseWithLength(buf + 8, (size_t)hlen);
	if (!hdr)
		die("%s: bad JSON header", path);
	const char *blob = buf + 8 + hlen;
	size_t blob_len = len - 8 - (size_t)hlen;
	get_tensor(hdr, blob, blob_len, "linear1.W", W1, NH * NIN);
	get_tensor(hdr, blob, blob_len, "linear1.b", b1, NH);
	float *w2 = malloc(sizeof(float) * NH * NH);	/* rows padded to LDH */
	if (!w2)
		die("%s", "out of memory");
	get_tensor(hdr, blob, blob_len, "linear2.W", w2, NH * NH);
	for (int o = 0; o < NH; o++)
		memcpy(W2 + o * LDH, w2 + o * NH, sizeof(float) * NH);
	free(w2);
	get_tensor(hdr, blob, blob_len, "linear2.b", b2, NH);
	get_tensor(hdr, blob, blob_len, "linear3.W", W3, NOUT * NH);
	get_tensor(hdr, blob, blob_len, "linear3.b", b3, NOUT);
	cJSON_Delete(hdr);
	free(buf);
}
