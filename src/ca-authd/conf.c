/* conf: ca-authd's configuration table (beyond every daemon's keys). */
#include <stddef.h>

#include "ca.h"

ca_conf_t conf_ca;

#define OFF(f) offsetof(ca_conf_t, f)
#define PROFILE_OPTS(ix, name, valid, ku, eku, who)                                                \
	{"profiles." name ".enabled",       CFG_BOOL, "true", 0, 0, NULL, OFF(prof[ix].enabled),   \
	 "issue under the " name " profile"},                                                      \
	    {"profiles." name ".max_validity_s",                                                   \
	     CFG_INT,                                                                              \
	     valid,                                                                                \
	     1,                                                                                    \
	     1576800000,                                                                           \
	     NULL,                                                                                 \
	     OFF(prof[ix].max_validity_s),                                                         \
	     "longest validity, seconds (VALIDITY_S may ask for less)"},                           \
	    {"profiles." name ".key_usage",                                                        \
	     CFG_STR,                                                                              \
	     ku,                                                                                   \
	     0,                                                                                    \
	     0,                                                                                    \
	     NULL,                                                                                 \
	     OFF(prof[ix].key_usage),                                                              \
	     "keyUsage bits, comma-separated (digitalSignature, keyAgreement, ...)"},              \
	    {"profiles." name ".ext_key_usage",                                                    \
	     CFG_STR,                                                                              \
	     eku,                                                                                  \
	     0,                                                                                    \
	     0,                                                                                    \
	     NULL,                                                                                 \
	     OFF(prof[ix].ext_key_usage),                                                          \
	     "extendedKeyUsage, comma-separated (clientAuth, ...)"},                               \
	{                                                                                          \
		"profiles." name ".requesters", CFG_STR, who, 0, 0, NULL,                          \
		    OFF(prof[ix].requesters),                                                      \
		    "roles that may ask for this profile (cert-proxyd, admin)"                     \
	}

const cfg_opt_t conf_opts[] = {
    {"ca.organization", CFG_STR, "stbcred", 0, 0, NULL, OFF(organization),
     "O of the CA names and of issued subjects"},
    {"ca.root_name", CFG_STR, "stbcred root CA", 0, 0, NULL, OFF(root_name),
     "CN of the root CA (ca-authd init)"},
    {"ca.issuing_name", CFG_STR, "stbcred issuing CA", 0, 0, NULL, OFF(issuing_name),
     "CN of the issuing CA (ca-authd init)"},
    {"ca.root_days", CFG_INT, "7300", 1, 36500, NULL, OFF(root_days),
     "root CA validity, days (ca-authd init)"},
    {"ca.issuing_days", CFG_INT, "3650", 1, 36500, NULL, OFF(issuing_days),
     "issuing CA validity, days (ca-authd init)"},
    {"ca.ocsp_days", CFG_INT, "365", 1, 3650, NULL, OFF(ocsp_days),
     "OCSP responder certificate validity, days (ca-authd init)"},
    {"issue.backdate_s", CFG_INT, "60", 0, 86400, NULL, OFF(backdate_s),
     "notBefore lies this far in the past, for clocks running behind"},
    {"ocsp.url", CFG_STR, "", 0, 0, NULL, OFF(ocsp_url),
     "OCSP URL put in issued certificates (AIA); empty: http://<http_listen>/ocsp"},
    {"ocsp.validity_s", CFG_INT, "3600", 60, 604800, NULL, OFF(ocsp_validity_s),
     "nextUpdate of OCSP answers, seconds after thisUpdate"},
    {"ocsp.cache_size", CFG_INT, "20000", 0, 10000000, NULL, OFF(ocsp_cache_size),
     "pre-signed answers kept for requests without a nonce (0: sign every answer)"},
    {"ocsp.cache_refresh_s", CFG_INT, "0", 0, 604800, NULL, OFF(ocsp_cache_refresh_s),
     "a cached answer this old is re-signed in the background; 0: half of ocsp.validity_s"},
    {"crl.url", CFG_STR, "", 0, 0, NULL, OFF(crl_url),
     "CRL distribution point in issued certificates; empty: http://<http_listen>/crl"},
    {"crl.validity_s", CFG_INT, "86400", 120, 2592000, NULL, OFF(crl_validity_s),
     "nextUpdate of the CRL, seconds after thisUpdate"},
    {"crl.refresh_s", CFG_INT, "3600", 60, 2592000, NULL, OFF(crl_refresh_s),
     "the CRL is also rebuilt this often (and on every revoke)"},
    {"keyinfo.freshness_s", CFG_INT, "300", 1, 86400, NULL, OFF(keyinfo_fresh_s),
     "CA_VERIFY_KEYINFO: key info older or newer than this is stale"},
    {"keyinfo.cache_size", CFG_INT, "10000", 16, 10000000, NULL, OFF(keyinfo_cache),
     "leaf certificates kept after their first check"},
    PROFILE_OPTS(CA_PROF_STB_MEDIA, "stb-media", "2592000", "digitalSignature", "clientAuth",
                 "cert-proxyd,admin"),
    PROFILE_OPTS(CA_PROF_DEVICE, "device", "315360000", "digitalSignature,keyAgreement",
                 "clientAuth", "admin"),
    PROFILE_OPTS(CA_PROF_SERVICE, "service", "71280000", "digitalSignature",
                 "serverAuth,clientAuth", "admin"),
};
_Static_assert(sizeof(conf_opts) / sizeof(conf_opts[0]) == CONF_NOPTS, "CONF_NOPTS");
