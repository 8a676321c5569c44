/* signer: the signer process, its protocol and its supervisor (see signer.h). */
#include "signer.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "frame.h"
#include "log.h"
#include "sealed.h"
#include "stb/stbproto.h"
#include "tlv.h"

#define SIGNER_FD0         3     /* the child's first channel */
#define SIGNER_CACHE_SLOTS 1024  /* unsealed keys kept */
#define SIGNER_KEY_DER_MAX 512   /* a P-256 private key, DER */
#define SIGNER_START_MS    15000 /* first answer after exec (sanitizers are slow) */
#define SIGNER_BACKOFF_MIN 100
#define SIGNER_BACKOFF_MAX 5000
#define SIGNER_STABLE_S    10 /* a signer that lived this long resets the backoff */

/* ---------------------------------------------------------------- */
/* the daemon's side                                                */

typedef struct signer_chan {
	pthread_mutex_t mu;
	int fd;    /* -1 while no signer runs */
	pid_t pid; /* the signer at its other end */
	uint32_t next_id;
} signer_chan_t;

struct signer {
	char name[64];
	char self[4096];
	char kek_file[4096];
	int nchan;
	signer_chan_t ch[SIGNER_CHANNELS_MAX];
	pthread_mutex_t mu; /* pid, stopping, starts */
	pthread_cond_t cv;
	pid_t pid;
	int stopping;
	uint64_t starts;
	time_t started_at;
	pthread_t sup;
	int sup_running;
	unsigned rr; /* atomic: the next channel to try */
};

static int64_t
signer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Forks and execs a signer on fresh channels; s->mu held.  The child only
 * makes async-signal-safe calls before exec: the daemon has threads. */
static int
signer_spawn(signer_t *s, err_t *err)
{
	int pairs[SIGNER_CHANNELS_MAX][2], i, n = s->nchan;
	char nbuf[16], pbuf[24], *argv[6];
	pid_t pid;

	for (i = 0; i < n; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) == -1) {
			int e = errno;
			while (i-- > 0) {
				close(pairs[i][0]);
				close(pairs[i][1]);
			}
			return err_set(err, STB_INTERNAL, "signer socketpair: %s", strerror(e));
		}
	snprintf(nbuf, sizeof(nbuf), "%d", n);
	argv[0] = s->name;
	argv[1] = (char *)SIGNER_ARGV;
	argv[2] = s->kek_file;
	argv[3] = nbuf;
	/* the parent's pid: PID 1 is a legitimate parent in a container */
	snprintf(pbuf, sizeof(pbuf), "%ld", (long)getpid());
	argv[4] = pbuf;
	argv[5] = NULL;
	if ((pid = fork()) == -1) {
		int e = errno;
		for (i = 0; i < n; i++) {
			close(pairs[i][0]);
			close(pairs[i][1]);
		}
		return err_set(err, STB_INTERNAL, "signer fork: %s", strerror(e));
	}
	if (pid == 0) {
		int tmp[SIGNER_CHANNELS_MAX];
		sigset_t none;

		/* out of the way of 3..3+n first, then into place (dup2 clears
		 * close-on-exec); everything else closes on exec or below */
		for (i = 0; i < n; i++)
			if ((tmp[i] = fcntl(pairs[i][1], F_DUPFD_CLOEXEC, SIGNER_FD0 + n)) == -1)
				_exit(126);
		for (i = 0; i < n; i++)
			if (dup2(tmp[i], SIGNER_FD0 + i) == -1)
				_exit(126);
		syscall(SYS_close_range, (unsigned)(SIGNER_FD0 + n), ~0U, 0);
		/* the forking thread's mask would survive exec: SIGTERM must stop it */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(s->self, argv);
		_exit(127);
	}
	for (i = 0; i < n; i++) {
		close(pairs[i][1]);
		pthread_mutex_lock(&s->ch[i].mu);
		if (s->ch[i].fd != -1)
			close(s->ch[i].fd);
		s->ch[i].fd = pairs[i][0];
		s->ch[i].pid = pid;
		pthread_mutex_unlock(&s->ch[i].mu);
	}
	s->pid = pid;
	s->starts++;
	s->started_at = time(NULL);
	return 0;
}

static void
signer_close_chans(signer_t *s)
{
	for (int i = 0; i < s->nchan; i++) {
		pthread_mutex_lock(&s->ch[i].mu);
		if (s->ch[i].fd != -1)
			close(s->ch[i].fd);
		s->ch[i].fd = -1;
		pthread_mutex_unlock(&s->ch[i].mu);
	}
}

/* Waits for the signer to die, then starts another after a backoff. */
static void *
signer_supervise(void *arg)
{
	signer_t *s = arg;
	int backoff = SIGNER_BACKOFF_MIN, st;
	err_t err;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		pid_t pid = s->pid;
		pthread_mutex_unlock(&s->mu);
		if (pid > 0) {
			while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
				;
			pthread_mutex_lock(&s->mu);
			s->pid = 0;
			if (time(NULL) - s->started_at >= SIGNER_STABLE_S)
				backoff = SIGNER_BACKOFF_MIN;
			int stopping = s->stopping;
			pthread_mutex_unlock(&s->mu);
			signer_close_chans(s);
			if (!stopping)
				log_warnx(
				    "signer %d %s %d: signing is UNAVAILABLE; restarting in %d ms",
				    (int)pid, WIFSIGNALED(st) ? "killed by signal" : "exited",
				    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), backoff);
		}
		pthread_mutex_lock(&s->mu);
		if (!s->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += backoff / 1000;
			ts.tv_nsec += (long)(backoff % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
				;
		}
		if (s->stopping) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		if (signer_spawn(s, &err) == -1)
			log_warnx("signer: %s", err.msg);
		else
			log_info("signer restarted as pid %d", (int)s->pid);
		pthread_mutex_unlock(&s->mu);
		backoff = backoff * 2 > SIGNER_BACKOFF_MAX ? SIGNER_BACKOFF_MAX : backoff * 2;
	}
}

/* poll for ev on fd until deadline; 0 ready, -1 closed, -2 timed out. */
static int
signer_wait(int fd, short ev, int64_t deadline)
{
	struct pollfd p = {fd, ev, 0};
	int64_t left;
	int n;

	for (;;) {
		if ((left = deadline - signer_now_ms()) <= 0)
			return -2;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return (p.revents & ev) ? 0 : -1;
		if (n == 0)
			return -2;
		if (errno != EINTR)
			return -1;
	}
}

/* Sends a request and reads its reply into rsp: 0, 1 (an error reply),
 * -1 (the channel broke) or -2 (no reply in time).  Three system calls in
 * the common case (send, poll, recv): a request fits the socket's buffer,
 * and the one reply in flight on a channel arrives whole. */
static int
signer_xfer(int fd, const uint8_t *out, size_t olen, buf_t *rsp, uint16_t type, uint32_t id,
            int64_t deadline)
{
	uint8_t in[STB_FRAME_HDR_LEN + SIGNER_FRAME_MAX];
	size_t off = 0, have = 0;
	frame_hdr_t h;
	ssize_t n;
	int w, rc = -1;

	while (off < olen) {
		if ((n = send(fd, out + off, olen - off, MSG_NOSIGNAL | MSG_DONTWAIT)) > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;
		if ((w = signer_wait(fd, POLLOUT, deadline)) != 0)
			return w;
	}
	for (;;) {
		if ((w = signer_wait(fd, POLLIN, deadline)) != 0) {
			rc = w;
			goto out;
		}
		if ((n = recv(fd, in + have, sizeof(in) - have, MSG_DONTWAIT)) == 0)
			goto out;
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			goto out;
		}
		have += (size_t)n;
		if ((w = frame_decode(in, have, SIGNER_FRAME_MAX, &h)) == FRAME_OK)
			break;
		if (w != FRAME_NEED_MORE)
			goto out;
	}
	/* exactly the reply asked for, and nothing after it */
	if (have != STB_FRAME_HDR_LEN + h.len || h.req_id != id || h.type != type ||
	    !(h.flags & STB_FRAME_F_RESPONSE) || buf_reserve(rsp, h.len) == -1)
		goto out;
	if (h.len > 0) /* an empty reply (PING) leaves rsp unallocated */
		memcpy(rsp->data, in + STB_FRAME_HDR_LEN, h.len);
	rsp->len = h.len;
	rc = (h.flags & STB_FRAME_F_ERROR) ? 1 : 0;
out:
	OPENSSL_cleanse(in, have); /* OPEN replies carry plaintext */
	return rc;
}

/* An error reply's status and text into err. */
static int
signer_refusal(const buf_t *rsp, err_t *err)
{
	tlv_cursor_t c;
	uint16_t t, status = STB_INTERNAL;
	const uint8_t *v;
	uint32_t l;
	char text[256] = "refused";

	tlv_cursor_init(&c, rsp->data, rsp->len);
	while (tlv_next(&c, &t, &v, &l) == TLV_NEXT) {
		if (t == SIGNER_TLV_STATUS && l == 2)
			status = load_be16(v);
		else if (t == SIGNER_TLV_TEXT && l < sizeof(text)) {
			memcpy(text, v, l);
			text[l] = '\0';
		}
	}
	if (status == STB_OK)
		status = STB_INTERNAL;
	return err_set(err, status, "signer: %s", text);
}

static int
signer_call_until(signer_t *s, uint16_t type, const buf_t *req, buf_t *rsp, int64_t deadline,
                  err_t *err)
{
	signer_chan_t *ch = NULL;
	unsigned start = __atomic_fetch_add(&s->rr, 1, __ATOMIC_RELAXED);
	size_t fs;
	buf_t out;
	int rc;

	if (req->len > SIGNER_FRAME_MAX)
		return err_set(err, STB_TOO_LARGE, "signer request too large");
	for (int k = 0; k < s->nchan && ch == NULL; k++)
		if (pthread_mutex_trylock(&s->ch[(start + (unsigned)k) % (unsigned)s->nchan].mu) ==
		    0)
			ch = &s->ch[(start + (unsigned)k) % (unsigned)s->nchan];
	if (ch == NULL) {
		ch = &s->ch[start % (unsigned)s->nchan];
		pthread_mutex_lock(&ch->mu);
	}
	if (ch->fd == -1) {
		pthread_mutex_unlock(&ch->mu);
		return err_set(err, STB_UNAVAILABLE, "the signer is not running (restarting)");
	}
	buf_init(&out, STB_FRAME_HDR_LEN + SIGNER_FRAME_MAX);
	if (frame_begin(&out, &fs) == -1 || buf_append(&out, req->data, req->len) == -1 ||
	    frame_end(&out, fs, type, 0, ++ch->next_id) == -1) {
		pthread_mutex_unlock(&ch->mu);
		buf_free(&out);
		return err_set(err, STB_INTERNAL, "out of memory");
	}
	rc = signer_xfer(ch->fd, out.data, out.len, rsp, type, ch->next_id, deadline);
	buf_wipe(&out);
	if (rc < 0) {
		/* a late reply would come out of turn: this channel is done; a
		 * signer that does not answer in time is killed, and the
		 * supervisor starts another */
		if (rc == -2 && ch->pid > 0)
			kill(ch->pid, SIGKILL);
		close(ch->fd);
		ch->fd = -1;
		pthread_mutex_unlock(&ch->mu);
		return err_set(err, STB_UNAVAILABLE, "the signer is %s",
		               rc == -2 ? "not answering (killed)" : "gone (restarting)");
	}
	pthread_mutex_unlock(&ch->mu);
	if (rc == 1)
		return signer_refusal(rsp, err);
	return 0;
}

int
signer_call(signer_t *s, uint16_t type, const buf_t *req, buf_t *rsp, err_t *err)
{
	if (s == NULL)
		return err_set(err, STB_UNAVAILABLE, "no signer");
	return signer_call_until(s, type, req, rsp, signer_now_ms() + SIGNER_TIMEOUT_MS, err);
}

int
signer_start(const char *name, const char *self, const char *kek_file, int nchan, signer_t **out,
             err_t *err)
{
	signer_t *s;
	buf_t req, rsp;
	int rc;

	*out = NULL;
	if (nchan < 1 || nchan > SIGNER_CHANNELS_MAX)
		return err_set(err, STB_BAD_REQUEST, "signer channels: 1 to %d",
		               SIGNER_CHANNELS_MAX);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return err_set(err, STB_INTERNAL, "out of memory");
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->self, sizeof(s->self), "%s", self != NULL ? self : "/proc/self/exe");
	snprintf(s->kek_file, sizeof(s->kek_file), "%s", kek_file);
	s->nchan = nchan;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	for (int i = 0; i < nchan; i++) {
		pthread_mutex_init(&s->ch[i].mu, NULL);
		s->ch[i].fd = -1;
	}
	pthread_mutex_lock(&s->mu);
	rc = signer_spawn(s, err);
	pthread_mutex_unlock(&s->mu);
	if (rc == -1) {
		signer_free(s);
		return -1;
	}
	buf_init(&req, 0);
	buf_init(&rsp, SIGNER_FRAME_MAX);
	rc = signer_call_until(s, SIGNER_MSG_PING, &req, &rsp, signer_now_ms() + SIGNER_START_MS,
	                       err);
	buf_free(&rsp);
	if (rc == -1 || pthread_create(&s->sup, NULL, signer_supervise, s) != 0) {
		if (rc != -1)
			err_set(err, STB_INTERNAL, "cannot start the signer's supervisor");
		else
			err_set(err, err->status, "the signer did not start (see its log): %s",
			        err->msg);
		pthread_mutex_lock(&s->mu);
		if (s->pid > 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
			s->pid = 0;
		}
		pthread_mutex_unlock(&s->mu);
		signer_free(s);
		return -1;
	}
	s->sup_running = 1;
	log_info("signer started as pid %d with %d channels", (int)s->pid, nchan);
	*out = s;
	return 0;
}

void
signer_free(signer_t *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	if (s->pid > 0)
		kill(s->pid, SIGTERM);
	pthread_mutex_unlock(&s->mu);
	if (s->sup_running)
		pthread_join(s->sup, NULL);
	signer_close_chans(s);
	for (int i = 0; i < s->nchan; i++)
		pthread_mutex_destroy(&s->ch[i].mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

pid_t
signer_pid(signer_t *s)
{
	pid_t p;

	pthread_mutex_lock(&s->mu);
	p = s->pid;
	pthread_mutex_unlock(&s->mu);
	return p;
}

uint64_t
signer_starts(signer_t *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->mu);
	n = s->starts;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* The value of TLV type in body, exactly once; NULL when absent. */
static const uint8_t *
signer_tlv(const buf_t *b, uint16_t type, uint32_t *len)
{
	tlv_cursor_t c;
	uint16_t t;
	const uint8_t *v, *found = NULL;
	uint32_t l;

	tlv_cursor_init(&c, b->data, b->len);
	while (tlv_next(&c, &t, &v, &l) == TLV_NEXT)
		if (t == type) {
			if (found != NULL)
				return NULL;
			found = v;
			*len = l;
		}
	return found;
}

int
signer_sign(signer_t *s, const void *aad, size_t aadlen, const void *blob, size_t bloblen,
            const uint8_t *dgst, size_t dlen, uint8_t *sig, size_t cap, size_t *siglen, err_t *err)
{
	const uint8_t *v;
	uint32_t l;
	buf_t req, rsp;
	int rc = -1;

	buf_init(&req, SIGNER_FRAME_MAX);
	buf_init(&rsp, SIGNER_FRAME_MAX);
	if (tlv_put(&req, SIGNER_TLV_AAD, aad, aadlen) == -1 ||
	    tlv_put(&req, SIGNER_TLV_BLOB, blob, bloblen) == -1 ||
	    tlv_put(&req, SIGNER_TLV_DIGEST, dgst, dlen) == -1) {
		err_set(err, STB_TOO_LARGE, "signer request too large");
		goto out;
	}
	if (signer_call(s, SIGNER_MSG_SIGN, &req, &rsp, err) == -1)
		goto out;
	if ((v = signer_tlv(&rsp, SIGNER_TLV_SIG, &l)) == NULL || l > cap) {
		err_set(err, STB_INTERNAL, "signer: bad signature reply");
		goto out;
	}
	memcpy(sig, v, l);
	*siglen = l;
	rc = 0;
out:
	buf_free(&req);
	buf_free(&rsp);
	return rc;
}

int
signer_genkey(signer_t *s, buf_t *blob, EVP_PKEY **pub, err_t *err)
{
	const uint8_t *b, *p;
	uint32_t bl, pl;
	buf_t req, rsp;
	int rc = -1;

	*pub = NULL;
	buf_init(&req, 0);
	buf_init(&rsp, SIGNER_FRAME_MAX);
	if (signer_call(s, SIGNER_MSG_GENKEY, &req, &rsp, err) == -1)
		goto out;
	if ((b = signer_tlv(&rsp, SIGNER_TLV_BLOB, &bl)) == NULL ||
	    (p = signer_tlv(&rsp, SIGNER_TLV_PUB, &pl)) == NULL ||
	    (*pub = d2i_PUBKEY(NULL, &p, (long)pl)) == NULL) {
		err_set(err, STB_INTERNAL, "signer: bad key reply");
		goto out;
	}
	if (buf_append(blob, b, bl) == -1) {
		EVP_PKEY_free(*pub);
		*pub = NULL;
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	buf_free(&rsp);
	return rc;
}

/* One request with two TLVs whose reply's TLV want goes to out (at most
 * cap bytes) or is appended to ob. */
static int
signer_pair(signer_t *s, uint16_t type, uint16_t t1, const void *v1, size_t l1, uint16_t t2,
            const void *v2, size_t l2, uint16_t want, uint8_t *out, size_t cap, size_t *outlen,
            buf_t *ob, err_t *err)
{
	const uint8_t *v;
	uint32_t l;
	buf_t req, rsp;
	int rc = -1;

	buf_init(&req, SIGNER_FRAME_MAX);
	buf_init(&rsp, SIGNER_FRAME_MAX);
	if (tlv_put(&req, t1, v1, l1) == -1 || tlv_put(&req, t2, v2, l2) == -1) {
		err_set(err, STB_TOO_LARGE, "signer request too large");
		goto out;
	}
	if (signer_call(s, type, &req, &rsp, err) == -1)
		goto out;
	if ((v = signer_tlv(&rsp, want, &l)) == NULL || (out != NULL && l > cap)) {
		err_set(err, STB_INTERNAL, "signer: bad reply");
		goto out;
	}
	if (out != NULL) {
		memcpy(out, v, l);
		*outlen = l;
	} else if (buf_append(ob, v, l) == -1) {
		err_set(err, STB_INTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	buf_wipe(&req);
	buf_wipe(&rsp);
	return rc;
}

int
signer_reseal(signer_t *s, const void *pending, size_t plen, const void *aad, size_t aadlen,
              buf_t *out, err_t *err)
{
	return signer_pair(s, SIGNER_MSG_RESEAL, SIGNER_TLV_BLOB, pending, plen, SIGNER_TLV_AAD,
	                   aad, aadlen, SIGNER_TLV_BLOB, NULL, 0, NULL, out, err);
}

int
signer_seal(signer_t *s, const void *aad, size_t aadlen, const void *pt, size_t ptlen, buf_t *out,
            err_t *err)
{
	return signer_pair(s, SIGNER_MSG_SEAL, SIGNER_TLV_AAD, aad, aadlen, SIGNER_TLV_DATA, pt,
	                   ptlen, SIGNER_TLV_BLOB, NULL, 0, NULL, out, err);
}

int
signer_open(signer_t *s, const void *aad, size_t aadlen, const void *blob, size_t bloblen,
            uint8_t *pt, size_t cap, size_t *ptlen, err_t *err)
{
	return signer_pair(s, SIGNER_MSG_OPEN, SIGNER_TLV_AAD, aad, aadlen, SIGNER_TLV_BLOB, blob,
	                   bloblen, SIGNER_TLV_DATA, pt, cap, ptlen, NULL, err);
}

/* ---------------------------------------------------------------- */
/* the signer process                                               */

typedef struct signer_slot {
	uint8_t id[32]; /* SHA-256 of aad length, aad and blob */
	EVP_PKEY *key;
	EVP_PKEY_CTX *sign; /* key's, initialised for signing once */
} signer_slot_t;

typedef struct signer_srv {
	sealed_kek_t *kek;
	EVP_MD *sha256; /* fetched once */
	signer_slot_t cache[SIGNER_CACHE_SLOTS];
} signer_srv_t;

static int
signer_reply_err(buf_t *out, int status, const char *text)
{
	tlv_put_u16(out, SIGNER_TLV_STATUS, (uint16_t)status);
	tlv_put_str(out, SIGNER_TLV_TEXT, text);
	return 1;
}

static int
signer_is_pending(const uint8_t *aad, uint32_t al)
{
	return al == strlen(SIGNER_PENDING_AAD) && memcmp(aad, SIGNER_PENDING_AAD, al) == 0;
}

/* The slot of the private key sealed in blob under aad, from the cache or
 * unsealed into it. */
static signer_slot_t *
signer_key(signer_srv_t *sv, const uint8_t *aad, size_t aadlen, const uint8_t *blob, size_t bloblen,
           int *status)
{
	uint8_t id[32], pt[SIGNER_KEY_DER_MAX], al[4];
	const unsigned char *p = pt;
	size_t ptlen = 0;
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	int ok;
	signer_slot_t *slot;
	EVP_PKEY *k;
	err_t err;

	store_be32(al, (uint32_t)aadlen);
	ok = h != NULL && EVP_DigestInit_ex(h, sv->sha256, NULL) == 1 &&
	     EVP_DigestUpdate(h, al, sizeof(al)) == 1 && EVP_DigestUpdate(h, aad, aadlen) == 1 &&
	     EVP_DigestUpdate(h, blob, bloblen) == 1 && EVP_DigestFinal_ex(h, id, NULL) == 1;
	EVP_MD_CTX_free(h);
	if (!ok) {
		*status = STB_INTERNAL;
		return NULL;
	}
	slot = &sv->cache[load_be32(id) % SIGNER_CACHE_SLOTS];
	if (slot->key != NULL && CRYPTO_memcmp(slot->id, id, sizeof(id)) == 0)
		return slot;
	if (sealed_open(sv->kek, aad, aadlen, blob, bloblen, pt, sizeof(pt), &ptlen, &err) == -1) {
		*status = STB_NOT_FOUND;
		return NULL;
	}
	k = d2i_AutoPrivateKey(NULL, &p, (long)ptlen);
	OPENSSL_cleanse(pt, sizeof(pt));
	if (k == NULL || !EVP_PKEY_is_a(k, "EC")) {
		EVP_PKEY_free(k);
		*status = STB_NOT_FOUND;
		return NULL;
	}
	EVP_PKEY_CTX_free(slot->sign);
	EVP_PKEY_free(slot->key);
	slot->key = k;
	slot->sign = NULL;
	memcpy(slot->id, id, sizeof(id));
	return slot;
}

static int
signer_do_sign(signer_srv_t *sv, const uint8_t *aad, uint32_t al, const uint8_t *blob, uint32_t bl,
               const uint8_t *dg, uint32_t dl, buf_t *out)
{
	uint8_t sig[SIGNER_SIG_MAX];
	size_t siglen = sizeof(sig);
	signer_slot_t *slot;
	int status = STB_INTERNAL;

	if (aad == NULL || blob == NULL || dg == NULL || al > SIGNER_AAD_MAX ||
	    bl > SIGNER_BLOB_MAX || dl < 20 || dl > 64)
		return signer_reply_err(out, STB_BAD_REQUEST,
		                        "SIGN needs AAD, BLOB and a digest "
		                        "of 20 to 64 bytes");
	if ((slot = signer_key(sv, aad, al, blob, bl, &status)) == NULL)
		return signer_reply_err(out, status, "no such key (the blob does not open)");
	/* the fetch behind a new context costs more than the signature: one
	 * per cached key, reused (ECDSA keeps no state between signatures) */
	if (slot->sign == NULL &&
	    ((slot->sign = EVP_PKEY_CTX_new_from_pkey(NULL, slot->key, NULL)) == NULL ||
	     EVP_PKEY_sign_init(slot->sign) != 1)) {
		EVP_PKEY_CTX_free(slot->sign);
		slot->sign = NULL;
		return signer_reply_err(out, STB_INTERNAL, "signing failed");
	}
	if (EVP_PKEY_sign(slot->sign, sig, &siglen, dg, dl) != 1)
		return signer_reply_err(out, STB_INTERNAL, "signing failed");
	tlv_put(out, SIGNER_TLV_SIG, sig, siglen);
	return 0;
}

static int
signer_seal_key(signer_srv_t *sv, EVP_PKEY *k, const uint8_t *aad, size_t al, buf_t *blob)
{
	unsigned char *der = NULL;
	int n, rc;
	err_t err;

	if ((n = i2d_PrivateKey(k, &der)) <= 0)
		return -1;
	rc = sealed_seal(sv->kek, aad, al, der, (size_t)n, blob, &err) == 0 ? 0 : -1;
	OPENSSL_clear_free(der, (size_t)n);
	return rc;
}

static int
signer_do_genkey(signer_srv_t *sv, buf_t *out)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	unsigned char *pub = NULL;
	buf_t blob;
	int n, rc;

	buf_init(&blob, SIGNER_BLOB_MAX);
	if (k == NULL ||
	    signer_seal_key(sv, k, (const uint8_t *)SIGNER_PENDING_AAD, strlen(SIGNER_PENDING_AAD),
	                    &blob) == -1 ||
	    (n = i2d_PUBKEY(k, &pub)) <= 0) {
		EVP_PKEY_free(k);
		buf_free(&blob);
		return signer_reply_err(out, STB_INTERNAL, "cannot make a key");
	}
	rc = tlv_put(out, SIGNER_TLV_BLOB, blob.data, blob.len) == 0 &&
	             tlv_put(out, SIGNER_TLV_PUB, pub, (size_t)n) == 0
	         ? 0
	         : signer_reply_err(out, STB_INTERNAL, "reply too large");
	OPENSSL_free(pub);
	buf_free(&blob);
	EVP_PKEY_free(k);
	return rc;
}

static int
signer_do_reseal(signer_srv_t *sv, const uint8_t *blob, uint32_t bl, const uint8_t *aad,
                 uint32_t al, buf_t *out)
{
	int status = STB_INTERNAL;
	signer_slot_t *slot;
	buf_t nb;

	if (aad == NULL || blob == NULL || al > SIGNER_AAD_MAX || bl > SIGNER_BLOB_MAX ||
	    signer_is_pending(aad, al))
		return signer_reply_err(out, STB_BAD_REQUEST, "RESEAL needs BLOB and another AAD");
	/* only pending keys move: a sealed row's key stays bound to its row */
	if ((slot = signer_key(sv, (const uint8_t *)SIGNER_PENDING_AAD, strlen(SIGNER_PENDING_AAD),
	                       blob, bl, &status)) == NULL)
		return signer_reply_err(out, status, "not a pending key");
	buf_init(&nb, SIGNER_BLOB_MAX);
	if (signer_seal_key(sv, slot->key, aad, al, &nb) == -1 ||
	    tlv_put(out, SIGNER_TLV_BLOB, nb.data, nb.len) == -1) {
		buf_free(&nb);
		return signer_reply_err(out, STB_INTERNAL, "cannot seal the key");
	}
	buf_free(&nb);
	return 0;
}

static int
signer_do_seal(signer_srv_t *sv, const uint8_t *aad, uint32_t al, const uint8_t *pt, uint32_t pl,
               buf_t *out)
{
	buf_t nb;
	err_t err;
	int rc = 0;

	if (aad == NULL || pt == NULL || al > SIGNER_AAD_MAX || pl > SIGNER_DATA_MAX ||
	    signer_is_pending(aad, al))
		return signer_reply_err(out, STB_BAD_REQUEST, "SEAL needs AAD and DATA");
	buf_init(&nb, SIGNER_DATA_MAX + SEALED_OVERHEAD);
	if (sealed_seal(sv->kek, aad, al, pt, pl, &nb, &err) == -1 ||
	    tlv_put(out, SIGNER_TLV_BLOB, nb.data, nb.len) == -1)
		rc = signer_reply_err(out, STB_INTERNAL, "cannot seal");
	buf_free(&nb);
	return rc;
}

static int
signer_do_open(signer_srv_t *sv, const uint8_t *aad, uint32_t al, const uint8_t *blob, uint32_t bl,
               buf_t *out)
{
	uint8_t pt[SIGNER_KEY_DER_MAX];
	const unsigned char *p = pt;
	size_t ptlen = 0;
	EVP_PKEY *k = NULL;
	err_t err;
	int rc = 0;

	if (aad == NULL || blob == NULL || al > SIGNER_AAD_MAX || bl > SIGNER_BLOB_MAX ||
	    signer_is_pending(aad, al))
		return signer_reply_err(out, STB_BAD_REQUEST, "OPEN needs AAD and BLOB");
	if (sealed_open(sv->kek, aad, al, blob, bl, pt, sizeof(pt), &ptlen, &err) == -1)
		return signer_reply_err(out, STB_UNAUTHENTICATED, "does not open");
	/* whatever the daemon asks, a private key stays here */
	if (ptlen > SIGNER_DATA_MAX || (k = d2i_AutoPrivateKey(NULL, &p, (long)ptlen)) != NULL) {
		EVP_PKEY_free(k);
		rc = signer_reply_err(out, STB_FORBIDDEN, "a private key is not handed out");
	} else if (tlv_put(out, SIGNER_TLV_DATA, pt, ptlen) == -1)
		rc = signer_reply_err(out, STB_INTERNAL, "reply too large");
	ERR_clear_error();
	OPENSSL_cleanse(pt, sizeof(pt));
	return rc;
}

/* One request: 0 or 1 (error reply) with the reply body in out, -1 when
 * the frame breaks the protocol (the signer then exits). */
static int
signer_serve(signer_srv_t *sv, uint16_t type, const uint8_t *body, size_t len, buf_t *out)
{
	const uint8_t *v, *val[8] = {0};
	uint32_t l, vl[8] = {0};
	tlv_cursor_t c;
	uint16_t t;
	int rc;

	tlv_cursor_init(&c, body, len);
	while ((rc = tlv_next(&c, &t, &v, &l)) == TLV_NEXT) {
		unsigned ix = t >= SIGNER_TLV_AAD && t <= SIGNER_TLV_DATA ? t - SIGNER_TLV_AAD : 99;
		if (ix >= 8 || val[ix] != NULL)
			return -1; /* unknown or repeated */
		val[ix] = v;
		vl[ix] = l;
	}
	if (rc != TLV_END)
		return -1;
#define V(tlv) val[(tlv)-SIGNER_TLV_AAD], vl[(tlv)-SIGNER_TLV_AAD]
	switch (type) {
	case SIGNER_MSG_PING:
		return 0;
	case SIGNER_MSG_SIGN:
		return signer_do_sign(sv, V(SIGNER_TLV_AAD), V(SIGNER_TLV_BLOB),
		                      V(SIGNER_TLV_DIGEST), out);
	case SIGNER_MSG_GENKEY:
		return signer_do_genkey(sv, out);
	case SIGNER_MSG_RESEAL:
		return signer_do_reseal(sv, V(SIGNER_TLV_BLOB), V(SIGNER_TLV_AAD), out);
	case SIGNER_MSG_SEAL:
		return signer_do_seal(sv, V(SIGNER_TLV_AAD), V(SIGNER_TLV_DATA), out);
	case SIGNER_MSG_OPEN:
		return signer_do_open(sv, V(SIGNER_TLV_AAD), V(SIGNER_TLV_BLOB), out);
	default:
		return signer_reply_err(out, STB_UNSUPPORTED, "unknown request");
	}
#undef V
}

static int
signer_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

typedef struct signer_in {
	uint8_t buf[STB_FRAME_HDR_LEN + SIGNER_FRAME_MAX];
	size_t len;
} signer_in_t;

/* Reads what fd has; answers every whole frame.  -1: the channel is closed
 * or broke the protocol. */
static int
signer_input(signer_srv_t *sv, int fd, signer_in_t *in)
{
	ssize_t n = read(fd, in->buf + in->len, sizeof(in->buf) - in->len);
	frame_hdr_t h;
	int rc;

	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	in->len += (size_t)n;
	while ((rc = frame_decode(in->buf, in->len, SIGNER_FRAME_MAX, &h)) == FRAME_OK) {
		size_t whole = STB_FRAME_HDR_LEN + h.len, fs;
		buf_t out;

		if (h.flags != 0) {
			log_warnx("frame with flags %u: exiting", h.flags);
			return -1;
		}
		buf_init(&out, STB_FRAME_HDR_LEN + SIGNER_FRAME_MAX);
		if (frame_begin(&out, &fs) == -1 ||
		    (rc = signer_serve(sv, h.type, in->buf + STB_FRAME_HDR_LEN, h.len, &out)) ==
		        -1 ||
		    frame_end(&out, fs, h.type, STB_FRAME_F_RESPONSE | (rc ? STB_FRAME_F_ERROR : 0),
		              h.req_id) == -1 ||
		    signer_write_all(fd, out.data, out.len) == -1) {
			log_warnx("bad request (type %u, %u bytes) or lost channel: exiting",
			          h.type, h.len);
			buf_wipe(&out);
			return -1;
		}
		buf_wipe(&out);
		memmove(in->buf, in->buf + whole, in->len - whole);
		in->len -= whole;
	}
	if (rc != FRAME_NEED_MORE) {
		log_warnx("bad frame (%s): exiting", frame_strerror(rc));
		return -1;
	}
	return 0;
}

/* Root drops to nobody once the KEK is read. */
static int
signer_drop_privileges(void)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam("nobody")) == NULL) {
		log_warnx("no user nobody to run as");
		return -1;
	}
	if (setgroups(0, NULL) == -1 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		log_warn("cannot drop to nobody");
		return -1;
	}
	return 0;
}

int
signer_main(int argc, char **argv)
{
	static signer_in_t in[SIGNER_CHANNELS_MAX];
	struct pollfd pf[SIGNER_CHANNELS_MAX];
	static signer_srv_t sv;
	char ident[96];
	int n, rc = 1;
	long parent = 0;
	err_t err;

	snprintf(ident, sizeof(ident), "%s-signer", argc > 0 ? argv[0] : "stbcred");
	log_init(ident, 0, 0);
	if (argc != 5 || strcmp(argv[1], SIGNER_ARGV) != 0 || (n = atoi(argv[3])) < 1 ||
	    n > SIGNER_CHANNELS_MAX || (parent = strtol(argv[4], NULL, 10)) < 1) {
		log_warnx("started wrongly: the daemon starts its signer");
		return 2;
	}
	/* every descriptor but the channels and stderr */
	syscall(SYS_close_range, (unsigned)(SIGNER_FD0 + n), ~0U, 0);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	/* the daemon died before PDEATHSIG was armed: we were reparented */
	if ((long)getppid() != parent)
		return 0;
	if (sealed_kek_load(argv[2], "kek", &sv.kek, &err) == -1) {
		log_warnx("%s", err.msg);
		return 1;
	}
	if ((sv.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		log_warnx("SHA-256 is not available");
		goto out;
	}
	if (signer_drop_privileges() == -1 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		goto out;
	for (int i = 0; i < n; i++)
		pf[i] = (struct pollfd){SIGNER_FD0 + i, POLLIN, 0};
	for (;;) {
		if (poll(pf, (nfds_t)n, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++)
			if (pf[i].revents != 0 && signer_input(&sv, pf[i].fd, &in[i]) == -1) {
				/* a closed channel is a daemon gone or giving up on us */
				rc = 0;
				goto out;
			}
	}
out:
	for (int i = 0; i < SIGNER_CACHE_SLOTS; i++) {
		EVP_PKEY_CTX_free(sv.cache[i].sign);
		EVP_PKEY_free(sv.cache[i].key);
	}
	for (int i = 0; i < n; i++)
		OPENSSL_cleanse(in[i].buf, sizeof(in[i].buf));
	EVP_MD_free(sv.sha256);
	sealed_kek_free(sv.kek);
	return rc;
}
