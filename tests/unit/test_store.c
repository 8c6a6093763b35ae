/* test_store.c - unit tests of store.c: key rules, list pages, error names. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "store.h"

int main(void)
{
	struct store_list_page page = { 0 };
	struct store_meta m = { .etag = "e1", .mtime_ns = 5, .size = 7 };
	char longkey[STORE_KEY_MAX + 10];

	CHECK_EQ(store_key_check("a"), 0);
	CHECK_EQ(store_key_check("3.6.0.0/config.json"), 0);
	CHECK_EQ(store_key_check("3.6.0.0/election/1704921469.123-30128332"), 0);
	CHECK_EQ(store_key_check("a/.hidden/..b"), 0);
	CHECK_EQ(store_key_check(""), -EINVAL);
	CHECK_EQ(store_key_check("/a"), -EINVAL);
	CHECK_EQ(store_key_check("a//b"), -EINVAL);
	CHECK_EQ(store_key_check("a/./b"), -EINVAL);
	CHECK_EQ(store_key_check("a/../b"), -EINVAL);
	CHECK_EQ(store_key_check(".."), -EINVAL);
	CHECK_EQ(store_key_check("a/.."), -EINVAL);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	CHECK_EQ(store_key_check(longkey), -EINVAL);

	for (int i = 0; i < 2500; i++) {
		char k[32];

		snprintf(k, sizeof(k), "k%05d", i);
		CHECK_EQ(store_list_page_add(&page, k, i % 3 == 0, &m), 0);
	}
	CHECK_EQ(page.count, 2500);
	CHECK(strcmp(page.entries[2499].key, "k02499") == 0);
	CHECK(page.entries[3].is_prefix && !page.entries[4].is_prefix);
	CHECK(strcmp(page.entries[4].meta.etag, "e1") == 0 && page.entries[4].meta.size == 7);
	CHECK(page.entries[3].meta.etag[0] == '\0');
	store_list_page_cleanup(&page);
	CHECK(page.count == 0 && page.entries == NULL);
	store_list_page_cleanup(&page);

	CHECK(strstr(store_strerror(-EEXIST), "create-only") != NULL);
	CHECK(strstr(store_strerror(-ESTALE), "if-match") != NULL);
	CHECK(store_strerror(-12345) != NULL);
	store_destroy(NULL);
	return check_exit("test_store");
}
