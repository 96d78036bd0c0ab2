/* ref_io.h -- what the hand-written references in bench/ read files
 * with: die() with the program's name (REF_NAME) and a whole file read
 * into memory.
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
