/* axml: Android binary XML, bounds-checked (see axml.h).  Layout from
 * AOSP's ResourceTypes.h: a RES_XML_TYPE chunk holding a string pool, a
 * resource map and tree nodes, each chunk {u16 type, u16 header size,
 * u32 size}. */
#include "axml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

#define T_XML           0x0003
#define T_STRING_POOL   0x0001
#define T_RESOURCE_MAP  0x0180
#define T_START_ELEMENT 0x0102
#define T_END_ELEMENT   0x0103
#define POOL_UTF8       0x100u
#define NO_INDEX        0xffffffffu
#define V_STRING        0x03
#define V_INT_FIRST     0x10
#define V_INT_LAST      0x1f
#define ANDROID_NS      "http://schemas.android.com/apk/res/android"

struct axml {
	const uint8_t *p;
	size_t n;
	/* the string pool: offsets at pool+offs, strings from pool+strs */
	const uint8_t *pool;
	size_t pool_len, offs, strs, strs_end;
	uint32_t nstr;
	int utf8;
	const uint8_t *rmap;
	size_t nres;
};

/* Appends code point c as UTF-8 to out (cap includes the NUL). */
static int
axml_put_utf8(char *out, size_t cap, size_t *len, uint32_t c)
{
	uint8_t b[4];
	size_t n;

	if (c < 0x80) {
		b[0] = (uint8_t)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (uint8_t)(0xc0 | c >> 6);
		b[1] = (uint8_t)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (uint8_t)(0xe0 | c >> 12);
		b[1] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
		b[2] = (uint8_t)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | c >> 18);
		b[1] = (uint8_t)(0x80 | (c >> 12 & 0x3f));
		b[2] = (uint8_t)(0x80 | (c >> 6 & 0x3f));
		b[3] = (uint8_t)(0x80 | (c & 0x3f));
		n = 4;
	}
	if (cap - 1 - *len < n)
		return -1;
	memcpy(out + *len, b, n);
	*len += n;
	return 0;
}

/* String idx of the pool, as NUL-terminated UTF-8 in out. */
static int
axml_string(const axml_t *d, uint32_t idx, char *out, size_t cap, err_t *err)
{
	size_t pos, end = d->strs_end, len = 0;

	if (d->pool == NULL || idx >= d->nstr)
		return err_set(err, STB_BAD_REQUEST, "string %u outside the pool", idx);
	pos = load_le32(d->pool + d->offs + 4 * (size_t)idx);
	if (pos >= end - d->strs)
		return err_set(err, STB_BAD_REQUEST, "string %u out of bounds", idx);
	pos += d->strs;
	if (d->utf8) {
		size_t u8len;

		/* the UTF-16 length (skipped), then the UTF-8 byte length */
		for (int k = 0; k < 2; k++) {
			if (pos >= end)
				return err_set(err, STB_BAD_REQUEST, "string %u truncated", idx);
			u8len = d->pool[pos++];
			if (u8len & 0x80) {
				if (pos >= end)
					return err_set(err, STB_BAD_REQUEST, "string %u truncated",
					               idx);
				u8len = (u8len & 0x7f) << 8 | d->pool[pos++];
			}
		}
		if (u8len > end - pos)
			return err_set(err, STB_BAD_REQUEST, "string %u runs past the pool", idx);
		if (u8len >= cap)
			return err_set(err, STB_TOO_LARGE, "string %u too long", idx);
		if (memchr(d->pool + pos, '\0', u8len) != NULL)
			return err_set(err, STB_BAD_REQUEST, "string %u holds a NUL", idx);
		memcpy(out, d->pool + pos, u8len);
		out[u8len] = '\0';
		return 0;
	}
	size_t u16len;

	if (end - pos < 2)
		return err_set(err, STB_BAD_REQUEST, "string %u truncated", idx);
	u16len = load_le16(d->pool + pos);
	pos += 2;
	if (u16len & 0x8000) {
		if (end - pos < 2)
			return err_set(err, STB_BAD_REQUEST, "string %u truncated", idx);
		u16len = (u16len & 0x7fff) << 16 | load_le16(d->pool + pos);
		pos += 2;
	}
	if (u16len > (end - pos) / 2)
		return err_set(err, STB_BAD_REQUEST, "string %u runs past the pool", idx);
	for (size_t i = 0; i < u16len; i++) {
		uint32_t c = load_le16(d->pool + pos + 2 * i);

		if (c >= 0xd800 && c < 0xdc00 && i + 1 < u16len) {
			uint32_t lo = load_le16(d->pool + pos + 2 * (i + 1));

			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i++;
			} else {
				c = 0xfffd;
			}
		} else if (c >= 0xd800 && c < 0xe000) {
			c = 0xfffd;
		}
		if (c == 0)
			return err_set(err, STB_BAD_REQUEST, "string %u holds a NUL", idx);
		if (axml_put_utf8(out, cap, &len, c) < 0)
			return err_set(err, STB_TOO_LARGE, "string %u too long", idx);
	}
	out[len] = '\0';
	return 0;
}

static int
axml_read_pool(axml_t *d, const uint8_t *c, size_t hsize, size_t csize, err_t *err)
{
	uint64_t nstr, nsty, sstart, systart;

	if (d->pool != NULL)
		return err_set(err, STB_BAD_REQUEST, "a second string pool");
	if (hsize < 28)
		return err_set(err, STB_BAD_REQUEST, "string pool header short");
	nstr = load_le32(c + 8);
	nsty = load_le32(c + 12);
	sstart = load_le32(c + 20);
	systart = load_le32(c + 24);
	if (hsize + 4 * (nstr + nsty) > csize)
		return err_set(err, STB_BAD_REQUEST, "string pool offsets run past the chunk");
	if (nstr > 0 && (sstart < hsize + 4 * (nstr + nsty) || sstart >= csize))
		return err_set(err, STB_BAD_REQUEST, "string pool strings out of bounds");
	if (systart != 0 && (systart < sstart || systart > csize))
		return err_set(err, STB_BAD_REQUEST, "string pool styles out of bounds");
	d->pool = c;
	d->pool_len = csize;
	d->offs = hsize;
	d->strs = (size_t)sstart;
	d->strs_end = systart != 0 ? (size_t)systart : csize;
	d->nstr = (uint32_t)nstr;
	d->utf8 = (load_le32(c + 16) & POOL_UTF8) != 0;
	return 0;
}

int
axml_walk(const uint8_t *p, size_t n, axml_elem_fn fn, void *arg, err_t *err)
{
	axml_t d = {.p = p, .n = n};
	size_t size, pos;
	unsigned depth = 0;

	if (n < 8 || load_le16(p) != T_XML)
		return err_set(err, STB_BAD_REQUEST, "not binary XML");
	pos = load_le16(p + 2);
	size = load_le32(p + 4);
	if (pos < 8 || pos > size || size > n)
		return err_set(err, STB_BAD_REQUEST, "bad XML header");
	while (pos < size) {
		const uint8_t *c = p + pos;
		size_t hsize, csize;

		if (size - pos < 8)
			return err_set(err, STB_BAD_REQUEST, "truncated chunk");
		hsize = load_le16(c + 2);
		csize = load_le32(c + 4);
		if (hsize < 8 || csize < hsize || csize > size - pos)
			return err_set(err, STB_BAD_REQUEST, "chunk at %zu out of bounds", pos);
		switch (load_le16(c)) {
		case T_STRING_POOL:
			if (axml_read_pool(&d, c, hsize, csize, err) < 0)
				return -1;
			break;
		case T_RESOURCE_MAP:
			d.rmap = c + hsize;
			d.nres = (csize - hsize) / 4;
			break;
		case T_START_ELEMENT: {
			axml_elem_t el = {.doc = &d, .depth = depth};
			const uint8_t *x = c + hsize;
			size_t astart, asize, acount;

			if (hsize < 16 || csize - hsize < 20)
				return err_set(err, STB_BAD_REQUEST, "start element too short");
			astart = load_le16(x + 8);
			asize = load_le16(x + 10);
			acount = load_le16(x + 12);
			if (acount > 0 && (asize < 20 || astart + asize * acount > csize - hsize))
				return err_set(err, STB_BAD_REQUEST, "attributes out of bounds");
			if (axml_string(&d, load_le32(x + 4), el.name, sizeof(el.name), err) < 0)
				return -1;
			el.attr_off = pos + hsize + astart;
			el.attr_size = asize;
			el.attr_count = acount;
			if (depth >= AXML_DEPTH_MAX)
				return err_set(err, STB_BAD_REQUEST, "elements nested too deep");
			if (fn(arg, &el, err) < 0)
				return -1;
			depth++;
			break;
		}
		case T_END_ELEMENT:
			if (depth == 0)
				return err_set(err, STB_BAD_REQUEST,
				               "an end element without a start");
			depth--;
			break;
		default:
			break; /* namespaces, CDATA, unknown: skipped */
		}
		pos += csize;
	}
	if (depth != 0)
		return err_set(err, STB_BAD_REQUEST, "unclosed elements");
	return 0;
}

/* Attribute i when it is the one asked for: by resource ID when the map
 * gives its name one, else by name (in the android namespace, or in none
 * when resid is 0). */
static int
axml_attr_find(const axml_elem_t *el, uint32_t resid, const char *name, const uint8_t **attr,
               err_t *err)
{
	const axml_t *d = el->doc;
	char s[AXML_STR_MAX];

	for (size_t i = 0; i < el->attr_count; i++) {
		const uint8_t *a = d->p + el->attr_off + i * el->attr_size;
		uint32_t ns = load_le32(a), nm = load_le32(a + 4);

		if (resid != 0 && nm < d->nres) {
			if (load_le32(d->rmap + 4 * (size_t)nm) != resid)
				continue;
			*attr = a;
			return 1;
		}
		if (axml_string(d, nm, s, sizeof(s), err) < 0)
			return -1;
		if (strcmp(s, name) != 0)
			continue;
		if (resid == 0) {
			if (ns != NO_INDEX)
				continue;
		} else {
			if (ns == NO_INDEX)
				continue;
			if (axml_string(d, ns, s, sizeof(s), err) < 0)
				return -1;
			if (strcmp(s, ANDROID_NS) != 0)
				continue;
		}
		*attr = a;
		return 1;
	}
	return 0;
}

int
axml_attr_str(const axml_elem_t *el, uint32_t resid, const char *name, char *out, size_t cap,
              err_t *err)
{
	const uint8_t *a;
	int rc = axml_attr_find(el, resid, name, &a, err);
	uint32_t raw, data;
	uint8_t type;

	if (rc <= 0)
		return rc;
	raw = load_le32(a + 8);
	type = a[15];
	data = load_le32(a + 16);
	if (raw != NO_INDEX)
		return axml_string(el->doc, raw, out, cap, err) < 0 ? -1 : 1;
	if (type == V_STRING)
		return axml_string(el->doc, data, out, cap, err) < 0 ? -1 : 1;
	if (type >= V_INT_FIRST && type <= V_INT_LAST) {
		snprintf(out, cap, "%d", (int32_t)data);
		return 1;
	}
	return 0; /* a reference or another type: no literal value */
}

int
axml_attr_int(const axml_elem_t *el, uint32_t resid, const char *name, int64_t *out, err_t *err)
{
	const uint8_t *a;
	int rc = axml_attr_find(el, resid, name, &a, err);
	char s[AXML_STR_MAX], *end;
	uint8_t type;
	long long v;

	if (rc <= 0)
		return rc;
	type = a[15];
	if (load_le32(a + 8) == NO_INDEX && type >= V_INT_FIRST && type <= V_INT_LAST) {
		*out = (int32_t)load_le32(a + 16);
		return 1;
	}
	if ((rc = axml_attr_str(el, resid, name, s, sizeof(s), err)) <= 0)
		return rc;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return 0; /* a codename ("P"): not a number */
	*out = v;
	return 1;
}

typedef struct axml_mwalk {
	axml_manifest_t *m;
	int seen_root;
} axml_mwalk_t;

static int
axml_manifest_elem(void *arg, const axml_elem_t *el, err_t *err)
{
	axml_mwalk_t *w = arg;
	axml_manifest_t *m = w->m;
	char name[AXML_STR_MAX];
	int rc;

	if (el->depth == 0) {
		if (w->seen_root || strcmp(el->name, "manifest") != 0)
			return err_set(err, STB_BAD_REQUEST,
			               "the root element is <%.64s>, not "
			               "<manifest>",
			               el->name);
		w->seen_root = 1;
		if (axml_attr_str(el, 0, "package", m->package, sizeof(m->package), err) < 0 ||
		    axml_attr_str(el, AXML_ATTR_VERSION_NAME, "versionName", m->version_name,
		                  sizeof(m->version_name), err) < 0 ||
		    axml_attr_int(el, AXML_ATTR_VERSION_CODE, "versionCode", &m->version_code,
		                  err) < 0)
			return -1;
		return 0;
	}
	if (el->depth != 1)
		return 0;
	if (strcmp(el->name, "uses-sdk") == 0)
		return axml_attr_int(el, AXML_ATTR_MIN_SDK, "minSdkVersion", &m->min_sdk, err) < 0
		           ? -1
		           : 0;
	if (strcmp(el->name, "uses-permission") != 0 &&
	    strcmp(el->name, "uses-permission-sdk-23") != 0 &&
	    strcmp(el->name, "uses-permission-sdk-m") != 0)
		return 0;
	rc = axml_attr_str(el, AXML_ATTR_NAME, "name", name, sizeof(name), err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return 0;
	if (m->n_perms >= AXML_PERMS_MAX) {
		m->n_perms_dropped++;
		return 0;
	}
	if (m->perms == NULL && (m->perms = calloc(AXML_PERMS_MAX, sizeof(*m->perms))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	if ((m->perms[m->n_perms] = strdup(name)) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	m->n_perms++;
	return 0;
}

int
axml_manifest_parse(const uint8_t *p, size_t n, axml_manifest_t *m, err_t *err)
{
	axml_mwalk_t w = {.m = m};

	memset(m, 0, sizeof(*m));
	m->version_code = -1;
	m->min_sdk = -1;
	if (axml_walk(p, n, axml_manifest_elem, &w, err) < 0)
		return -1;
	if (!w.seen_root)
		return err_set(err, STB_BAD_REQUEST, "no <manifest> element");
	return 0;
}

void
axml_manifest_free(axml_manifest_t *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_perms; i++)
		free(m->perms[i]);
	free(m->perms);
	m->perms = NULL;
	m->n_perms = 0;
}
