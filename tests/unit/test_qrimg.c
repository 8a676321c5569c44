/* test_qrimg: a published payload drawn as PNG reads back through zbar
 * (zbarimg --raw) as the exact text; the SVG is a well-formed drawing. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apppay.h"
#include "qrimg.h"
#include "testutil.h"

static void
payload(char *text, size_t cap)
{
	static const uint8_t key[APPPAY_KEY_LEN] = {7};
	EVP_PKEY *sk = EVP_EC_gen("P-256");
	err_t err;

	assert_non_null(sk);
	assert_int_equal(apppay_encode("0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	                               "abcdef",
	                               APPPAY_SAFE, 1800000000u, 1800086400u, key, sk, text, cap,
	                               &err),
	                 0);
	EVP_PKEY_free(sk);
}

/* zbarimg's decoding of path into out (without the newline it adds). */
static int
zbar(const char *path, char *out, size_t cap)
{
	char cmd[512];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "zbarimg --quiet --raw '%s' 2>/dev/null", path);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
	return pclose(p) == 0 ? 0 : -1;
}

static void
test_png_zbar(void **state)
{
	char text[APPPAY_TEXT_MAX + 1], back[APPPAY_TEXT_MAX + 64], path[128];
	err_t err;

	(void)state;
	if (access("/usr/bin/zbarimg", X_OK) != 0)
		skip();
	payload(text, sizeof(text));
	snprintf(path, sizeof(path), "%s/qr.png", tu_dir);
	assert_int_equal(qrimg_write_png(text, path, &err), 0);
	assert_int_equal(zbar(path, back, sizeof(back)), 0);
	assert_string_equal(back, text);
	/* replaced in place, no temporary left */
	assert_int_equal(qrimg_write_png("STB1:OTHER", path, &err), 0);
	assert_int_equal(zbar(path, back, sizeof(back)), 0);
	assert_string_equal(back, "STB1:OTHER");
	snprintf(path, sizeof(path), "%s/qr.png.tmp", tu_dir);
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_svg(void **state)
{
	char text[APPPAY_TEXT_MAX + 1], path[128], *doc;
	struct stat st;
	FILE *f;
	err_t err;

	(void)state;
	payload(text, sizeof(text));
	snprintf(path, sizeof(path), "%s/qr.svg", tu_dir);
	assert_int_equal(qrimg_write_svg(text, path, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_non_null(doc = calloc(1, (size_t)st.st_size + 1));
	assert_non_null(f = fopen(path, "r"));
	assert_int_equal(fread(doc, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	assert_non_null(strstr(doc, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "));
	/* the three finder patterns start at the quiet zone's corner */
	assert_non_null(strstr(doc, "M4 4h1v1h-1z"));
	assert_non_null(strstr(doc, "</svg>\n"));
	free(doc);
}

static void
test_refused(void **state)
{
	char big[QRIMG_TEXT_MAX + 2], path[128];
	err_t err;

	(void)state;
	snprintf(path, sizeof(path), "%s/x.png", tu_dir);
	assert_int_equal(qrimg_write_png("", path, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(qrimg_write_svg(big, path, &err), -1);
	assert_int_equal(err.status, STB_BAD_REQUEST);
	assert_int_equal(qrimg_write_png("STB1:X", "/nonexistent-dir/x.png", &err), -1);
	assert_int_equal(err.status, STB_INTERNAL);
	assert_non_null(strstr(err.msg, "/nonexistent-dir/x.png"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_png_zbar, tu_setup_dir, tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_svg, tu_setup_dir, tu_teardown_dir),
	    cmocka_unit_test_setup_teardown(test_refused, tu_setup_dir, tu_teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
