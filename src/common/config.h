/*
 * config: one declarative table of options per daemon (name, type, default,
 * bounds, help), loaded from a JSON file.  Nested objects give dotted names
 * ("tls.cert").  Unknown keys, wrong types and out-of-range values are errors
 * that name the key and the file.
 */
#ifndef STB_CONFIG_H
#define STB_CONFIG_H

#include <stddef.h>

#include "err.h"

struct cJSON;

/* CFG_SECRET: a string that may hold a secret (a password in a DSN), read
 * like CFG_STR and shown "(redacted)" by cfg_dump_json */
typedef enum { CFG_STR, CFG_INT, CFG_BOOL, CFG_SECRET } cfg_type_t;

typedef struct cfg_opt {
	const char *name;
	cfg_type_t type;
	const char *def;            /* default, as text ("" for empty string) */
	long long min, max;         /* CFG_INT bounds */
	const char *const *choices; /* CFG_STR: NULL-terminated allowed values */
	size_t off;                 /* offset in the target struct */
	const char *help;
} cfg_opt_t;

/* A table and the struct it fills: CFG_STR and CFG_SECRET -> char *, CFG_INT -> long long,
 * CFG_BOOL -> int.  The struct starts zeroed; loading again frees the
 * previous strings. */
typedef struct cfg_table {
	const cfg_opt_t *opts;
	size_t nopts;
	void *base;
} cfg_table_t;

/* Applies defaults, then the file when not NULL. */
int cfg_load(const cfg_table_t *tabs, size_t ntabs, const char *file, err_t *err);
/* Same, from a JSON text (name used in messages). */
int cfg_load_text(const cfg_table_t *tabs, size_t ntabs, const char *text, const char *name,
                  err_t *err);
/* 1 when an earlier member of obj has item's key (JSON allows it; we do not). */
int cfg_json_dup_key(const struct cJSON *obj, const struct cJSON *item);
/* Frees the strings of a loaded table. */
void cfg_free(const cfg_table_t *tabs, size_t ntabs);
/* Effective configuration as a JSON object (malloc'd text); a CFG_SECRET
 * that is set reads "(redacted)". */
char *cfg_dump_json(const cfg_table_t *tabs, size_t ntabs);
/* Prints every option with its default and help (for --help-config). */
void cfg_print_help(const cfg_table_t *tabs, size_t ntabs);

#define CFG_STR_AT(base, opt)  (*(char **)((char *)(base) + (opt)->off))
#define CFG_INT_AT(base, opt)  (*(long long *)((char *)(base) + (opt)->off))
#define CFG_BOOL_AT(base, opt) (*(int *)((char *)(base) + (opt)->off))

#endif
