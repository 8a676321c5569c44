/* profile: the issuing profiles of the config, checked and converted. */
#include <stdio.h>
#include <string.h>

#include "ca.h"
#include "proto.h"

const char *const profile_names[CA_NPROFILES] = {"stb-media", "device", "service"};

/* What a leaf may be used for: never certificate or CRL signing. */
static const char *const ku_names[] = {"digitalSignature", "nonRepudiation", "keyEncipherment",
                                       "dataEncipherment", "keyAgreement",   NULL};
static const char *const eku_names[] = {"serverAuth",      "clientAuth",   "codeSigning",
                                        "emailProtection", "timeStamping", NULL};

static int
name_ok(const char *const *names, const char *s, size_t len)
{
	for (; *names != NULL; names++)
		if (strlen(*names) == len && strncmp(*names, s, len) == 0)
			return 1;
	return 0;
}

/* A comma-separated list of known names, at least one; copied to out. */
static int
profile_list(const char *key, const char *v, const char *const *names, char *out, size_t cap,
             err_t *err)
{
	const char *p = v;
	int n;

	if (*v == '\0')
		return err_set(err, STB_BAD_REQUEST, "%s: must name at least one usage", key);
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (!name_ok(names, p, len))
			return err_set(err, STB_BAD_REQUEST, "%s: unknown usage '%.*s'", key,
			               (int)len, p);
		p += len;
		if (*p == ',')
			p++;
	}
	n = snprintf(out, cap, "%s", v);
	if (n < 0 || (size_t)n >= cap)
		return err_set(err, STB_BAD_REQUEST, "%s: too long", key);
	return 0;
}

static int
profile_roles(const char *key, const char *v, uint32_t *out, err_t *err)
{
	const char *p = v;

	*out = 0;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		uint32_t bit = proto_role_by_name(p, len);
		/* only roles CA_ISSUE admits can ever use a profile */
		if (bit == 0 || !(bit & proto_msgs[MSG_IX_CA_ISSUE].roles))
			return err_set(err, STB_BAD_REQUEST,
			               "%s: '%.*s' is not a role that may send CA_ISSUE", key,
			               (int)len, p);
		*out |= bit;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int
profile_check_url(const char *key, const char *url, err_t *err)
{
	if (*url == '\0')
		return 0;
	if (strncmp(url, "http://", 7) != 0 || strlen(url) >= CA_URL_MAX || url[7] == '\0')
		return err_set(err, STB_BAD_REQUEST, "%s: '%s' is not an http:// URL", key, url);
	for (const char *p = url; *p != '\0'; p++)
		if (*p <= ' ' || *p == ',' || *p > '~')
			return err_set(err, STB_BAD_REQUEST, "%s: URL holds a space or comma", key);
	return 0;
}

int
profile_load(const ca_conf_t *conf, ca_profile_t out[CA_NPROFILES], err_t *err)
{
	char key[96];

	for (int i = 0; i < CA_NPROFILES; i++) {
		const ca_prof_conf_t *pc = &conf->prof[i];
		ca_profile_t *p = &out[i];

		memset(p, 0, sizeof(*p));
		p->name = profile_names[i];
		p->kind = i;
		p->enabled = pc->enabled;
		p->max_validity_s = pc->max_validity_s;
		snprintf(key, sizeof(key), "profiles.%s.key_usage", p->name);
		if (profile_list(key, pc->key_usage, ku_names, p->key_usage, sizeof(p->key_usage),
		                 err) == -1)
			return -1;
		snprintf(key, sizeof(key), "profiles.%s.ext_key_usage", p->name);
		if (profile_list(key, pc->ext_key_usage, eku_names, p->ext_key_usage,
		                 sizeof(p->ext_key_usage), err) == -1)
			return -1;
		snprintf(key, sizeof(key), "profiles.%s.requesters", p->name);
		if (profile_roles(key, pc->requesters, &p->requesters, err) == -1)
			return -1;
	}
	if (profile_check_url("ocsp.url", conf->ocsp_url, err) == -1 ||
	    profile_check_url("crl.url", conf->crl_url, err) == -1)
		return -1;
	if (conf->crl_refresh_s >= conf->crl_validity_s)
		return err_set(err, STB_BAD_REQUEST,
		               "crl.refresh_s must be shorter than crl.validity_s");
	return 0;
}

const ca_profile_t *
profile_find(const ca_profile_t prof[CA_NPROFILES], const char *name)
{
	for (int i = 0; i < CA_NPROFILES; i++)
		if (strcmp(prof[i].name, name) == 0)
			return &prof[i];
	return NULL;
}
