/*
 * check.h - the smallest test harness: CHECK records a failure with its
 * line and goes on, REQUIRE stops the test there; check_exit() turns the
 * count into the exit status.
 */
#ifndef FALLBACKFS_CHECK_H
#define FALLBACKFS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		check_count++;                                                        \
		if (!(cond)) {                                                        \
			check_failures++;                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                               \
		}                                                                     \
	} while (0)

#define CHECK_EQ(a, b)                                                                \
	do {                                                                          \
		long long a_ = (long long)(a), b_ = (long long)(b);                   \
		check_count++;                                                        \
		if (a_ != b_) {                                                       \
			check_failures++;                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, a_, b_);                  \
		}                                                                     \
	} while (0)

/* For tests where going on after a failure makes no sense (servers, fds). */
#define REQUIRE(cond)                                                                 \
	do {                                                                          \
		check_count++;                                                        \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, \
				#cond);                                               \
			exit(1);                                                      \
		}                                                                     \
	} while (0)

static inline int check_exit(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
	return check_failures ? 1 : 0;
}

#endif
