/*
 * file_store.h - the file:// store (a local directory as an object store).
 */
#ifndef FALLBACKFS_FILE_STORE_H
#define FALLBACKFS_FILE_STORE_H

#include <stddef.h>

#include "store.h"

/* Open directory dir as a store (caller frees with store_destroy). On error
 * returns a negative errno with a sentence for the user in err. */
int file_store_create(const char *dir, struct store **out, char *err, size_t errlen);

#endif
