/*
 * s3_xml.h - parsers for every XML document the S3 client receives:
 * ListObjectsV2 listings, error bodies, multipart upload answers,
 * CopyObject results and STS credentials.
 *
 * This is only the parsing of bytes already received, with expat: no HTTP,
 * no retries, no mapping of S3 error codes to errno (the caller owns that
 * table). Every parser takes the whole body (the caller caps its size), is
 * reentrant, and returns 0 or a negative errno:
 *   -EIO     malformed XML, an unexpected document, a missing or repeated
 *            field, or a listing that names keys outside the asked prefix;
 *   -EFBIG   a field longer than its cap below, or too many entries;
 *   -ENOMEM  allocation failure;
 *   -EINVAL  a caller's argument is unusable (zero-sized buffers).
 * Documents with a DOCTYPE (and so any entity declaration) are refused:
 * S3 never sends one, and refusing it is the simplest defence against entity
 * expansion attacks. Element names are matched by local name, so a default
 * namespace or a prefix bound to any namespace is accepted.
 */
#ifndef FALLBACKFS_S3_XML_H
#define FALLBACKFS_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Longest full S3 key in bytes, after url-decoding (S3's own limit). */
#define S3_XML_KEY_MAX STORE_KEY_MAX
/* Longest continuation token, upload id or STS credential field, in bytes. */
#define S3_XML_TOKEN_MAX 4096
/* Most Contents plus CommonPrefixes accepted in one listing page. */
#define S3_XML_MAX_ENTRIES (STORE_LIST_MAX_KEYS + 1000)
/* Deepest element nesting accepted; S3 documents use four levels. */
#define S3_XML_MAX_DEPTH 16
/* Sizes (with the NUL) of the error fields in struct s3_xml_result. */
#define S3_XML_CODE_MAX 128
#define S3_XML_MESSAGE_MAX 512

/* Positive return of parse_complete/parse_copy: the 200 body was an <Error>. */
#define S3_XML_EMBEDDED_ERROR 1

/* What CompleteMultipartUpload or CopyObject answered. */
struct s3_xml_result {
	char etag[STORE_ETAG_MAX];   /* surrounding quotes removed */
	int64_t mtime_ns;            /* CopyObjectResult/LastModified; 0 otherwise */
	/* set only with S3_XML_EMBEDDED_ERROR: */
	char error_code[S3_XML_CODE_MAX];       /* e.g. "InternalError" */
	char error_message[S3_XML_MESSAGE_MAX]; /* truncated to fit; for logs */
};

/* Temporary credentials from STS; strings are heap copies owned by the
 * struct and wiped by s3_xml_sts_credentials_cleanup(). */
struct s3_xml_sts_credentials {
	char *access_key_id;
	char *secret_access_key; /* secret: never log */
	char *session_token;     /* secret: never log */
	int64_t expiration;      /* unix seconds */
};

/*
 * Parse a ListObjectsV2 ListBucketResult into *page, which must be zeroed on
 * entry and is left zeroed on error; on success the caller frees it with
 * store_list_page_cleanup(). Keys come back with prefix_strip (may be NULL
 * or "") removed from their front, url-decoded when the response says
 * <EncodingType>url</EncodingType>, Contents and CommonPrefixes merged into
 * one bytewise-sorted sequence. A key or prefix not starting with
 * prefix_strip, a duplicate, or IsTruncated true without a token is -EIO.
 * An object named exactly prefix_strip (a console "folder" marker) is
 * skipped. page->next_token is set only when IsTruncated is true.
 * *is_truncated_out (may be NULL) receives IsTruncated.
 */
int s3_xml_parse_list(const char *xml, size_t len, const char *prefix_strip,
		      struct store_list_page *page, bool *is_truncated_out);

/*
 * Parse an S3 <Error> body, or an STS <ErrorResponse><Error> body, into
 * code (must fit in code_len with its NUL, else -EFBIG) and message (may
 * be NULL; truncated to message_len at a character boundary, "" if absent).
 */
int s3_xml_parse_error(const char *xml, size_t len, char *code, size_t code_len,
		       char *message, size_t message_len);

/* Parse InitiateMultipartUploadResult/UploadId into upload_id (with its NUL
 * at most upload_id_len and S3_XML_TOKEN_MAX + 1 bytes, else -EFBIG). */
int s3_xml_parse_upload_id(const char *xml, size_t len, char *upload_id,
			   size_t upload_id_len);

/* Parse CompleteMultipartUploadResult (ETag; left "" when the server sent
 * an empty one, as Ceph RGW does) into *out; returns
 * S3_XML_EMBEDDED_ERROR with out->error_code set when S3 answered 200 with an
 * <Error> body, which the caller maps like an error status. */
int s3_xml_parse_complete(const char *xml, size_t len, struct s3_xml_result *out);

/* Parse CopyObjectResult (ETag and LastModified, both required) into *out;
 * S3_XML_EMBEDDED_ERROR as for s3_xml_parse_complete(). */
int s3_xml_parse_copy(const char *xml, size_t len, struct s3_xml_result *out);

/*
 * Parse an AssumeRoleWithWebIdentityResponse or AssumeRoleResponse into
 * *out (zeroed first; left zeroed on error). All four credential fields are
 * required. The caller always calls s3_xml_sts_credentials_cleanup().
 */
int s3_xml_parse_sts_credentials(const char *xml, size_t len,
				 struct s3_xml_sts_credentials *out);

/* Wipe and free the strings of *c and zero it; safe on a zeroed struct. */
void s3_xml_sts_credentials_cleanup(struct s3_xml_sts_credentials *c);

#endif
