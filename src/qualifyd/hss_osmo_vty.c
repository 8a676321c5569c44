/* hss_osmo_vty: osmo-hlr's VTY answers (see hss_osmo_vty.h). */
#include "hss_osmo_vty.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hex.h"

#define IAC  0xff
#define SB   0xfa
#define SE   0xf0
#define WILL 0xfb
#define DONT 0xfe

/* 1 when s[0..n) is a prompt: a node name and '#' or '>' and a blank. */
static int
hss_osmo_vty_prompt(const char *s, size_t n)
{
	if (n < 3 || s[n - 1] != ' ' || (s[n - 2] != '#' && s[n - 2] != '>'))
		return 0;
	for (size_t i = 0; i + 2 < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._-()", s[i]) == NULL)
			return 0;
	return 1;
}

int
hss_osmo_vty_answer(const uint8_t *in, size_t len, char *text, size_t cap, size_t *used)
{
	size_t i = 0, o = 0, line = 0; /* line: where text's last line starts */

	if (cap == 0)
		return -1;
	while (i < len) {
		uint8_t c = in[i];

		if (c == IAC) {
			if (i + 1 >= len)
				return 0;
			if (in[i + 1] >= WILL && in[i + 1] <= DONT) {
				if (i + 2 >= len)
					return 0;
				i += 3;
				continue;
			}
			if (in[i + 1] == SB) {
				size_t j = i + 2;

				while (j + 1 < len && !(in[j] == IAC && in[j + 1] == SE))
					j++;
				if (j + 1 >= len)
					return 0;
				i = j + 2;
				continue;
			}
			if (in[i + 1] != IAC) {
				i += 2; /* a two-byte command (NOP, GA, ...) */
				continue;
			}
			i++; /* IAC IAC is one 0xff: not text we expect, kept */
		}
		i++;
		if (c == '\r' || c == '\0')
			continue;
		if (o + 1 >= cap)
			return -1;
		text[o++] = (char)c;
		if (c == '\n')
			line = o;
	}
	/* complete only when what came last is a prompt */
	if (!hss_osmo_vty_prompt(text + line, o - line))
		return 0;
	o = line;
	if (o > 0 && text[o - 1] == '\n')
		o--;
	text[o] = '\0';
	*used = len;
	return 1;
}

/* text without the echo of cmd, or NULL when it does not start with it. */
static const char *
hss_osmo_vty_output(const char *cmd, const char *text)
{
	size_t n = strlen(cmd);

	if (strncmp(text, cmd, n) != 0 || (text[n] != '\n' && text[n] != '\0'))
		return NULL;
	return text[n] == '\n' ? text + n + 1 : text + n;
}

/* 1 when out is exactly pre IMSI post and then, for a created
 * subscriber, only indented detail lines. */
static int
hss_osmo_vty_is(const char *out, const char *pre, const char *imsi, const char *post, int details)
{
	char line[160];
	size_t n;

	snprintf(line, sizeof(line), "%s%s%s", pre, imsi, post);
	n = strlen(line);
	if (strncmp(out, line, n) != 0)
		return 0;
	out += n;
	if (*out == '\0')
		return 1;
	if (*out != '\n' || !details)
		return 0;
	/* "    ID: 1", "    IMSI: ...", "    MSISDN: none" */
	for (out++; *out != '\0';) {
		if (strncmp(out, "    ", 4) != 0)
			return 0;
		out = strchr(out, '\n');
		if (out == NULL)
			break;
		out++;
	}
	return 1;
}

/* The IMSI in a subscriber command: its third word. */
static void
hss_osmo_vty_imsi(const char *cmd, char *imsi, size_t cap)
{
	const char *p = strncmp(cmd, "subscriber imsi ", 16) == 0 ? cmd + 16 : "";
	size_t n = strcspn(p, " ");

	if (n >= cap)
		n = cap - 1;
	memcpy(imsi, p, n);
	imsi[n] = '\0';
}

/* Replaces every case-insensitive occurrence of hex in s by "<secret>". */
static void
hss_osmo_vty_redact(char *s, size_t cap, const char *hex)
{
	size_t hn = strlen(hex);
	char *p;

	if (hn == 0)
		return;
	while ((p = strcasestr(s, hex)) != NULL) {
		size_t tail = strlen(p + hn);

		if ((size_t)(p - s) + 8 + tail + 1 > cap)
			tail = cap - (size_t)(p - s) - 8 - 1;
		memmove(p + 8, p + hn, tail);
		p[8 + tail] = '\0';
		memcpy(p, "<secret>", 8);
	}
}

static int
hss_osmo_vty_refuse(const char *what, const char *out, const hss_cred_t *cred, err_t *err)
{
	char line[200];
	size_t n = strcspn(out, "\n");

	while (*out == '\n')
		out++, n = strcspn(out, "\n");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	for (size_t i = 0; i < n; i++)
		line[i] = isprint((unsigned char)out[i]) ? out[i] : '?';
	line[n] = '\0';
	if (cred != NULL) {
		char hex[2 * QUALIFY_KEY_LEN + 1];

		hex_encode(cred->k, QUALIFY_KEY_LEN, hex);
		hss_osmo_vty_redact(line, sizeof(line), hex);
		hex_encode(cred->opc, QUALIFY_KEY_LEN, hex);
		hss_osmo_vty_redact(line, sizeof(line), hex);
		memset(hex, 0, sizeof(hex));
	}
	return err_set(err, STB_INTERNAL, "osmo-hlr refused %s: %s", what,
	               line[0] != '\0' ? line : "(an unexpected answer)");
}

int
hss_osmo_vty_check(int kind, const char *cmd, const char *text, const hss_cred_t *cred, err_t *err)
{
	const char *out = hss_osmo_vty_output(cmd, text);
	char imsi[QUALIFY_IMSI_MAX + 2];

	if (out == NULL)
		return err_set(err, STB_INTERNAL,
		               "osmo-hlr VTY: the answer does not echo the command");
	hss_osmo_vty_imsi(cmd, imsi, sizeof(imsi));
	switch (kind) {
	case HSS_OSMO_ENABLE:
		return *out == '\0' ? 0 : hss_osmo_vty_refuse("enable", out, NULL, err);
	case HSS_OSMO_UPDATE:
		return *out == '\0' ? 0 : hss_osmo_vty_refuse("the aud3g update", out, cred, err);
	case HSS_OSMO_CREATE:
		if (hss_osmo_vty_is(out, "% Created subscriber ", imsi, "", 1))
			return 1;
		if (hss_osmo_vty_is(out, "% Subscriber already exists for IMSI = ", imsi, "", 0))
			return 0;
		return hss_osmo_vty_refuse("the create", out, NULL, err);
	case HSS_OSMO_DELETE:
		if (hss_osmo_vty_is(out, "% Deleted subscriber for IMSI '", imsi, "'", 0))
			return 1;
		if (hss_osmo_vty_is(out, "% No subscriber for imsi = '", imsi, "'", 0))
			return 0;
		return hss_osmo_vty_refuse("the delete", out, NULL, err);
	}
	return err_set(err, STB_INTERNAL, "osmo-hlr VTY: unknown command kind");
}

int
hss_osmo_vty_split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon, *h = addr;
	size_t hn;
	char *end;
	long p;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		h = addr + 1;
		hn = (size_t)(close - h);
		colon = close + 1;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL ||
		    memchr(addr, ':', (size_t)(colon - addr)))
			return -1;
		hn = (size_t)(colon - addr);
	}
	p = strtol(colon + 1, &end, 10);
	if (hn == 0 || hn >= hcap || colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535 ||
	    !isdigit((unsigned char)colon[1]))
		return -1;
	memcpy(host, h, hn);
	host[hn] = '\0';
	snprintf(port, pcap, "%ld", p);
	return 0;
}
