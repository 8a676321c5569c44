/* apkzip: the ZIP structure of an APK (see apkzip.h). */
#include "apkzip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apkrun.h"
#include "bytes.h"

#define EOCD_SIG       0x06054b50u
#define CDH_SIG        0x02014b50u
#define EOCD_LEN       22
#define EOCD_SEARCH    (EOCD_LEN + 0xffff)
#define CD_MAX         (64u << 20) /* a larger central directory is refused */
#define READ_PIECE     65536
#define RATIO_MIN_SIZE (1u << 20) /* the ratio cap counts above this */

int
apkzip_pread(const apkzip_t *z, uint64_t off, void *p, size_t n, err_t *err)
{
	uint8_t *q = p;

	if (off > z->size || n > z->size - off)
		return err_set(err, STB_BAD_REQUEST, "read past the end");
	while (n > 0) {
		ssize_t got = pread(z->fd, q, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return err_set(err, STB_INTERNAL, "read: %s",
			               got < 0 ? strerror(errno) : "short file");
		q += got;
		off += (uint64_t)got;
		n -= (size_t)got;
	}
	return 0;
}

/* The EOCD record: the last signature whose comment runs exactly to the end
 * of the file (a comment may itself hold the signature bytes). */
static int
zip_find_eocd(apkzip_t *z, err_t *err)
{
	size_t span = z->size < EOCD_SEARCH ? (size_t)z->size : EOCD_SEARCH;
	uint64_t base = z->size - span;
	uint8_t *tail;
	int found = 0;

	if (span < EOCD_LEN)
		return 0;
	if ((tail = malloc(span)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if (apkzip_pread(z, base, tail, span, err) < 0) {
		free(tail);
		return -1;
	}
	for (size_t i = span - EOCD_LEN + 1; i-- > 0;) {
		if (load_le32(tail + i) != EOCD_SIG)
			continue;
		if (i + EOCD_LEN + load_le16(tail + i + 20) != span)
			continue;
		memcpy(z->eocd, tail + i, EOCD_LEN);
		z->eocd_off = base + i;
		found = 1;
		break;
	}
	free(tail);
	return found;
}

static int
name_cmp(const void *a, const void *b)
{
	const apkzip_entry_t *x = *(apkzip_entry_t *const *)a;
	const apkzip_entry_t *y = *(apkzip_entry_t *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	if (c != 0)
		return c;
	return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* The names Android or an unzip could write outside the app's folder. */
static void
zip_check_name(const apkzip_entry_t *e, apk_report_t *r)
{
	const char *s = e->name;

	if (memchr(e->name, '\0', e->name_len) != NULL) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.bad_name", "an entry name holds a NUL byte");
		return;
	}
	if (s[0] == '/' || s[0] == '\\' || (e->name_len >= 2 && s[1] == ':')) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.absolute_path",
		               "entry \"%.128s\" has an absolute path", s);
		return;
	}
	for (const char *p = s; *p != '\0';) {
		size_t n = strcspn(p, "/\\");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			apk_report_add(r, APK_SEV_UNSAFE, "zip.path_traversal",
			               "entry \"%.128s\" climbs out with ..", s);
			return;
		}
		p += n;
		if (*p != '\0')
			p++;
	}
}

static void
zip_check_duplicates(apkzip_t *z, apk_report_t *r, err_t *err)
{
	apkzip_entry_t **v;

	if (z->n < 2)
		return;
	if ((v = calloc(z->n, sizeof(*v))) == NULL) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.duplicate_unchecked",
		               "out of memory checking for duplicate names");
		return;
	}
	for (size_t i = 0; i < z->n; i++)
		v[i] = &z->ent[i];
	qsort(v, z->n, sizeof(*v), name_cmp);
	for (size_t i = 1; i < z->n; i++) {
		if (name_cmp(&v[i - 1], &v[i]) != 0)
			continue;
		apk_report_add(r, APK_SEV_UNSAFE, "zip.duplicate_entry",
		               "entry \"%.128s\" is in the archive twice (the "
		               "\"master key\" trick: tools see one, Android "
		               "another)",
		               v[i]->name);
		while (i + 1 < z->n && name_cmp(&v[i], &v[i + 1]) == 0)
			i++;
	}
	free(v);
	(void)err;
}

/* Walks the central directory (bounded by its size, the entry cap and the
 * file) into z->ent. */
static int
zip_walk_cd(apkzip_t *z, const apk_conf_t *conf, apk_report_t *r, err_t *err)
{
	uint64_t count = load_le16(z->eocd + 10);
	uint8_t *cd;
	size_t off = 0;

	z->cd_size = load_le32(z->eocd + 12);
	z->cd_off = load_le32(z->eocd + 16);
	if (load_le16(z->eocd + 4) != 0 || load_le16(z->eocd + 6) != 0 ||
	    load_le16(z->eocd + 8) != count) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.multi_disk",
		               "the archive claims to span several disks");
		return 0;
	}
	if (count == 0xffff || z->cd_size == 0xffffffffu || z->cd_off == 0xffffffffu) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.zip64",
		               "ZIP64 archives are not APKs Android installs");
		return 0;
	}
	if (count > conf->max_entries) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.too_many_entries",
		               "%llu entries, more than the cap of %llu", (unsigned long long)count,
		               (unsigned long long)conf->max_entries);
		return 0;
	}
	if (z->cd_off > z->eocd_off || z->cd_size != z->eocd_off - z->cd_off ||
	    z->cd_size > CD_MAX) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.malformed",
		               "the central directory does not end where the "
		               "end record starts");
		return 0;
	}
	if ((cd = malloc(z->cd_size ? z->cd_size : 1)) == NULL ||
	    (z->ent = calloc(count ? count : 1, sizeof(*z->ent))) == NULL) {
		free(cd);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	if (apkzip_pread(z, z->cd_off, cd, z->cd_size, err) < 0) {
		free(cd);
		return -1;
	}
	for (uint64_t i = 0; i < count; i++) {
		apkzip_entry_t *e = &z->ent[z->n];
		size_t nlen, xlen, clen;

		if (z->cd_size - off < 46 || load_le32(cd + off) != CDH_SIG)
			break;
		nlen = load_le16(cd + off + 28);
		xlen = load_le16(cd + off + 30);
		clen = load_le16(cd + off + 32);
		if (z->cd_size - off - 46 < nlen + xlen + clen)
			break;
		if ((e->name = malloc(nlen + 1)) == NULL) {
			free(cd);
			return err_set(err, STB_INTERNAL, "out of memory");
		}
		memcpy(e->name, cd + off + 46, nlen);
		e->name[nlen] = '\0';
		e->name_len = nlen;
		e->flags = load_le16(cd + off + 8);
		e->method = load_le16(cd + off + 10);
		e->csize = load_le32(cd + off + 20);
		e->usize = load_le32(cd + off + 24);
		e->lho = load_le32(cd + off + 42);
		e->zindex = z->n;
		z->n++;
		off += 46 + nlen + xlen + clen;
	}
	free(cd);
	if (z->n != count || off != z->cd_size)
		apk_report_add(r, APK_SEV_UNSAFE, "zip.malformed",
		               "the central directory holds %zu readable of %llu "
		               "declared entries",
		               z->n, (unsigned long long)count);
	return 0;
}

/* Declared sizes first: nothing is inflated when they pass the caps. */
static void
zip_check_sizes(apkzip_t *z, const apk_conf_t *conf, apk_report_t *r)
{
	uint64_t total = 0;
	int ratio_reported = 0;

	for (size_t i = 0; i < z->n; i++) {
		const apkzip_entry_t *e = &z->ent[i];

		total += e->usize;
		if (e->lho >= z->cd_off || e->csize > z->cd_off - e->lho) {
			apk_report_add(r, APK_SEV_UNSAFE, "zip.malformed",
			               "entry \"%.128s\" lies outside the "
			               "entries' area",
			               e->name);
			z->inflatable = 0;
		}
		if (e->method == 0 && e->csize != e->usize) {
			apk_report_add(r, APK_SEV_UNSAFE, "zip.malformed",
			               "stored entry \"%.128s\" has two sizes", e->name);
			z->inflatable = 0;
		}
		if (e->flags & 1) {
			apk_report_add(r, APK_SEV_UNSAFE, "zip.encrypted",
			               "entry \"%.128s\" is encrypted", e->name);
		}
		/* small, very compressible files are common; bombs are big */
		if (!ratio_reported && e->usize > RATIO_MIN_SIZE &&
		    e->usize / (e->csize ? e->csize : 1) >= conf->max_ratio) {
			apk_report_add(r, APK_SEV_UNSAFE, "zip.ratio",
			               "entry \"%.128s\" inflates %llu bytes "
			               "to %llu (ratio over %u: a zip bomb)",
			               e->name, (unsigned long long)e->csize,
			               (unsigned long long)e->usize, conf->max_ratio);
			ratio_reported = 1;
		}
		zip_check_name(e, r);
	}
	if (total > conf->max_total_uncompressed) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.too_large",
		               "entries inflate to %llu bytes, more than the "
		               "cap of %llu (a zip bomb)",
		               (unsigned long long)total,
		               (unsigned long long)conf->max_total_uncompressed);
		z->inflatable = 0;
	}
}

/* libzip's own reading, with its consistency check (local headers against
 * the central directory); the entries it agrees on become readable. */
/* libzip on a duplicate of our descriptor (it owns and closes it), so both
 * read the same file. */
static zip_t *
zip_open_fd(const apkzip_t *z, int flags, int *zerr)
{
	int fd = dup(z->fd);
	zip_t *za;

	if (fd < 0) {
		*zerr = ZIP_ER_OPEN;
		return NULL;
	}
	if ((za = zip_fdopen(fd, flags, zerr)) == NULL)
		close(fd);
	return za;
}

/* libzip's own reading, with its consistency check (local headers against
 * the central directory); the entries it agrees on become readable. */
static void
zip_open_libzip(apkzip_t *z, apk_report_t *r)
{
	int zerr = 0;
	zip_int64_t n;

	z->za = zip_open_fd(z, ZIP_CHECKCONS, &zerr);
	if (z->za == NULL) {
		zip_error_t ze;

		zip_error_init_with_code(&ze, zerr);
		apk_report_add(r, APK_SEV_UNSAFE, "zip.inconsistent",
		               "libzip's consistency check fails: %s", zip_error_strerror(&ze));
		zip_error_fini(&ze);
		z->za = zip_open_fd(z, 0, &zerr);
		if (z->za == NULL) {
			z->inflatable = 0;
			return;
		}
	}
	n = zip_get_num_entries(z->za, 0);
	if (n < 0 || (uint64_t)n != z->n) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.inconsistent",
		               "libzip sees %lld entries, the central "
		               "directory %zu",
		               (long long)n, z->n);
	}
	for (size_t i = 0; i < z->n; i++) {
		const char *nm;

		if (n < 0 || i >= (uint64_t)n)
			break;
		nm = zip_get_name(z->za, i, ZIP_FL_ENC_RAW);
		if (nm != NULL && strlen(nm) == z->ent[i].name_len &&
		    memcmp(nm, z->ent[i].name, z->ent[i].name_len) == 0)
			z->ent[i].readable = 1;
	}
}

int
apkzip_open(apkzip_t *z, const char *path, const apk_conf_t *conf, apk_report_t *r, err_t *err)
{
	struct stat st;
	int found;

	memset(z, 0, sizeof(*z));
	z->fd = -1;
	z->inflatable = 1;
	z->budget = conf->max_total_uncompressed;
	if ((z->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_set(err, STB_NOT_FOUND, "%s: %s", path, strerror(errno));
	if (fstat(z->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_set(err, STB_BAD_REQUEST, "%s: not a regular file", path);
		close(z->fd);
		z->fd = -1;
		return -1;
	}
	z->size = (uint64_t)st.st_size;
	if ((found = zip_find_eocd(z, err)) < 0)
		return -1;
	if (found == 0) {
		apk_report_add(r, APK_SEV_UNSAFE, "zip.not_zip",
		               "no ZIP end of central directory record");
		z->inflatable = 0;
		return 0;
	}
	if (zip_walk_cd(z, conf, r, err) < 0)
		return -1;
	if (z->n == 0) {
		z->inflatable = 0;
		if (!apk_report_has(r, "zip.malformed") &&
		    !apk_report_has(r, "zip.too_many_entries"))
			apk_report_add(r, APK_SEV_UNSAFE, "zip.empty",
			               "the archive has no entries");
		return 0;
	}
	r->entries = z->n;
	zip_check_sizes(z, conf, r);
	zip_check_duplicates(z, r, err);
	zip_open_libzip(z, r);
	return 0;
}

void
apkzip_close(apkzip_t *z)
{
	if (z == NULL)
		return;
	if (z->za != NULL)
		zip_discard(z->za);
	for (size_t i = 0; i < z->n; i++)
		free(z->ent[i].name);
	free(z->ent);
	if (z->fd >= 0)
		close(z->fd);
	memset(z, 0, sizeof(*z));
	z->fd = -1;
}

const apkzip_entry_t *
apkzip_find(const apkzip_t *z, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < z->n; i++)
		if (z->ent[i].name_len == len && memcmp(z->ent[i].name, name, len) == 0)
			return &z->ent[i];
	return NULL;
}

int
apkzip_read(apkzip_t *z, const apkzip_entry_t *e, apkzip_sink_fn fn, void *arg, err_t *err)
{
	uint8_t *piece;
	zip_file_t *zf;
	uint64_t got = 0;
	int rc = 0;

	if (!z->inflatable || z->za == NULL || !e->readable)
		return err_set(err, STB_BAD_REQUEST,
		               "entry \"%.128s\" is not read (the archive is "
		               "malformed or past a cap)",
		               e->name);
	if (e->usize > z->budget)
		return err_set(err, STB_TOO_LARGE, "entry \"%.128s\" passes the inflate cap",
		               e->name);
	if ((zf = zip_fopen_index(z->za, e->zindex, 0)) == NULL)
		return err_set(err, STB_BAD_REQUEST, "entry \"%.128s\": %s", e->name,
		               zip_strerror(z->za));
	if ((piece = malloc(READ_PIECE)) == NULL) {
		zip_fclose(zf);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	for (;;) {
		zip_int64_t n = zip_fread(zf, piece, READ_PIECE);

		if (n < 0) {
			rc = err_set(err, STB_BAD_REQUEST, "entry \"%.128s\": %s", e->name,
			             zip_file_strerror(zf));
			break;
		}
		if (n == 0)
			break;
		got += (uint64_t)n;
		/* never inflate past what it declared, nor past the cap */
		if (got > e->usize || (uint64_t)n > z->budget) {
			rc = err_set(err, STB_TOO_LARGE,
			             "entry \"%.128s\" inflates past its declared "
			             "size or the cap",
			             e->name);
			break;
		}
		z->budget -= (uint64_t)n;
		if (fn(arg, piece, (size_t)n, err) < 0) {
			rc = -1;
			break;
		}
	}
	free(piece);
	zip_fclose(zf);
	if (rc == 0 && got != e->usize)
		rc = err_set(err, STB_BAD_REQUEST, "entry \"%.128s\" is shorter than it declared",
		             e->name);
	return rc;
}

static int
zip_sink_buf(void *arg, const uint8_t *p, size_t n, err_t *err)
{
	if (buf_append(arg, p, n) < 0)
		return err_set(err, STB_TOO_LARGE, "entry too large to hold");
	return 0;
}

int
apkzip_read_buf(apkzip_t *z, const apkzip_entry_t *e, buf_t *out, err_t *err)
{
	if (e->usize > out->max)
		return err_set(err, STB_TOO_LARGE, "entry \"%.128s\" is too large (%llu bytes)",
		               e->name, (unsigned long long)e->usize);
	return apkzip_read(z, e, zip_sink_buf, out, err);
}
