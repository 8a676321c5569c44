#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_FILE_MAX (1024 * 1024)
#define CFG_NAME_MAX 128

/* configuration strings may hold secrets (store.dsn's password): wiped when freed */
static void
cfg_str_free(char **s)
{
	if (*s != NULL) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static void
cfg_json_wipe(cJSON *n)
{
	for (; n != NULL; n = n->next) {
		if (n->valuestring != NULL)
			OPENSSL_cleanse(n->valuestring, strlen(n->valuestring));
		cfg_json_wipe(n->child);
	}
}

static const cfg_opt_t *
cfg_find(const cfg_table_t *tabs, size_t ntabs, const char *name, void **base)
{
	for (size_t t = 0; t < ntabs; t++)
		for (size_t i = 0; i < tabs[t].nopts; i++)
			if (strcmp(tabs[t].opts[i].name, name) == 0) {
				*base = tabs[t].base;
				return &tabs[t].opts[i];
			}
	return NULL;
}

static int
cfg_has_prefix(const cfg_table_t *tabs, size_t ntabs, const char *prefix)
{
	size_t l = strlen(prefix);

	for (size_t t = 0; t < ntabs; t++)
		for (size_t i = 0; i < tabs[t].nopts; i++)
			if (strncmp(tabs[t].opts[i].name, prefix, l) == 0 &&
			    tabs[t].opts[i].name[l] == '.')
				return 1;
	return 0;
}

static int
cfg_set_str(const cfg_opt_t *o, void *base, const char *v, const char *src, err_t *err)
{
	char *copy;

	if (o->choices != NULL) {
		const char *const *c;
		for (c = o->choices; *c != NULL; c++)
			if (strcmp(*c, v) == 0)
				break;
		if (*c == NULL) {
			char allowed[256];
			size_t len = 0;
			allowed[0] = '\0';
			for (c = o->choices; *c != NULL && len < sizeof(allowed); c++) {
				int n = snprintf(allowed + len, sizeof(allowed) - len, "%s%s",
				                 c == o->choices ? "" : ", ", *c);
				if (n < 0)
					break;
				len += (size_t)n;
			}
			return err_set(err, STB_BAD_REQUEST,
			               "%s: %s: \"%s\" is not one of the allowed values (%s)", src,
			               o->name, v, allowed);
		}
	}
	if ((copy = strdup(v)) == NULL)
		return err_set(err, STB_INTERNAL, "%s: %s: out of memory", src, o->name);
	cfg_str_free(&CFG_STR_AT(base, o));
	CFG_STR_AT(base, o) = copy;
	return 0;
}

static int
cfg_set_int(const cfg_opt_t *o, void *base, long long v, const char *src, err_t *err)
{
	if (v < o->min || v > o->max)
		return err_set(err, STB_BAD_REQUEST, "%s: %s: %lld is outside %lld..%lld", src,
		               o->name, v, o->min, o->max);
	CFG_INT_AT(base, o) = v;
	return 0;
}

static int
cfg_defaults(const cfg_table_t *tabs, size_t ntabs, err_t *err)
{
	for (size_t t = 0; t < ntabs; t++)
		for (size_t i = 0; i < tabs[t].nopts; i++) {
			const cfg_opt_t *o = &tabs[t].opts[i];
			void *base = tabs[t].base;
			char *end;
			long long v;

			switch (o->type) {
			case CFG_STR:
			case CFG_SECRET:
				cfg_str_free(&CFG_STR_AT(base, o)); /* a reload replaces them */
				if (cfg_set_str(o, base, o->def, "default", err) == -1)
					return -1;
				break;
			case CFG_INT:
				errno = 0;
				v = strtoll(o->def, &end, 10);
				if (errno != 0 || *end != '\0')
					return err_set(err, STB_INTERNAL,
					               "default of %s is not an integer", o->name);
				if (cfg_set_int(o, base, v, "default", err) == -1)
					return -1;
				break;
			case CFG_BOOL:
				CFG_BOOL_AT(base, o) = strcmp(o->def, "true") == 0;
				break;
			}
		}
	return 0;
}

/* JSON allows a key twice and cJSON keeps both; a config must not (which
 * one wins would be the parser's choice, not the operator's). */
int
cfg_json_dup_key(const cJSON *obj, const cJSON *item)
{
	for (const cJSON *p = obj->child; p != NULL && p != item; p = p->next)
		if (p->string != NULL && item->string != NULL &&
		    strcmp(p->string, item->string) == 0)
			return 1;
	return 0;
}

static int
cfg_walk(const cfg_table_t *tabs, size_t ntabs, const cJSON *obj, const char *prefix,
         const char *src, err_t *err)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, obj)
	{
		char name[CFG_NAME_MAX];
		const cfg_opt_t *o;
		void *base;
		int n;

		n = snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", it->string);
		if (n < 0 || (size_t)n >= sizeof(name))
			return err_set(err, STB_BAD_REQUEST, "%s: key name too long", src);
		if (cfg_json_dup_key(obj, it))
			return err_set(err, STB_BAD_REQUEST, "%s: key '%s' appears twice", src,
			               name);
		if (cJSON_IsObject(it)) {
			if (!cfg_has_prefix(tabs, ntabs, name))
				return err_set(err, STB_BAD_REQUEST, "%s: unknown section '%s'",
				               src, name);
			if (cfg_walk(tabs, ntabs, it, name, src, err) == -1)
				return -1;
			continue;
		}
		if ((o = cfg_find(tabs, ntabs, name, &base)) == NULL)
			return err_set(err, STB_BAD_REQUEST, "%s: unknown key '%s'", src, name);
		switch (o->type) {
		case CFG_STR:
		case CFG_SECRET:
			if (!cJSON_IsString(it))
				return err_set(err, STB_BAD_REQUEST, "%s: %s must be a string", src,
				               name);
			if (cfg_set_str(o, base, it->valuestring, src, err) == -1)
				return -1;
			break;
		case CFG_INT:
			/* range first: casting an out-of-range double is undefined */
			if (!cJSON_IsNumber(it) || it->valuedouble < -9.2e18 ||
			    it->valuedouble > 9.2e18 ||
			    it->valuedouble != (double)(long long)it->valuedouble)
				return err_set(err, STB_BAD_REQUEST, "%s: %s must be an integer",
				               src, name);
			if (cfg_set_int(o, base, (long long)it->valuedouble, src, err) == -1)
				return -1;
			break;
		case CFG_BOOL:
			if (!cJSON_IsBool(it))
				return err_set(err, STB_BAD_REQUEST, "%s: %s must be true or false",
				               src, name);
			CFG_BOOL_AT(base, o) = cJSON_IsTrue(it);
			break;
		}
	}
	return 0;
}

int
cfg_load_text(const cfg_table_t *tabs, size_t ntabs, const char *text, const char *name, err_t *err)
{
	cJSON *root;
	int rc;

	if (cfg_defaults(tabs, ntabs, err) == -1)
		return -1;
	if (text == NULL)
		return 0;
	/* the whole text is one JSON value: nothing but blanks may follow it */
	if ((root = cJSON_ParseWithOpts(text, NULL, 1)) == NULL) {
		const char *at = cJSON_GetErrorPtr();
		long line = 1;
		for (const char *p = text; at != NULL && p < at && *p; p++)
			line += *p == '\n';
		return err_set(err, STB_BAD_REQUEST, "%s:%ld: JSON syntax error", name, line);
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(err, STB_BAD_REQUEST, "%s: top level must be an object", name);
	}
	rc = cfg_walk(tabs, ntabs, root, "", name, err);
	cfg_json_wipe(root);
	cJSON_Delete(root);
	return rc;
}

int
cfg_load(const cfg_table_t *tabs, size_t ntabs, const char *file, err_t *err)
{
	FILE *f;
	char *text;
	size_t n;
	int rc;

	if (file == NULL)
		return cfg_load_text(tabs, ntabs, NULL, "default", err);
	if ((f = fopen(file, "r")) == NULL) {
		int e = errno; /* cfg_defaults may change it */
		cfg_defaults(tabs, ntabs, err);
		return err_set(err, STB_NOT_FOUND, "%s: %s", file, strerror(e));
	}
	setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the text to leave behind */
	if ((text = malloc(CFG_FILE_MAX + 1)) == NULL) {
		fclose(f);
		return err_set(err, STB_INTERNAL, "%s: out of memory", file);
	}
	n = fread(text, 1, CFG_FILE_MAX + 1, f);
	fclose(f);
	if (n > CFG_FILE_MAX) {
		OPENSSL_cleanse(text, n);
		free(text);
		cfg_defaults(tabs, ntabs, err);
		return err_set(err, STB_TOO_LARGE, "%s: larger than %d bytes", file, CFG_FILE_MAX);
	}
	text[n] = '\0';
	rc = cfg_load_text(tabs, ntabs, text, file, err);
	OPENSSL_cleanse(text, n);
	free(text);
	return rc;
}

void
cfg_free(const cfg_table_t *tabs, size_t ntabs)
{
	for (size_t t = 0; t < ntabs; t++)
		for (size_t i = 0; i < tabs[t].nopts; i++)
			if (tabs[t].opts[i].type == CFG_STR || tabs[t].opts[i].type == CFG_SECRET)
				cfg_str_free(&CFG_STR_AT(tabs[t].base, &tabs[t].opts[i]));
}

static cJSON *
cfg_section(cJSON *root, const char *name, const char **leaf)
{
	char part[CFG_NAME_MAX];
	const char *dot;
	cJSON *node = root;

	while ((dot = strchr(name, '.')) != NULL) {
		size_t l = (size_t)(dot - name);
		cJSON *child;
		if (l >= sizeof(part))
			return NULL;
		memcpy(part, name, l);
		part[l] = '\0';
		if ((child = cJSON_GetObjectItemCaseSensitive(node, part)) == NULL) {
			child = cJSON_AddObjectToObject(node, part);
			if (child == NULL)
				return NULL;
		}
		node = child;
		name = dot + 1;
	}
	*leaf = name;
	return node;
}

char *
cfg_dump_json(const cfg_table_t *tabs, size_t ntabs)
{
	cJSON *root = cJSON_CreateObject();
	char *out;

	if (root == NULL)
		return NULL;
	for (size_t t = 0; t < ntabs; t++)
		for (size_t i = 0; i < tabs[t].nopts; i++) {
			const cfg_opt_t *o = &tabs[t].opts[i];
			const char *leaf;
			cJSON *sec = cfg_section(root, o->name, &leaf);
			if (sec == NULL)
				continue;
			switch (o->type) {
			case CFG_STR:
				cJSON_AddStringToObject(sec, leaf, CFG_STR_AT(tabs[t].base, o));
				break;
			case CFG_SECRET:
				cJSON_AddStringToObject(
				    sec, leaf,
				    *CFG_STR_AT(tabs[t].base, o) != '\0' ? "(redacted)" : "");
				break;
				break;
			case CFG_INT:
				cJSON_AddNumberToObject(sec, leaf,
				                        (double)CFG_INT_AT(tabs[t].base, o));
				break;
			case CFG_BOOL:
				cJSON_AddBoolToObject(sec, leaf, CFG_BOOL_AT(tabs[t].base, o));
				break;
			}
		}
	out = cJSON_Print(root);
	cJSON_Delete(root);
	return out;
}

void
cfg_print_help(const cfg_table_t *tabs, size_t ntabs)
{
	for (size_t t = 0; t < ntabs; t++)
		for (size_t i = 0; i < tabs[t].nopts; i++) {
			const cfg_opt_t *o = &tabs[t].opts[i];
			static const char *const tn[] = {"string", "integer", "boolean", "string"};
			const char *q = o->type == CFG_STR || o->type == CFG_SECRET ? "\"" : "";
			printf("  %-28s %-8s default %s%s%s\n      %s\n", o->name, tn[o->type], q,
			       o->def, q, o->help);
		}
}
