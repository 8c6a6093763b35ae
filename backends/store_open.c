/*
 * store_open.c - the one function that assembles a store stack from a URL.
 * Backends stay unaware of each other; wrappers are stacked here, bottom-up.
 */
#include <errno.h>
#include <stdio.h>

#include "file_store.h"
#include "store_open.h"
#include "store_url.h"

/* Parse the URL, create the backend, stack the wrappers. */
int store_open(const struct store_config *cfg, struct store **out, char *err, size_t errlen)
{
	struct store_url url;
	struct store *s = NULL;
	int ret;

	*out = NULL;
	ret = store_url_parse(cfg->url, &url, err, errlen);
	if (ret)
		return ret;
	switch (url.scheme) {
	case STORE_SCHEME_FILE:
		ret = file_store_create(url.path, &s, err, errlen);
		break;
	case STORE_SCHEME_S3:
	case STORE_SCHEME_GCS:
		snprintf(err, errlen, "%s:// stores are not supported by this build yet; "
			 "use file:///dir", store_url_scheme_name(url.scheme));
		ret = -ENOTSUP;
		break;
	}
	store_url_cleanup(&url);
	if (ret)
		return ret;
	*out = s;
	return 0;
}
