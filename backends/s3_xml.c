/*
 * s3_xml.c - expat-based parsers for the XML bodies the S3 client receives
 * (see s3_xml.h for the contract).
 *
 * One small engine drives expat for every document: it tracks the path of
 * local element names from the root, matches it against a per-document table
 * of rules, collects the text of leaf elements into one fixed buffer (so a
 * field can never grow past its cap) and hands each finished field to the
 * document's callback. The document code then only validates and converts.
 * This is not a general XML library: mixed content, attributes, comments and
 * processing instructions are ignored, and any DOCTYPE is refused.
 *
 * Expat is given an allocator that wipes every block it frees, because the
 * STS document carries secrets and expat copies the input into its buffers.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>
#include <openssl/crypto.h>

#include "s3_xml.h"

/* Separator expat puts between namespace URI and local name; XML 1.0 cannot
 * contain U+0001, so it never appears inside a URI. */
#define NS_SEP '\x01'
/* Room for the joined path of local names; deeper or longer paths never
 * match a rule, which are all short. */
#define PATH_ROOM 256
/* Largest leaf text: a url-encoded key is at most three times its bytes. */
#define TEXT_MAX (3 * S3_XML_KEY_MAX > S3_XML_TOKEN_MAX ? 3 * S3_XML_KEY_MAX : S3_XML_TOKEN_MAX)
/* Ids at or above this mark a document root rather than a field. */
#define ROOT_ID 1000

struct rule {
	const char *path; /* "/Root/Child/Leaf", local names */
	int id;
	bool leaf;        /* collect text; else a container reported open/close */
	size_t cap;       /* leaf: most bytes of text accepted (<= TEXT_MAX) */
	bool truncate;    /* leaf: keep the first cap bytes instead of -EFBIG */
};

struct engine {
	XML_Parser xp;
	const struct rule *rules;
	size_t nrules;
	int (*on_open)(struct engine *e, int id);
	int (*on_text)(struct engine *e, int id, const char *text, size_t len);
	int (*on_close)(struct engine *e, int id);
	void *user;
	int err;              /* first failure; the parser is stopped */
	int root_id;          /* id of the matched root rule, -1 before */
	unsigned depth;
	unsigned overflow_at; /* depth whose name did not fit in path, 0 if none */
	size_t plen[S3_XML_MAX_DEPTH + 1];
	char path[PATH_ROOM];
	const struct rule *leaf; /* leaf being collected, NULL if none */
	bool text_full;          /* a truncating leaf reached its cap */
	size_t text_len;
	char text[TEXT_MAX + 1];
};

/* Header in front of each block expat allocates, so free knows what to wipe. */
union mem_hdr {
	max_align_t align;
	size_t size;
};

/* Allocate for expat, remembering the size for the wipe on free. */
static void *wipe_malloc(size_t n)
{
	union mem_hdr *h;

	if (n > SIZE_MAX - sizeof(*h))
		return NULL;
	h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->size = n;
	return h + 1;
}

/* Free for expat, wiping first: expat's buffers may hold STS secrets. */
static void wipe_free(void *p)
{
	union mem_hdr *h;

	if (!p)
		return;
	h = (union mem_hdr *)p - 1;
	explicit_bzero(p, h->size);
	free(h);
}

/* Realloc for expat by copying, since libc realloc may leave the old block
 * unwiped. */
static void *wipe_realloc(void *p, size_t n)
{
	union mem_hdr *h;
	void *q;

	if (!p)
		return wipe_malloc(n);
	h = (union mem_hdr *)p - 1;
	q = wipe_malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, h->size < n ? h->size : n);
	wipe_free(p);
	return q;
}

static const XML_Memory_Handling_Suite wipe_suite = {
	wipe_malloc, wipe_realloc, wipe_free,
};

/* Record the first failure and stop expat, so no further callback acts. */
static void fail(struct engine *e, int err)
{
	if (!e->err) {
		e->err = err;
		XML_StopParser(e->xp, XML_FALSE);
	}
}

/* The rule for the current path; NULL when none or the path overflowed. */
static const struct rule *find_rule(const struct engine *e)
{
	if (e->overflow_at)
		return NULL;
	for (size_t i = 0; i < e->nrules; i++)
		if (strcmp(e->rules[i].path, e->path) == 0)
			return &e->rules[i];
	return NULL;
}

/* Expat start-element callback: extend the path, start collecting leaves. */
static void on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct engine *e = ud;
	const char *local = strrchr(name, NS_SEP);
	const struct rule *r;
	size_t cur, n;
	int rc;

	(void)atts;
	if (e->err)
		return;
	if (e->leaf || e->depth == S3_XML_MAX_DEPTH) {
		/* an element inside a value, or nesting no S3 document has */
		fail(e, -EIO);
		return;
	}
	local = local ? local + 1 : name;
	n = strlen(local);
	cur = e->plen[e->depth];
	e->depth++;
	if (e->overflow_at || n >= sizeof(e->path) - 1 - cur) {
		if (!e->overflow_at)
			e->overflow_at = e->depth;
		e->plen[e->depth] = cur;
	} else {
		e->path[cur] = '/';
		memcpy(e->path + cur + 1, local, n + 1);
		e->plen[e->depth] = cur + 1 + n;
	}
	r = find_rule(e);
	if (e->depth == 1) {
		if (!r || r->leaf) {
			fail(e, -EIO); /* not the document we asked for */
			return;
		}
		e->root_id = r->id;
	}
	if (!r)
		return;
	if (r->leaf) {
		e->leaf = r;
		e->text_len = 0;
		e->text_full = false;
		return;
	}
	if (e->on_open) {
		rc = e->on_open(e, r->id);
		if (rc)
			fail(e, rc);
	}
}

/* Expat end-element callback: deliver a finished leaf or close a container. */
static void on_end(void *ud, const XML_Char *name)
{
	struct engine *e = ud;
	const struct rule *r;
	int rc = 0;

	(void)name;
	if (e->err)
		return;
	if (e->leaf) {
		e->text[e->text_len] = '\0';
		r = e->leaf;
		e->leaf = NULL;
		rc = e->on_text(e, r->id, e->text, e->text_len);
	} else {
		r = find_rule(e);
		if (r && e->on_close)
			rc = e->on_close(e, r->id);
	}
	if (rc) {
		fail(e, rc);
		return;
	}
	if (e->overflow_at == e->depth)
		e->overflow_at = 0;
	e->depth--;
	e->path[e->plen[e->depth]] = '\0';
}

/* Length of the longest prefix of s[0..max) that ends on a UTF-8 character
 * boundary, so a truncated message stays valid text. */
static size_t utf8_cut(const char *s, size_t max)
{
	size_t n = max;

	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* Expat character-data callback: append to the current leaf within its cap. */
static void on_chars(void *ud, const XML_Char *s, int len)
{
	struct engine *e = ud;
	size_t room;

	if (e->err || !e->leaf || e->text_full || len <= 0)
		return;
	room = e->leaf->cap - e->text_len;
	if ((size_t)len <= room) {
		memcpy(e->text + e->text_len, s, (size_t)len);
		e->text_len += (size_t)len;
		return;
	}
	if (!e->leaf->truncate) {
		fail(e, -EFBIG);
		return;
	}
	/* s[room] exists since len > room, so the cut can look at it */
	room = utf8_cut(s, room);
	memcpy(e->text + e->text_len, s, room);
	e->text_len += room;
	e->text_full = true; /* the rest of this value is dropped */
}

/* Expat DOCTYPE callback: S3 never sends one, and entities come with it. */
static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
		       const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	fail(ud, -EIO);
}

/* Expat entity-declaration callback: refused, the billion-laughs defence
 * should the DOCTYPE check ever be bypassed. */
static void on_entity_decl(void *ud, const XML_Char *name, int is_param,
			   const XML_Char *value, int value_len, const XML_Char *base,
			   const XML_Char *sysid, const XML_Char *pubid,
			   const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	fail(ud, -EIO);
}

/* Run expat over the whole document with e's rules; 0 or a negative errno. */
static int engine_run(struct engine *e, const char *xml, size_t len)
{
	int rc = 0;

	e->root_id = -1;
	e->xp = NULL;
	if (!xml || len == 0) {
		rc = -EIO;
		goto out;
	}
	if (len > INT_MAX) {
		rc = -EFBIG; /* XML_Parse takes an int */
		goto out;
	}
	e->xp = XML_ParserCreate_MM(NULL, &wipe_suite, (XML_Char[]){ NS_SEP, '\0' });
	if (!e->xp) {
		rc = -ENOMEM;
		goto out;
	}
	XML_SetUserData(e->xp, e);
	XML_SetElementHandler(e->xp, on_start, on_end);
	XML_SetCharacterDataHandler(e->xp, on_chars);
	XML_SetStartDoctypeDeclHandler(e->xp, on_doctype);
	XML_SetEntityDeclHandler(e->xp, on_entity_decl);
	XML_SetParamEntityParsing(e->xp, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_Parse(e->xp, xml, (int)len, XML_TRUE) != XML_STATUS_OK) {
		if (e->err)
			rc = e->err;
		else if (XML_GetErrorCode(e->xp) == XML_ERROR_NO_MEMORY)
			rc = -ENOMEM;
		else
			rc = -EIO;
		goto out;
	}
	rc = e->err;
	if (!rc && e->root_id < 0)
		rc = -EIO;
out:
	if (e->xp)
		XML_ParserFree(e->xp);
	e->xp = NULL;
	explicit_bzero(e->text, sizeof(e->text));
	return rc;
}

/* Whether c is XML whitespace, which scalar values may be padded with. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Narrow [*s, *s + *len) to drop surrounding whitespace, for scalars only:
 * keys and tokens keep every byte. */
static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

/* Parse exactly n decimal digits at s into *out; false on a non-digit. */
static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
 * days_from_civil), so no time zone or libc state is involved. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Parse an ISO-8601 timestamp (2024-01-10T21:17:49.123Z, +hh:mm, or no zone
 * meaning UTC) into seconds and nanoseconds since the epoch; -EIO if
 * malformed. */
static int parse_time(const char *s, size_t len, int64_t *sec_out, long *nsec_out)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	long nsec = 0;
	size_t i = 19;

	trim(&s, &len);
	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -EIO;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
		return -EIO;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -EIO;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -EIO;
	if (i < len && s[i] == '.') {
		long scale = 100000000;
		size_t start = ++i;

		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			nsec += (s[i] - '0') * scale;
			scale /= 10;
		}
		if (i == start)
			return -EIO;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '+' ? 1 : -1;
		i++;
		if (len - i == 5 && s[i + 2] == ':' && digits(s + i, 2, &oh) &&
		    digits(s + i + 3, 2, &om))
			i += 5;
		else if (len - i == 4 && digits(s + i, 2, &oh) && digits(s + i + 2, 2, &om))
			i += 4;
		else
			return -EIO;
		if (oh > 23 || om > 59)
			return -EIO;
	}
	/* no zone at all (AWS's own CopyObject example): S3 times are UTC */
	if (i != len)
		return -EIO;
	*sec_out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
		   sign * (oh * 3600 + om * 60);
	*nsec_out = nsec;
	return 0;
}

/* parse_time() into nanoseconds since the epoch; -EIO outside int64. */
static int parse_time_ns(const char *s, size_t len, int64_t *out)
{
	int64_t sec;
	long nsec;
	int rc = parse_time(s, len, &sec, &nsec);

	if (rc)
		return rc;
	if (sec > INT64_MAX / 1000000000 - 1 || sec < INT64_MIN / 1000000000 + 1)
		return -EIO;
	*out = sec * 1000000000 + nsec;
	return 0;
}

/* Parse an unsigned decimal object size; -EIO on junk or overflow. */
static int parse_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	trim(&s, &len);
	if (len == 0)
		return -EIO;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EIO;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -EIO;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Copy an ETag into dst[STORE_ETAG_MAX] without its surrounding quotes
 * (S3 sends them, sometimes as &quot;); empty is -EIO, too long -EFBIG. */
static int copy_etag(char *dst, const char *s, size_t len)
{
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s++;
		len -= 2;
	}
	if (len == 0)
		return -EIO;
	if (len >= STORE_ETAG_MAX)
		return -EFBIG;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* Decode S3's encoding-type=url in place (%XX, and '+' for a space as S3
 * writes it); -EIO on a bad escape or an encoded NUL. */
static int url_decode(char *s, size_t *len)
{
	size_t o = 0;

	for (size_t i = 0; i < *len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (*len - i < 3)
				return -EIO;
			hi = OPENSSL_hexchar2int((unsigned char)s[i + 1]);
			lo = OPENSSL_hexchar2int((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EIO;
			s[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+') {
			s[o++] = ' ';
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	*len = o;
	return 0;
}

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF): keys are UTF-8 by the store contract, and decoded
 * bytes are no longer vouched for by expat. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		unsigned cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

/* ---- ListObjectsV2 ---- */

enum {
	L_TRUNC, L_NEXT, L_ENC, L_CONTENTS, L_KEY, L_MTIME, L_ETAG, L_SIZE,
	L_CP_PREFIX, L_ROOT = ROOT_ID,
};

/* Bits of list_entry.have: which Contents fields were seen. */
enum { HAVE_KEY = 1, HAVE_MTIME = 2, HAVE_ETAG = 4, HAVE_SIZE = 8 };

struct list_entry {
	char *key;       /* as received (maybe url-encoded), then decoded */
	size_t key_len;
	const char *rel; /* key with the prefix stripped, set by list_finish */
	bool is_prefix;
	unsigned have;
	size_t seq;      /* arrival order, for a stable sort */
	struct store_meta meta;
};

struct list_state {
	struct list_entry *v;
	size_t n, cap;
	bool in_contents;
	bool truncated, have_truncated, have_enc, url;
	char *next_token;
};

static const struct rule list_rules[] = {
	{ "/ListBucketResult", L_ROOT, false, 0, false },
	{ "/ListBucketResult/IsTruncated", L_TRUNC, true, 16, false },
	{ "/ListBucketResult/NextContinuationToken", L_NEXT, true, S3_XML_TOKEN_MAX, false },
	{ "/ListBucketResult/EncodingType", L_ENC, true, 16, false },
	{ "/ListBucketResult/Contents", L_CONTENTS, false, 0, false },
	{ "/ListBucketResult/Contents/Key", L_KEY, true, 3 * S3_XML_KEY_MAX, false },
	{ "/ListBucketResult/Contents/LastModified", L_MTIME, true, 64, false },
	{ "/ListBucketResult/Contents/ETag", L_ETAG, true, STORE_ETAG_MAX + 1, false },
	{ "/ListBucketResult/Contents/Size", L_SIZE, true, 32, false },
	{ "/ListBucketResult/CommonPrefixes/Prefix", L_CP_PREFIX, true, 3 * S3_XML_KEY_MAX,
	  false },
};

/* Append a zeroed entry, refusing past S3_XML_MAX_ENTRIES. */
static int list_push(struct list_state *ls, struct list_entry **out)
{
	if (ls->n == S3_XML_MAX_ENTRIES)
		return -EFBIG;
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 64;
		struct list_entry *v;

		if (cap > S3_XML_MAX_ENTRIES)
			cap = S3_XML_MAX_ENTRIES;
		v = realloc(ls->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ls->v = v;
		ls->cap = cap;
	}
	*out = &ls->v[ls->n];
	memset(*out, 0, sizeof(**out));
	(*out)->seq = ls->n++;
	return 0;
}

/* Store a key or prefix text into an entry (a copy, since the engine's
 * buffer is reused). */
static int set_key(struct list_entry *le, const char *text, size_t len)
{
	le->key = malloc(len + 1);
	if (!le->key)
		return -ENOMEM;
	memcpy(le->key, text, len + 1);
	le->key_len = len;
	return 0;
}

/* A <Contents> opens: start a new object entry. */
static int list_open(struct engine *e, int id)
{
	struct list_state *ls = e->user;
	struct list_entry *le;

	if (id != L_CONTENTS)
		return 0;
	ls->in_contents = true;
	return list_push(ls, &le);
}

/* A <Contents> closes: every field we rely on must have been there. */
static int list_close(struct engine *e, int id)
{
	struct list_state *ls = e->user;

	if (id != L_CONTENTS)
		return 0;
	ls->in_contents = false;
	if (ls->v[ls->n - 1].have != (HAVE_KEY | HAVE_MTIME | HAVE_ETAG | HAVE_SIZE))
		return -EIO;
	return 0;
}

/* One field of the listing: store it, refusing repeats. */
static int list_text(struct engine *e, int id, const char *text, size_t len)
{
	struct list_state *ls = e->user;
	struct list_entry *le = ls->n ? &ls->v[ls->n - 1] : NULL;
	const char *s = text;
	size_t n = len;
	unsigned bit = 0;
	int rc;

	switch (id) {
	case L_TRUNC:
		if (ls->have_truncated)
			return -EIO;
		trim(&s, &n);
		if (n == 4 && strncasecmp(s, "true", 4) == 0)
			ls->truncated = true;
		else if (n == 5 && strncasecmp(s, "false", 5) == 0)
			ls->truncated = false;
		else
			return -EIO;
		ls->have_truncated = true;
		return 0;
	case L_NEXT:
		if (ls->next_token)
			return -EIO;
		ls->next_token = strdup(text);
		return ls->next_token ? 0 : -ENOMEM;
	case L_ENC:
		if (ls->have_enc)
			return -EIO;
		trim(&s, &n);
		/* any other encoding would leave keys we cannot interpret */
		if (n != 3 || strncasecmp(s, "url", 3) != 0)
			return -EIO;
		ls->have_enc = ls->url = true;
		return 0;
	case L_CP_PREFIX:
		rc = list_push(ls, &le);
		if (rc)
			return rc;
		le->is_prefix = true;
		return set_key(le, text, len);
	case L_KEY:
		bit = HAVE_KEY;
		break;
	case L_MTIME:
		bit = HAVE_MTIME;
		break;
	case L_ETAG:
		bit = HAVE_ETAG;
		break;
	case L_SIZE:
		bit = HAVE_SIZE;
		break;
	default:
		return -EIO;
	}
	/* Contents fields: the rules only match inside an open <Contents> */
	if (!le || !ls->in_contents || (le->have & bit))
		return -EIO;
	le->have |= bit;
	switch (id) {
	case L_KEY:
		return set_key(le, text, len);
	case L_MTIME:
		return parse_time_ns(text, len, &le->meta.mtime_ns);
	case L_ETAG:
		return copy_etag(le->meta.etag, text, len);
	default:
		return parse_size(text, len, &le->meta.size);
	}
}

/* qsort order: bytewise by relative key, then arrival, which keeps it stable. */
static int list_cmp(const void *a, const void *b)
{
	const struct list_entry *x = a, *y = b;
	int c = strcmp(x->rel, y->rel);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Decode, check and strip every key, then sort them all into one order. */
static int list_finish(struct list_state *ls, const char *prefix, size_t *kept)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	size_t k = 0;
	int rc;

	for (size_t i = 0; i < ls->n; i++) {
		struct list_entry *le = &ls->v[i];

		if (ls->url) {
			rc = url_decode(le->key, &le->key_len);
			if (rc)
				return rc;
			if (!utf8_valid((const unsigned char *)le->key, le->key_len))
				return -EIO;
		}
		if (le->key_len > S3_XML_KEY_MAX)
			return -EFBIG;
		if (le->key_len < plen || (plen && memcmp(le->key, prefix, plen) != 0))
			return -EIO; /* the store answered outside what we asked */
		le->rel = le->key + plen;
		if (*le->rel == '\0') {
			if (le->is_prefix)
				return -EIO;
			/* the "folder" object named like the prefix: not a file */
			free(le->key);
			le->key = NULL;
			continue;
		}
		if (k != i) {
			/* move the entry down over skipped ones; ownership moves too */
			ls->v[k] = *le;
			ls->v[k].rel = ls->v[k].key + plen;
			le->key = NULL;
		}
		k++;
	}
	if (k > 1)
		qsort(ls->v, k, sizeof(ls->v[0]), list_cmp);
	for (size_t i = 1; i < k; i++)
		if (strcmp(ls->v[i - 1].rel, ls->v[i].rel) == 0)
			return -EIO; /* a key listed twice */
	*kept = k;
	return 0;
}

/* Free everything a list_state owns. */
static void list_state_cleanup(struct list_state *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->v[i].key);
	free(ls->v);
	free(ls->next_token);
}

/* Parse a ListObjectsV2 result into a sorted page of relative keys. */
int s3_xml_parse_list(const char *xml, size_t len, const char *prefix_strip,
		      struct store_list_page *page, bool *is_truncated_out)
{
	struct list_state ls = { 0 };
	struct store_list_page out = { 0 };
	struct engine *e = NULL;
	size_t kept = 0;
	int rc;

	e = calloc(1, sizeof(*e));
	if (!e) {
		rc = -ENOMEM;
		goto cleanup;
	}
	e->rules = list_rules;
	e->nrules = sizeof(list_rules) / sizeof(list_rules[0]);
	e->on_open = list_open;
	e->on_text = list_text;
	e->on_close = list_close;
	e->user = &ls;
	rc = engine_run(e, xml, len);
	if (rc)
		goto cleanup;
	if (!ls.have_truncated || (ls.truncated && (!ls.next_token || !*ls.next_token))) {
		rc = -EIO; /* we could not tell whether the listing is complete */
		goto cleanup;
	}
	rc = list_finish(&ls, prefix_strip, &kept);
	if (rc)
		goto cleanup;
	for (size_t i = 0; i < kept; i++) {
		rc = store_list_page_add(&out, ls.v[i].rel, ls.v[i].is_prefix,
					 ls.v[i].is_prefix ? NULL : &ls.v[i].meta);
		if (rc)
			goto cleanup;
	}
	if (ls.truncated) {
		out.next_token = ls.next_token;
		ls.next_token = NULL;
	}
	if (is_truncated_out)
		*is_truncated_out = ls.truncated;
	*page = out;
	memset(&out, 0, sizeof(out));
cleanup:
	store_list_page_cleanup(&out);
	list_state_cleanup(&ls);
	free(e);
	return rc;
}

/* ---- documents made of a few text fields ---- */

/* One wanted field of a small document: where its text goes. */
struct field {
	char *dst;       /* receives the text, NUL-terminated */
	bool seen;
};

/* Store one field's text; a repeat is -EIO (the engine enforced the cap). */
static int fields_text(struct engine *e, int id, const char *text, size_t len)
{
	struct field *f = &((struct field *)e->user)[id];

	if (f->seen)
		return -EIO;
	f->seen = true;
	memcpy(f->dst, text, len + 1);
	return 0;
}

/* Run the engine for a small document; the caller checks which fields came
 * and, through root_id (may be NULL), which root matched. */
static int fields_run(const char *xml, size_t len, const struct rule *rules, size_t nrules,
		      struct field *fields, int *root_id)
{
	struct engine *e;
	int rc;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->rules = rules;
	e->nrules = nrules;
	e->on_text = fields_text;
	e->user = fields;
	rc = engine_run(e, xml, len);
	if (root_id)
		*root_id = e->root_id;
	free(e);
	return rc;
}

/* Smaller of a caller's buffer (less its NUL) and the engine's limit. */
static size_t cap_for(size_t size, size_t limit)
{
	return size - 1 < limit ? size - 1 : limit;
}

enum { E_CODE, E_MSG, E_NFIELDS };
enum { E_ROOT_S3 = ROOT_ID, E_ROOT_STS };

/* Parse an S3 <Error> or STS <ErrorResponse> body into code and message. */
int s3_xml_parse_error(const char *xml, size_t len, char *code, size_t code_len,
		       char *message, size_t message_len)
{
	char msg_sink[1];
	bool want_msg = message && message_len > 0;
	struct field f[E_NFIELDS] = { { code, false }, { want_msg ? message : msg_sink, false } };
	size_t ccap, mcap;
	int rc;

	if (!code || code_len < 2)
		return -EINVAL;
	ccap = cap_for(code_len, TEXT_MAX);
	mcap = want_msg ? cap_for(message_len, TEXT_MAX) : 0;
	code[0] = '\0';
	if (want_msg)
		message[0] = '\0';
	{
		/* caps depend on the caller's buffers, so the table is built here */
		const struct rule rules[] = {
			{ "/Error", E_ROOT_S3, false, 0, false },
			{ "/Error/Code", E_CODE, true, ccap, false },
			{ "/Error/Message", E_MSG, true, mcap, true },
			{ "/ErrorResponse", E_ROOT_STS, false, 0, false },
			{ "/ErrorResponse/Error/Code", E_CODE, true, ccap, false },
			{ "/ErrorResponse/Error/Message", E_MSG, true, mcap, true },
		};

		rc = fields_run(xml, len, rules, sizeof(rules) / sizeof(rules[0]), f, NULL);
	}
	if (!rc && (!f[E_CODE].seen || code[0] == '\0'))
		rc = -EIO;
	if (rc) {
		code[0] = '\0';
		if (want_msg)
			message[0] = '\0';
	}
	return rc;
}

enum { U_ID, U_NFIELDS };

/* Parse InitiateMultipartUploadResult/UploadId. */
int s3_xml_parse_upload_id(const char *xml, size_t len, char *upload_id,
			   size_t upload_id_len)
{
	struct field f[U_NFIELDS] = { { upload_id, false } };
	int rc;

	if (!upload_id || upload_id_len < 2)
		return -EINVAL;
	{
		const struct rule rules[] = {
			{ "/InitiateMultipartUploadResult", ROOT_ID, false, 0, false },
			{ "/InitiateMultipartUploadResult/UploadId", U_ID, true,
			  cap_for(upload_id_len, S3_XML_TOKEN_MAX), false },
		};

		upload_id[0] = '\0';
		rc = fields_run(xml, len, rules, sizeof(rules) / sizeof(rules[0]), f, NULL);
	}
	if (!rc && (!f[U_ID].seen || upload_id[0] == '\0'))
		rc = -EIO;
	if (rc)
		upload_id[0] = '\0';
	return rc;
}

enum { R_ETAG, R_MTIME, R_CODE, R_MSG, R_NFIELDS };
enum { R_ROOT_OK = ROOT_ID, R_ROOT_ERR };

/* Shared body of parse_complete and parse_copy: root names the success
 * document; with want_mtime its LastModified is required too. */
static int parse_result(const char *xml, size_t len, const char *root_name, bool want_mtime,
			struct s3_xml_result *out)
{
	char p_root[64], p_etag[80], p_mtime[80];
	char etag[STORE_ETAG_MAX + 2], mtime[65];
	struct field f[R_NFIELDS] = {
		{ etag, false }, { mtime, false },
		{ out->error_code, false }, { out->error_message, false },
	};
	int root, rc;

	memset(out, 0, sizeof(*out));
	snprintf(p_root, sizeof(p_root), "/%s", root_name);
	snprintf(p_etag, sizeof(p_etag), "/%s/ETag", root_name);
	snprintf(p_mtime, sizeof(p_mtime), "/%s/LastModified", root_name);
	{
		const struct rule rules[] = {
			{ p_root, R_ROOT_OK, false, 0, false },
			{ p_etag, R_ETAG, true, sizeof(etag) - 1, false },
			{ p_mtime, R_MTIME, true, sizeof(mtime) - 1, false },
			{ "/Error", R_ROOT_ERR, false, 0, false },
			{ "/Error/Code", R_CODE, true, S3_XML_CODE_MAX - 1, false },
			{ "/Error/Message", R_MSG, true, S3_XML_MESSAGE_MAX - 1, true },
		};

		rc = fields_run(xml, len, rules, sizeof(rules) / sizeof(rules[0]), f, &root);
	}
	if (rc)
		goto cleanup;
	if (root == R_ROOT_ERR) {
		/* S3 already sent 200 when the work failed: report its code */
		rc = f[R_CODE].seen && out->error_code[0] ? S3_XML_EMBEDDED_ERROR : -EIO;
		goto cleanup;
	}
	if (!f[R_ETAG].seen || (want_mtime && !f[R_MTIME].seen)) {
		rc = -EIO;
		goto cleanup;
	}
	/* Ceph RGW 16 completes multipart uploads with an empty <ETag></ETag>:
	 * leave out->etag empty and let the caller ask HEAD for it. */
	if (!want_mtime && (strcmp(etag, "") == 0 || strcmp(etag, "\"\"") == 0))
		goto cleanup;
	rc = copy_etag(out->etag, etag, strlen(etag));
	if (!rc && want_mtime)
		rc = parse_time_ns(mtime, strlen(mtime), &out->mtime_ns);
cleanup:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* Parse CompleteMultipartUploadResult, or the <Error> S3 sends with 200. */
int s3_xml_parse_complete(const char *xml, size_t len, struct s3_xml_result *out)
{
	return parse_result(xml, len, "CompleteMultipartUploadResult", false, out);
}

/* Parse CopyObjectResult, or the <Error> S3 sends with 200. */
int s3_xml_parse_copy(const char *xml, size_t len, struct s3_xml_result *out)
{
	return parse_result(xml, len, "CopyObjectResult", true, out);
}

enum { S_AKID, S_SECRET, S_TOKEN, S_EXP, S_NFIELDS };

/* One response shape of STS: root, result element and the four fields. */
#define STS_RULES(resp, result)                                                       \
	{ "/" resp, ROOT_ID, false, 0, false },                                       \
	{ "/" resp "/" result "/Credentials/AccessKeyId", S_AKID, true,               \
	  S3_XML_TOKEN_MAX, false },                                                  \
	{ "/" resp "/" result "/Credentials/SecretAccessKey", S_SECRET, true,         \
	  S3_XML_TOKEN_MAX, false },                                                  \
	{ "/" resp "/" result "/Credentials/SessionToken", S_TOKEN, true,             \
	  S3_XML_TOKEN_MAX, false },                                                  \
	{ "/" resp "/" result "/Credentials/Expiration", S_EXP, true, 64, false }

static const struct rule sts_rules[] = {
	STS_RULES("AssumeRoleWithWebIdentityResponse", "AssumeRoleWithWebIdentityResult"),
	STS_RULES("AssumeRoleResponse", "AssumeRoleResult"),
};
#undef STS_RULES

/* Parse STS AssumeRoleWithWebIdentity / AssumeRole credentials. */
int s3_xml_parse_sts_credentials(const char *xml, size_t len,
				 struct s3_xml_sts_credentials *out)
{
	/* on the heap: 12 KiB is too much for a small FUSE thread stack */
	struct sts_bufs {
		char akid[S3_XML_TOKEN_MAX + 1];
		char secret[S3_XML_TOKEN_MAX + 1];
		char token[S3_XML_TOKEN_MAX + 1];
		char exp[65];
	} *b = NULL;
	struct field f[S_NFIELDS];
	int64_t sec = 0;
	long nsec;
	int rc;

	memset(out, 0, sizeof(*out));
	b = calloc(1, sizeof(*b));
	if (!b) {
		rc = -ENOMEM;
		goto cleanup;
	}
	f[S_AKID] = (struct field){ b->akid, false };
	f[S_SECRET] = (struct field){ b->secret, false };
	f[S_TOKEN] = (struct field){ b->token, false };
	f[S_EXP] = (struct field){ b->exp, false };
	rc = fields_run(xml, len, sts_rules, sizeof(sts_rules) / sizeof(sts_rules[0]), f, NULL);
	if (rc)
		goto cleanup;
	for (int i = 0; i < S_NFIELDS; i++) {
		if (!f[i].seen || f[i].dst[0] == '\0') {
			rc = -EIO;
			goto cleanup;
		}
	}
	rc = parse_time(b->exp, strlen(b->exp), &sec, &nsec);
	if (rc)
		goto cleanup;
	out->expiration = sec;
	out->access_key_id = strdup(b->akid);
	out->secret_access_key = strdup(b->secret);
	out->session_token = strdup(b->token);
	if (!out->access_key_id || !out->secret_access_key || !out->session_token)
		rc = -ENOMEM;
cleanup:
	if (b) {
		explicit_bzero(b, sizeof(*b));
		free(b);
	}
	if (rc)
		s3_xml_sts_credentials_cleanup(out);
	return rc;
}

/* Wipe one heap string before freeing it. */
static void wipe_str(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Wipe and free the credential strings. */
void s3_xml_sts_credentials_cleanup(struct s3_xml_sts_credentials *c)
{
	if (!c)
		return;
	wipe_str(c->access_key_id);
	wipe_str(c->secret_access_key);
	wipe_str(c->session_token);
	memset(c, 0, sizeof(*c));
}
