#include "log.h"
#include "hex.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* syslog priorities, as journald reads them from "<N>" */
enum { PRI_ERR = 3, PRI_WARNING = 4, PRI_INFO = 6, PRI_DEBUG = 7 };

static const char *log_ident = "stbcred";
static int log_json;
static int log_debugging;

static int log_journal; /* stderr is journald's stream: it stamps the time */

/* systemd sets JOURNAL_STREAM to "device:inode" of the stream it gave us. */
static int
log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_init(const char *ident, int json, int debug)
{
	log_ident = ident;
	log_json = json;
	log_debugging = debug;
	log_journal = log_stderr_is_journal();
}

void
log_set_debug(int debug)
{
	log_debugging = debug;
}

static void
json_escape(char *out, size_t cap, const char *in)
{
	size_t o = 0;

	for (; *in != '\0' && o + 7 < cap; in++) {
		unsigned char c = (unsigned char)*in;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

static void log_emit(int pri, const char *fmt, va_list ap, const char *suffix)
    __attribute__((format(printf, 2, 0)));

static void
log_emit(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char msg[1024], esc[2048];
	struct timespec ts;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (suffix != NULL) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l, ": %s", suffix);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!log_json && log_journal) {
		fprintf(stderr, "<%d>%s: %s\n", pri, log_ident, msg);
		return;
	}
	if (!log_json) {
		struct tm tm;
		char when[32];
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ <%d>%s: %s\n", when, ts.tv_nsec / 1000000, pri,
		        log_ident, msg);
		return;
	}
	json_escape(esc, sizeof(esc), msg);
	fprintf(stderr, "{\"ts\":%lld.%03ld,\"pri\":%d,\"ident\":\"%s\",\"msg\":\"%s\"}\n",
	        (long long)ts.tv_sec, ts.tv_nsec / 1000000, pri, log_ident, esc);
}

#define LOG_BODY(pri, suffix)                                                                      \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_emit(pri, fmt, ap, suffix);                                                    \
		va_end(ap);                                                                        \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	const char *e = strerror(errno);

	LOG_BODY(PRI_WARNING, e);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(PRI_WARNING, NULL);
}

void
log_err(const char *fmt, ...)
{
	const char *e = strerror(errno);

	LOG_BODY(PRI_ERR, e);
}

void
log_errx(const char *fmt, ...)
{
	LOG_BODY(PRI_ERR, NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(PRI_INFO, NULL);
}

void
log_debug(const char *fmt, ...)
{
	if (!log_debugging)
		return;
	LOG_BODY(PRI_DEBUG, NULL);
}

void
fatal(const char *fmt, ...)
{
	const char *e = strerror(errno);

	LOG_BODY(PRI_ERR, e);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(PRI_ERR, NULL);
	exit(1);
}

void
log_fingerprint(const void *p, size_t len, char out[17])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8) {
		snprintf(out, 17, "????????????????");
		return;
	}
	hex_encode(md, 8, out);
}
