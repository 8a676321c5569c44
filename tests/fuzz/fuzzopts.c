/*
 * fuzzopts: AddressSanitizer defaults for the fuzz targets that allocate a
 * lot per input (cJSON trees, evhttp connections).  With the default 256 MB
 * quarantine every allocation lands on a fresh page and the 4 KB fill is
 * written each time: half the time went to page faults and memset.  A
 * 16 MB quarantine still catches a use after free within thousands of
 * inputs.  ASAN_OPTIONS overrides these.
 */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "quarantine_size_mb=16:max_malloc_fill_size=0";
}
