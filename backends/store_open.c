/*
 * store_open.c - the one function that assembles a store stack from a URL.
 * Backends stay unaware of each other; wrappers are stacked here, bottom-up.
 */
#include <errno.h>
#include <stdio.h>

#include "file_store.h"
#include "s3_store.h"
#include "stats_store.h"
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
	case STORE_SCHEME_S3: {
		struct s3_store_config s3 = {
			.bucket = url.bucket,
			.prefix = url.prefix,
			.endpoint = cfg->endpoint,
			.region = cfg->region,
			.addressing = cfg->addressing,
			.ca_file = cfg->ca_file,
			.timeout_ms = cfg->timeout_ms,
			.read_only = cfg->read_only,
		};

		ret = s3_store_create(&s3, &s, err, errlen);
		break;
	}
	case STORE_SCHEME_GCS:
		snprintf(err, errlen, "%s:// stores are not supported by this build yet; "
			 "use file:///dir", store_url_scheme_name(url.scheme));
		ret = -ENOTSUP;
		break;
	}
	store_url_cleanup(&url);
	if (ret)
		return ret;
	/* Wrappers, bottom-up: the counting layer sees every request. */
	ret = stats_store_create(s, &s);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	*out = s;
	return 0;
}
