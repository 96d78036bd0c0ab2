/* ref_io.h -- what the hand-written references in bench/ read files
 * with: die() with the program's name (REF_NAME), a whole file read into
 * memory, the rows of a CSV file of numbers, and the tensors of a
 * safetensors file (cJSON for its header).
 */

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", REF_NAME);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open %s", path);
	if (fseek(f, 0, SEEK_END) != 0)
		die("cannot seek %s", path);
	long n = ftell(f);
	if (n < 0)
		die("cannot size %s", path);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* A CSV file of numbers read whole: csv_open returns the text after its
 * header line (*buf, to free when done, holds it all); csv_row skips blank
 * lines and reads the next row's `count` comma-separated numbers into v,
 * returning 0 at the end of the text. */
static char *
csv_open(const char *path, char **buf)
{
	size_t len;
	*buf = read_file(path, &len);
	char *p = strchr(*buf, '\n');
	if (!p)
		die("%s: no header line", path);
	return p + 1;
}

static int
csv_row(const char *path, char **pp, double *v, int count)
{
	char *p = *pp;
	while (*p == '\n' || *p == '\r' || *p == ' ')
		p++;
	if (!*p)
		return 0;
	for (int k = 0; k < count; k++) {
		char *end;
		v[k] = strtod(p, &end);
		if (end == p)
			die("%s: bad number", path);
		p = end;
		if (k < count - 1) {
			if (*p != ',')
				die("%s: expected ','", path);
			p++;
		}
	}
	*pp = p;
	return 1;
}

/* A safetensors file read whole: 8 bytes of header length (little-endian),
 * the JSON header, then the tensors' bytes. */
typedef struct Safetensors {
	const char *path;
	char *buf;
	cJSON *hdr;
	const char *blob;
	size_t blob_len;
} Safetensors;

static Safetensors
st_open(const char *path)
{
	Safetensors st = {path, NULL, NULL, NULL, 0};
	size_t len;
	st.buf = read_file(path, &len);
	if (len < 8)
		die("%s: too short", path);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | (unsigned char)st.buf[i];
	if (hlen > len - 8)
		die("%s: bad header length", path);
	st.hdr = cJSON_ParseWithLength(st.buf + 8, (size_t)hlen);
	if (!st.hdr)
		die("%s: bad JSON header", path);
	st.blob = st.buf + 8 + hlen;
	st.blob_len = len - 8 - (size_t)hlen;
	return st;
}

/* Copy tensor `name`, `count` elements of dtype `dtype` ("F32" or "F64",
 * `elem` bytes each), to dst (a little-endian host). */
static void
st_get(const Safetensors *st, const char *name, const char *dtype,
    void *dst, size_t count, size_t elem)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(st->hdr, name);
	const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
	const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
	if (!t || !cJSON_IsString(dt) || strcmp(dt->valuestring, dtype) != 0)
		die("init: tensor %s missing or of another dtype", name);
	if (cJSON_GetArraySize(off) != 2)
		die("init: tensor %s: bad data_offsets", name);
	double b = cJSON_GetArrayItem(off, 0)->valuedouble;
	double e = cJSON_GetArrayItem(off, 1)->valuedouble;
	if (b < 0 || e > (double)st->blob_len || e - b != (double)(count * elem))
		die("init: tensor %s: wrong size", name);
	memcpy(dst, st->blob + (size_t)b, count * elem);
}

static void
st_close(Safetensors *st)
{
	cJSON_Delete(st->hdr);
	free(st->buf);
}
