/* upload: chunked upload sessions spooled to disk (see upload.h). */
#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hex.h"
#include "htab.h"

#define UPLOAD_NAME_MAX 64 /* "/upload-" + hex id + ".part" */

typedef struct upload_sess {
	htab_node_t h;
	uint8_t id[UPLOAD_ID_LEN];
	char owner[UPLOAD_OWNER_MAX + 1];
	char path[UPLOAD_PATH_MAX];
	int fd;
	uint64_t size, len;
	uint64_t last_off; /* the last accepted range */
	size_t last_len;
	uint8_t want[UPLOAD_HASH_LEN];
	EVP_MD_CTX *md;
	int64_t touched;
	int busy; /* a chunk or commit works on it outside the lock */
} upload_sess_t;

struct upload {
	upload_conf_t conf;
	char dir[UPLOAD_PATH_MAX - UPLOAD_NAME_MAX];
	EVP_MD *sha256;
	pthread_mutex_t mu;
	htab_t t;
};

static int
upload_eq(const htab_node_t *n, const void *key, size_t len)
{
	return len == UPLOAD_ID_LEN && memcmp(HTAB_ENTRY(n, upload_sess_t, h)->id, key, len) == 0;
}

upload_t *
upload_new(const upload_conf_t *conf, err_t *err)
{
	upload_t *u;

	if (conf->dir == NULL || strlen(conf->dir) == 0 || strlen(conf->dir) >= sizeof(u->dir)) {
		err_set(err, STB_BAD_REQUEST, "upload: spool directory missing or too long");
		return NULL;
	}
	if (conf->max_size == 0 || conf->ttl_s <= 0 || conf->max_sessions == 0) {
		err_set(err, STB_BAD_REQUEST, "upload: size cap, TTL and sessions must be > 0");
		return NULL;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	u->conf = *conf;
	memcpy(u->dir, conf->dir, strlen(conf->dir) + 1);
	u->conf.dir = u->dir;
	if ((u->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		free(u);
		err_set(err, STB_INTERNAL, "SHA-256 is not available");
		return NULL;
	}
	if (htab_init(&u->t, conf->max_sessions, 0, upload_eq, err) == -1) {
		EVP_MD_free(u->sha256);
		free(u);
		return NULL;
	}
	pthread_mutex_init(&u->mu, NULL);
	return u;
}

/* Closes, removes the file unless keep, frees (out of the table). */
static void
upload_sess_free(upload_sess_t *s, int keep)
{
	if (s->fd >= 0 && !keep)
		close(s->fd);
	if (!keep && s->path[0] != '\0')
		unlink(s->path);
	EVP_MD_CTX_free(s->md);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

void
upload_free(upload_t *u)
{
	htab_node_t *n, *next;
	size_t b = 0;

	if (u == NULL)
		return;
	for (n = htab_next(&u->t, &b, NULL); n != NULL; n = next) {
		next = htab_next(&u->t, &b, n);
		upload_sess_free(HTAB_ENTRY(n, upload_sess_t, h), 0);
	}
	htab_fini(&u->t);
	pthread_mutex_destroy(&u->mu);
	EVP_MD_free(u->sha256);
	free(u);
}

static int
upload_expired(const upload_t *u, const upload_sess_t *s, int64_t now)
{
	return now - s->touched >= u->conf.ttl_s;
}

/* The owner's live session (under the lock); an expired one goes. */
static upload_sess_t *
upload_find(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, int64_t now,
            err_t *err)
{
	htab_node_t *n = htab_find(&u->t, htab_hash(&u->t, id, UPLOAD_ID_LEN), id, UPLOAD_ID_LEN);
	upload_sess_t *s = n != NULL ? HTAB_ENTRY(n, upload_sess_t, h) : NULL;

	if (s != NULL && strcmp(s->owner, owner) != 0)
		s = NULL; /* another's: it does not exist for this one */
	if (s != NULL && !s->busy && upload_expired(u, s, now)) {
		htab_remove(&u->t, &s->h);
		upload_sess_free(s, 0);
		s = NULL;
	}
	if (s == NULL) {
		err_set(err, STB_NOT_FOUND, "no such upload (expired or never begun)");
		return NULL;
	}
	if (s->busy) {
		err_set(err, STB_CONFLICT, "upload busy with another chunk");
		return NULL;
	}
	return s;
}

static int
upload_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
upload_begin(upload_t *u, const char *owner, uint64_t size, const uint8_t sha256[UPLOAD_HASH_LEN],
             int64_t now, uint8_t id[UPLOAD_ID_LEN], err_t *err)
{
	upload_sess_t *s;
	char hex[2 * UPLOAD_ID_LEN + 1];

	if (owner == NULL || *owner == '\0' || strlen(owner) > UPLOAD_OWNER_MAX)
		return err_set(err, STB_BAD_REQUEST, "upload owner missing or too long");
	if (size == 0 || size > u->conf.max_size)
		return err_set(err, STB_TOO_LARGE, "upload of %llu bytes (1 to %llu)",
		               (unsigned long long)size, (unsigned long long)u->conf.max_size);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	s->fd = -1;
	if (RAND_bytes(s->id, sizeof(s->id)) != 1) {
		upload_sess_free(s, 0);
		return err_set(err, STB_INTERNAL, "no random upload id");
	}
	hex_encode(s->id, sizeof(s->id), hex);
	snprintf(s->path, sizeof(s->path), "%s/upload-%s.part", u->dir, hex);
	memcpy(s->owner, owner, strlen(owner) + 1);
	memcpy(s->want, sha256, UPLOAD_HASH_LEN);
	s->size = size;
	s->touched = now;
	if ((s->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(s->md, u->sha256, NULL) != 1) {
		s->path[0] = '\0'; /* not created yet */
		upload_sess_free(s, 0);
		return err_set(err, STB_INTERNAL, "SHA-256 context");
	}
	pthread_mutex_lock(&u->mu);
	if (u->t.n >= u->conf.max_sessions) {
		pthread_mutex_unlock(&u->mu);
		s->path[0] = '\0';
		upload_sess_free(s, 0);
		return err_set(err, STB_RATE_LIMITED, "%zu uploads open already",
		               u->conf.max_sessions);
	}
	htab_insert(&u->t, &s->h, htab_hash(&u->t, s->id, UPLOAD_ID_LEN));
	pthread_mutex_unlock(&u->mu);
	/* created after it is counted; nobody knows the id yet */
	if ((s->fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		int e = errno;
		s->path[0] = '\0'; /* not ours to remove */
		pthread_mutex_lock(&u->mu);
		htab_remove(&u->t, &s->h);
		pthread_mutex_unlock(&u->mu);
		upload_sess_free(s, 0);
		return err_set(err, STB_INTERNAL, "upload spool in %s: %s", u->dir, strerror(e));
	}
	memcpy(id, s->id, UPLOAD_ID_LEN);
	return 0;
}

/* 1 when the file holds exactly data at off. */
static int
upload_same(int fd, uint64_t off, const uint8_t *data, size_t len)
{
	uint8_t b[4096];

	while (len > 0) {
		size_t n = len < sizeof(b) ? len : sizeof(b);
		ssize_t r = pread(fd, b, n, (off_t)off);
		if (r != (ssize_t)n || memcmp(b, data, n) != 0)
			return 0;
		off += n;
		data += n;
		len -= n;
	}
	return 1;
}

static int
upload_write(int fd, uint64_t off, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, data, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (uint64_t)w;
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Ends s (busy, out of the lock) after a failure. */
static void
upload_drop_busy(upload_t *u, upload_sess_t *s)
{
	pthread_mutex_lock(&u->mu);
	htab_remove(&u->t, &s->h);
	pthread_mutex_unlock(&u->mu);
	upload_sess_free(s, 0);
}

int
upload_chunk(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, uint64_t offset,
             const void *data, size_t len, int64_t now, uint64_t *next, err_t *err)
{
	upload_sess_t *s;
	int resend;

	pthread_mutex_lock(&u->mu);
	if ((s = upload_find(u, id, owner, now, err)) == NULL) {
		pthread_mutex_unlock(&u->mu);
		return -1;
	}
	*next = s->len;
	resend = len > 0 && offset == s->last_off && len == s->last_len && offset + len == s->len;
	if (!resend && offset != s->len) {
		pthread_mutex_unlock(&u->mu);
		return err_set(err, STB_CONFLICT, "chunk at %llu, the upload is at %llu",
		               (unsigned long long)offset, (unsigned long long)s->len);
	}
	if (!resend && len > s->size - s->len) {
		pthread_mutex_unlock(&u->mu);
		return err_set(err, STB_TOO_LARGE, "chunk goes past the %llu bytes announced",
		               (unsigned long long)s->size);
	}
	s->busy = 1;
	s->touched = now;
	pthread_mutex_unlock(&u->mu);
	if (resend) {
		int same = upload_same(s->fd, offset, data, len);
		pthread_mutex_lock(&u->mu);
		s->busy = 0;
		pthread_mutex_unlock(&u->mu);
		if (!same)
			return err_set(err, STB_CONFLICT,
			               "resent chunk at %llu differs from the one accepted",
			               (unsigned long long)offset);
		return 0;
	}
	if (upload_write(s->fd, offset, data, len) == -1 ||
	    EVP_DigestUpdate(s->md, data, len) != 1) {
		int e = errno;
		upload_drop_busy(u, s);
		return err_set(err, STB_INTERNAL, "upload spool write: %s; upload ended",
		               strerror(e));
	}
	pthread_mutex_lock(&u->mu);
	s->last_off = offset;
	s->last_len = len;
	s->len += len;
	*next = s->len;
	s->busy = 0;
	pthread_mutex_unlock(&u->mu);
	return 0;
}

int
upload_offset(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, int64_t now,
              uint64_t *offset, err_t *err)
{
	upload_sess_t *s;

	pthread_mutex_lock(&u->mu);
	if ((s = upload_find(u, id, owner, now, err)) != NULL) {
		*offset = s->len;
		s->touched = now;
	}
	pthread_mutex_unlock(&u->mu);
	return s != NULL ? 0 : -1;
}

int
upload_commit(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, int64_t now,
              char *path, size_t cap, int *fd, err_t *err)
{
	uint8_t got[EVP_MAX_MD_SIZE];
	unsigned int glen = 0;
	upload_sess_t *s;

	pthread_mutex_lock(&u->mu);
	if ((s = upload_find(u, id, owner, now, err)) == NULL) {
		pthread_mutex_unlock(&u->mu);
		return -1;
	}
	if (s->len != s->size) {
		pthread_mutex_unlock(&u->mu);
		return err_set(err, STB_CONFLICT, "upload has %llu of %llu bytes",
		               (unsigned long long)s->len, (unsigned long long)s->size);
	}
	if (strlen(s->path) >= cap) {
		pthread_mutex_unlock(&u->mu);
		return err_set(err, STB_INTERNAL, "upload path does not fit");
	}
	s->busy = 1;
	pthread_mutex_unlock(&u->mu);
	if (EVP_DigestFinal_ex(s->md, got, &glen) != 1 || glen != UPLOAD_HASH_LEN ||
	    CRYPTO_memcmp(got, s->want, UPLOAD_HASH_LEN) != 0) {
		upload_drop_busy(u, s);
		return err_set(err, STB_BAD_REQUEST,
		               "upload's SHA-256 does not match; upload ended");
	}
	if (fsync(s->fd) == -1 || upload_sync_dir(u->dir) == -1 || lseek(s->fd, 0, SEEK_SET) != 0) {
		int e = errno;
		upload_drop_busy(u, s);
		return err_set(err, STB_INTERNAL, "upload spool sync: %s; upload ended",
		               strerror(e));
	}
	pthread_mutex_lock(&u->mu);
	htab_remove(&u->t, &s->h);
	pthread_mutex_unlock(&u->mu);
	memcpy(path, s->path, strlen(s->path) + 1);
	*fd = s->fd;
	upload_sess_free(s, 1); /* the file and fd are the caller's now */
	return 0;
}

int
upload_abort(upload_t *u, const uint8_t id[UPLOAD_ID_LEN], const char *owner, err_t *err)
{
	upload_sess_t *s;

	pthread_mutex_lock(&u->mu);
	/* now = INT64_MIN: an expired session is still the owner's to abort */
	if ((s = upload_find(u, id, owner, INT64_MIN / 2, err)) != NULL)
		htab_remove(&u->t, &s->h);
	pthread_mutex_unlock(&u->mu);
	if (s == NULL)
		return -1;
	upload_sess_free(s, 0);
	return 0;
}

size_t
upload_sweep(upload_t *u, int64_t now)
{
	htab_node_t *n, *next;
	upload_sess_t *gone = NULL, *s;
	size_t b = 0, k = 0;

	pthread_mutex_lock(&u->mu);
	for (n = htab_next(&u->t, &b, NULL); n != NULL; n = next) {
		next = htab_next(&u->t, &b, n);
		s = HTAB_ENTRY(n, upload_sess_t, h);
		if (s->busy || !upload_expired(u, s, now))
			continue;
		htab_remove(&u->t, &s->h);
		s->h.next = (htab_node_t *)gone; /* a list of the removed */
		gone = s;
	}
	pthread_mutex_unlock(&u->mu);
	while (gone != NULL) {
		s = gone;
		gone = (upload_sess_t *)(void *)s->h.next;
		upload_sess_free(s, 0); /* file I/O out of the lock */
		k++;
	}
	return k;
}

size_t
upload_count(upload_t *u)
{
	size_t n;

	pthread_mutex_lock(&u->mu);
	n = u->t.n;
	pthread_mutex_unlock(&u->mu);
	return n;
}
