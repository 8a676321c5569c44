/* apk_dump: the APK analysis (src/appvetd/apk.h) from the command line, for
 * the agreement tests (one JSON report a line) and the vetting-time figure.
 *
 *   apk_dump [--blocklist FILE] [--clamav DB] [--dangerous LIST]
 *            [--max-entries N] [--max-total BYTES] [--max-ratio N]
 *            [--time RUNS] APK...
 *
 * --time RUNS analyses each APK RUNS times and prints, instead of the
 * report, the seconds of each run, their median and the median s/MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apk.h"

static int
usage(void)
{
	fprintf(stderr, "usage: apk_dump [--blocklist FILE] [--clamav DB] "
	                "[--dangerous LIST] [--max-entries N] [--max-total "
	                "BYTES] [--max-ratio N] [--time RUNS] APK...\n");
	return 2;
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
time_one(apk_ctx_t *ctx, const char *path, int runs)
{
	double t[64];
	apk_report_t r;
	err_t err;

	if (runs < 1 || runs > 64)
		return usage();
	for (int i = 0; i < runs; i++) {
		double t0 = now();

		if (apk_analyse(ctx, path, &r, &err) < 0) {
			fprintf(stderr, "apk_dump: %s: %s\n", path, err.msg);
			apk_report_free(&r);
			return 1;
		}
		t[i] = now() - t0;
		if (i == 0)
			printf("%s: %.1f MiB, verdict %s\n", path, (double)r.size / 1048576.0,
			       apk_verdict_name(r.verdict));
		printf("run %d: %.3f s\n", i + 1, t[i]);
		if (i + 1 == runs) {
			double mib = (double)r.size / 1048576.0;

			qsort(t, (size_t)runs, sizeof(t[0]), dbl_cmp);
			printf("median %.3f s, %.2f ms/MiB\n", t[runs / 2],
			       mib > 0 ? 1000.0 * t[runs / 2] / mib : 0.0);
		}
		apk_report_free(&r);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	apk_conf_t conf;
	apk_ctx_t *ctx;
	int i, rc = 0, runs = 0;
	err_t err;

	apk_conf_default(&conf);
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return usage();
		if (strcmp(o, "--blocklist") == 0)
			conf.blocklist_path = v;
		else if (strcmp(o, "--clamav") == 0)
			conf.clamav_db = v;
		else if (strcmp(o, "--dangerous") == 0)
			conf.dangerous_permissions = v;
		else if (strcmp(o, "--max-entries") == 0)
			conf.max_entries = strtoull(v, NULL, 10);
		else if (strcmp(o, "--max-total") == 0)
			conf.max_total_uncompressed = strtoull(v, NULL, 10);
		else if (strcmp(o, "--max-ratio") == 0)
			conf.max_ratio = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(o, "--time") == 0)
			runs = atoi(v);
		else
			return usage();
	}
	if (i >= argc)
		return usage();
	if ((ctx = apk_ctx_new(&conf, &err)) == NULL) {
		fprintf(stderr, "apk_dump: %s\n", err.msg);
		return 1;
	}
	for (; i < argc; i++) {
		apk_report_t r;
		char *json;

		if (runs > 0) {
			rc |= time_one(ctx, argv[i], runs);
			continue;
		}
		if (apk_analyse(ctx, argv[i], &r, &err) < 0) {
			fprintf(stderr, "apk_dump: %s: %s\n", argv[i], err.msg);
			apk_report_free(&r);
			rc = 1;
			continue;
		}
		if ((json = apk_report_json(&r, &err)) == NULL) {
			fprintf(stderr, "apk_dump: %s\n", err.msg);
			rc = 1;
		} else {
			printf("%s\n", json);
			free(json);
		}
		apk_report_free(&r);
	}
	apk_ctx_free(ctx);
	return rc;
}
