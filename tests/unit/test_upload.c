/* Unit tests for upload: chunked upload sessions spooled to disk. */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "upload.h"

#define NOW 1000000

static uint8_t data[10000];
static uint8_t digest[UPLOAD_HASH_LEN];

static upload_t *
mk(size_t max_sessions)
{
	upload_conf_t c = {tu_dir, sizeof(data), 60, max_sessions};
	upload_t *u = upload_new(&c, NULL);

	assert_non_null(u);
	return u;
}

/* Files in the spool directory. */
static int
spooled(void)
{
	DIR *d = opendir(tu_dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, "upload-", 7) == 0;
	closedir(d);
	return n;
}

static void
test_whole_upload_in_chunks(void **state)
{
	upload_t *u = mk(4);
	uint8_t id[UPLOAD_ID_LEN], back[sizeof(data)];
	char path[UPLOAD_PATH_MAX];
	uint64_t next;
	struct stat st;
	int fd;
	err_t err;

	(void)state;
	assert_int_equal(upload_begin(u, "alice", sizeof(data), digest, NOW, id, &err), 0);
	assert_int_equal(spooled(), 1);
	for (size_t off = 0; off < sizeof(data); off += 3000) {
		size_t n = sizeof(data) - off < 3000 ? sizeof(data) - off : 3000;
		assert_int_equal(upload_chunk(u, id, "alice", off, data + off, n, NOW, &next, &err),
		                 0);
		assert_int_equal(next, off + n);
	}
	assert_int_equal(upload_commit(u, id, "alice", NOW, path, sizeof(path), &fd, &err), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, sizeof(data));
	assert_int_equal(read(fd, back, sizeof(back)), (int)sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	close(fd);
	assert_non_null(strstr(path, tu_dir));
	assert_int_equal(upload_count(u), 0);
	/* the session is over; the file is the caller's */
	assert_int_equal(upload_offset(u, id, "alice", NOW, &next, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(unlink(path), 0);
	upload_free(u);
}

static void
test_offsets_and_resends(void **state)
{
	upload_t *u = mk(4);
	uint8_t id[UPLOAD_ID_LEN], other[100];
	uint64_t next, off;
	err_t err;

	(void)state;
	memset(other, 0xee, sizeof(other));
	assert_int_equal(upload_begin(u, "alice", sizeof(data), digest, NOW, id, &err), 0);
	assert_int_equal(upload_chunk(u, id, "alice", 0, data, 100, NOW, &next, &err), 0);
	assert_int_equal(upload_chunk(u, id, "alice", 100, data + 100, 100, NOW, &next, &err), 0);
	/* a gap, or a rewrite of an older range: CONFLICT with where it is */
	assert_int_equal(upload_chunk(u, id, "alice", 300, data + 300, 100, NOW, &next, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	assert_int_equal(next, 200);
	assert_int_equal(upload_chunk(u, id, "alice", 0, data, 100, NOW, &next, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	/* the last range again (its answer was lost): accepted, no change */
	assert_int_equal(upload_chunk(u, id, "alice", 100, data + 100, 100, NOW, &next, &err), 0);
	assert_int_equal(next, 200);
	/* ... but not with other bytes */
	assert_int_equal(upload_chunk(u, id, "alice", 100, other, 100, NOW, &next, &err), -1);
	assert_int_equal(err.status, STB_CONFLICT);
	/* resume after a reconnect: the owner asks where it is */
	assert_int_equal(upload_offset(u, id, "alice", NOW + 10, &off, &err), 0);
	assert_int_equal(off, 200);
	/* nobody else sees it */
	assert_int_equal(upload_offset(u, id, "mallory", NOW, &off, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(upload_chunk(u, id, "mallory", 200, data + 200, 10, NOW, &next, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	assert_int_equal(upload_abort(u, id, "mallory", &err), -1);
	/* past the size announced */
	assert_int_equal(upload_chunk(u, id, "alice", 200, data, sizeof(data), NOW, &next, &err),
	                 -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	/* a short upload does not commit, and stays open */
	{
		char path[UPLOAD_PATH_MAX];
		int fd;
		assert_int_equal(upload_commit(u, id, "alice", NOW, path, sizeof(path), &fd, &err),
		                 -1);
		assert_int_equal(err.status, STB_CONFLICT);
	}
	assert_int_equal(upload_count(u), 1);
	assert_int_equal(upload_abort(u, id, "alice", &err), 0);
	assert_int_equal(spooled(), 0);
	assert_int_equal(upload_count(u), 0);
	upload_free(u);
}

static void
test_digest_mismatch_ends_it(void **state)
{
	upload_t *u = mk(4);
	uint8_t id[UPLOAD_ID_LEN], wrong[UPLOAD_HASH_LEN];
	char path[UPLOAD_PATH_MAX];
	uint64_t next;
	int fd;
	err_t err;

	(void)state;
	memcpy(wrong, digest, sizeof(wrong));
	wrong[0] ^= 1;
	assert_int_equal(upload_begin(u, "alice", sizeof(data), wrong, NOW, id, &err), 0);
	assert_int_equal(upload_chunk(u, id, "alice", 0, data, sizeof(data), NOW, &next, &err), 0);
	assert_int_equal(upload_commit(u, id, "alice", NOW, path, sizeof(path), &fd, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(spooled(), 0);
	assert_int_equal(upload_count(u), 0);
	upload_free(u);
}

static void
test_limits_and_ttl(void **state)
{
	upload_t *u = mk(2);
	uint8_t a[UPLOAD_ID_LEN], b[UPLOAD_ID_LEN], c[UPLOAD_ID_LEN];
	uint64_t next, off;
	err_t err;

	(void)state;
	assert_int_equal(upload_begin(u, "alice", sizeof(data) + 1, digest, NOW, a, &err), -1);
	assert_int_equal(err.status, STB_TOO_LARGE);
	assert_int_equal(upload_begin(u, "alice", 0, digest, NOW, a, &err), -1);
	assert_int_equal(upload_begin(u, "", 10, digest, NOW, a, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(upload_begin(u, "alice", 10, digest, NOW, a, &err), 0);
	assert_int_equal(upload_begin(u, "bob", 10, digest, NOW + 30, b, &err), 0);
	assert_memory_not_equal(a, b, UPLOAD_ID_LEN);
	assert_int_equal(upload_begin(u, "carol", 10, digest, NOW, c, &err), -1);
	assert_int_equal(err.status, STB_RATE_LIMITED);
	assert_int_equal(spooled(), 2);
	/* alice idles past the TTL: swept, file gone; bob's chunk keeps his */
	assert_int_equal(upload_chunk(u, b, "bob", 0, data, 5, NOW + 59, &next, &err), 0);
	assert_int_equal(upload_sweep(u, NOW + 60), 1);
	assert_int_equal(spooled(), 1);
	assert_int_equal(upload_offset(u, a, "alice", NOW + 60, &off, &err), -1);
	assert_int_equal(err.status, STB_NOT_FOUND);
	/* an expired session found before a sweep goes too */
	assert_int_equal(upload_offset(u, b, "bob", NOW + 59 + 60, &off, &err), -1);
	assert_int_equal(spooled(), 0);
	/* free removes what is still open */
	assert_int_equal(upload_begin(u, "dave", 10, digest, NOW, c, &err), 0);
	upload_free(u);
	assert_int_equal(spooled(), 0);
}

static void
test_conf_refused(void **state)
{
	upload_conf_t c = {"", 10, 60, 1};
	err_t err;

	(void)state;
	assert_null(upload_new(&c, &err));
	c.dir = tu_dir;
	c.ttl_s = 0;
	assert_null(upload_new(&c, &err));
	assert_int_equal(err.status, STB_BAD_REQUEST);
	upload_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_whole_upload_in_chunks, tu_setup_dir,
	                                    tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_offsets_and_resends, tu_setup_dir,
	                                    tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_digest_mismatch_ends_it, tu_setup_dir,
	                                    tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_limits_and_ttl, tu_setup_dir, tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_conf_refused, tu_setup_dir, tu_teardown_dir),
	};
	unsigned int n = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	EVP_Digest(data, sizeof(data), digest, &n, EVP_sha256(), NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
