/* clam: libclamav (see clam.h). */
#include "clam.h"

#include <clamav.h>
#include <pthread.h>
#include <stdlib.h>

#include "apkrun.h"

struct clam {
	struct cl_engine *engine;
	unsigned sigs;
};

static pthread_once_t clam_once = PTHREAD_ONCE_INIT;
static cl_error_t clam_init_rc;

static void
clam_init(void)
{
	clam_init_rc = cl_init(CL_INIT_DEFAULT);
}

clam_t *
clam_new(const char *db, uint64_t max_scan, err_t *err)
{
	clam_t *c;
	cl_error_t rc;

	pthread_once(&clam_once, clam_init);
	if (clam_init_rc != CL_SUCCESS) {
		err_set(err, STB_INTERNAL, "libclamav: %s", cl_strerror(clam_init_rc));
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->engine = cl_engine_new()) == NULL) {
		free(c);
		err_set(err, STB_INTERNAL, "out of memory");
		return NULL;
	}
	/* the package's size is capped before this; inflate no more than
	 * the analysis itself may */
	if ((rc = cl_engine_set_num(c->engine, CL_ENGINE_MAX_SCANSIZE, (long long)max_scan)) !=
	        CL_SUCCESS ||
	    (rc = cl_engine_set_num(c->engine, CL_ENGINE_MAX_FILESIZE, (long long)max_scan)) !=
	        CL_SUCCESS ||
	    (rc = cl_load(db, c->engine, &c->sigs, CL_DB_STDOPT)) != CL_SUCCESS ||
	    (rc = cl_engine_compile(c->engine)) != CL_SUCCESS) {
		err_set(err, STB_BAD_REQUEST, "ClamAV database %s: %s", db, cl_strerror(rc));
		clam_free(c);
		return NULL;
	}
	if (c->sigs == 0) {
		err_set(err, STB_BAD_REQUEST, "ClamAV database %s holds no signatures", db);
		clam_free(c);
		return NULL;
	}
	return c;
}

void
clam_free(clam_t *c)
{
	if (c == NULL)
		return;
	if (c->engine != NULL)
		cl_engine_free(c->engine);
	free(c);
}

int
clam_scan(const clam_t *c, int fd, const char *path, apk_report_t *r, err_t *err)
{
	struct cl_scan_options opts = {.parse = ~0u};
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_error_t rc;

	rc = cl_scandesc(fd, path, &virname, &scanned, c->engine, &opts);
	if (rc == CL_VIRUS) {
		apk_report_add(r, APK_SEV_UNSAFE, "clamav.match", "ClamAV finds %.128s",
		               virname != NULL ? virname : "a signature");
		return 0;
	}
	if (rc != CL_CLEAN)
		return err_set(err, STB_INTERNAL, "ClamAV scan: %s", cl_strerror(rc));
	return 0;
}
