/*
 * cairn.c — the `cairn` command-line tool: inspect and edit a cairn database
 * from a shell (stat, get, put, del, scan, column families, integrity check)
 * and run it (backup, restore, verify, dump, load, stats as JSON or
 * Prometheus text; the formats are in core/OPERATIONS.md).
 *
 * It uses only the public API in include/cairn.h, like any other user.
 *
 * Bytes on the command line: an argument written 0x... (even number of hex
 * digits, either case) is hex; anything else is taken as its literal bytes.
 * Bytes printed: as text when they are valid UTF-8 with no control
 * characters and do not begin with "0x", otherwise as 0x... hex; --hex forces
 * hex. With that rule every printed key or value can be typed back in as an
 * argument and means the same bytes.
 *
 * Exit status: 0 success, 1 not found (key or column family missing, or a
 * column family to create already exists), 2 usage error, 3 database or I/O
 * error (including a database file that is missing, locked or corrupt).
 * Every failure prints exactly one line on stderr, starting "cairn: ".
 */
#include "cairn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_NOTFOUND = 1, EXIT_USAGE = 2, EXIT_DBERR = 3 };

/* ---- failure messages ---------------------------------------------------- */

/* Print "cairn: <message>" as exactly one line on stderr. Control characters
 * (which could come from a path, an argument or an engine message) are
 * replaced so that scripts can rely on one line per failure. */
static void vsay(const char *fmt, va_list ap) {
  char buf[8192];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0)
    snprintf(buf, sizeof buf, "(unprintable message)");
  for (char *p = buf; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
      *p = '?';
  fprintf(stderr, "cairn: %s\n", buf);
}

/* Report a failure that is not an engine status; returns code. */
static int fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
  return code;
}

static int usage_error(const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return fail(EXIT_USAGE, "%s (try 'cairn --help')", buf);
}

/* The exit status an engine status maps to once a database is open: a
 * missing key or column family is "not found", a rejected argument is a usage
 * error, everything else is a database error. */
static int exit_for(int rc) {
  switch (rc) {
  case CAIRN_NOTFOUND:
  case CAIRN_EXISTS: return EXIT_NOTFOUND;
  case CAIRN_INVALID:
  case CAIRN_TOOBIG: return EXIT_USAGE;
  default: return EXIT_DBERR;
  }
}

/* Report an engine failure as "cairn: <what>: <code name> (<detail>)" and
 * return code. The detail is read here, before any cleanup call can replace
 * the thread's last error message. */
static int db_fail(int code, int rc, const char *fmt, ...) {
  char what[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const char *detail = cairn_errmsg();
  if (detail && detail[0])
    return fail(code, "%s: %s (%s)", what, cairn_strerror(rc), detail);
  return fail(code, "%s: %s", what, cairn_strerror(rc));
}

/* ---- bytes in ------------------------------------------------------------ */

/* A byte string decoded from an argument; data is always a heap buffer with
 * one spare NUL byte, so it is never NULL (an empty bound must not read as
 * "unbounded") and can serve as a C string for column family names. */
typedef struct bytes {
  unsigned char *data;
  size_t size;
} bytes;

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decode arg (text, or 0x hex) into *out. what names it in errors. */
static int decode_arg(const char *arg, const char *what, bytes *out) {
  size_t len = strlen(arg);
  if (len >= 2 && arg[0] == '0' && arg[1] == 'x') {
    const char *hex = arg + 2;
    size_t digits = len - 2;
    if (digits % 2 != 0)
      return usage_error("%s '%s': odd number of hex digits", what, arg);
    out->size = digits / 2;
    out->data = malloc(out->size + 1);
    if (!out->data)
      return fail(EXIT_DBERR, "out of memory");
    for (size_t i = 0; i < out->size; i++) {
      int hi = hexval((unsigned char)hex[2 * i]);
      int lo = hexval((unsigned char)hex[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return usage_error("%s '%s': not a hex digit", what, arg);
      out->data[i] = (unsigned char)(hi << 4 | lo);
    }
    out->data[out->size] = 0;
    return 0;
  }
  out->size = len;
  out->data = malloc(len + 1);
  if (!out->data)
    return fail(EXIT_DBERR, "out of memory");
  memcpy(out->data, arg, len + 1);
  return 0;
}

static cairn_slice slice_of(const bytes *b) {
  cairn_slice s = {b->data, b->size};
  return s;
}

/* ---- bytes out ----------------------------------------------------------- */

/* True when p[0..n) prints safely as text: valid UTF-8 (no overlong forms,
 * surrogates or code points past U+10FFFF), no C0/C1 control characters or
 * DEL (so a TAB or newline can never break the line format), and not starting
 * with "0x" (which would read back as hex). */
static int is_text(const unsigned char *p, size_t n) {
  if (n >= 2 && p[0] == '0' && p[1] == 'x')
    return 0;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f)
        return 0;
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return 0;
      cp = cp << 6 | (p[i + k] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
        cp <= 0x9f)
      return 0;
    i += len;
  }
  return 1;
}

/* Write bytes to stdout as text or 0x hex (see the rule above). */
static void print_bytes(const void *data, size_t n, int force_hex) {
  const unsigned char *p = data;
  if (!force_hex && is_text(p, n)) {
    fwrite(p, 1, n, stdout);
    return;
  }
  static const char digits[] = "0123456789abcdef";
  char buf[4096];
  size_t used = 0;
  fputs("0x", stdout);
  for (size_t i = 0; i < n; i++) {
    buf[used++] = digits[p[i] >> 4];
    buf[used++] = digits[p[i] & 15];
    if (used == sizeof buf) {
      fwrite(buf, 1, used, stdout);
      used = 0;
    }
  }
  fwrite(buf, 1, used, stdout);
}

/* ---- arguments ----------------------------------------------------------- */

/* Options, as bits so each command can say which ones it accepts. */
enum {
  OPT_CF = 1 << 0,
  OPT_PREFIX = 1 << 1,
  OPT_FROM = 1 << 2,
  OPT_TO = 1 << 3,
  OPT_REVERSE = 1 << 4,
  OPT_LIMIT = 1 << 5,
  OPT_PAGE_SIZE = 1 << 6,
  OPT_HEX = 1 << 7,
  OPT_HELP = 1 << 8,
  OPT_VERSION = 1 << 9,
  OPT_COMPACT = 1 << 10,
  OPT_INCR_FROM = 1 << 11,
  OPT_JSON = 1 << 12,
  OPT_PROMETHEUS = 1 << 13
};

static const struct option_def {
  const char *name;
  int bit;
  int takes_value;
} option_defs[] = {
    {"--cf", OPT_CF, 1},
    {"--prefix", OPT_PREFIX, 1},
    {"--from", OPT_FROM, 1},
    {"--to", OPT_TO, 1},
    {"--reverse", OPT_REVERSE, 0},
    {"--limit", OPT_LIMIT, 1},
    {"--page-size", OPT_PAGE_SIZE, 1},
    {"--hex", OPT_HEX, 0},
    {"--help", OPT_HELP, 0},
    {"-h", OPT_HELP, 0},
    {"--version", OPT_VERSION, 0},
    {"-V", OPT_VERSION, 0},
    {"--compact", OPT_COMPACT, 0},
    {"--incremental-from", OPT_INCR_FROM, 1},
    {"--json", OPT_JSON, 0},
    {"--prometheus", OPT_PROMETHEUS, 0},
};

/* command + operands: "cf DB create NAME", or restore's chain of backups */
#define MAX_POS 1024

typedef struct args {
  int seen;              /* OPT_* bits given */
  const char *value[16]; /* option values, indexed by bit number */
  const char *pos[MAX_POS];
  int npos;
} args;

static int bit_index(int bit) {
  int i = 0;
  while (!(bit & 1))
    bit >>= 1, i++;
  return i;
}

static const char *opt_value(const args *a, int bit) {
  return (a->seen & bit) ? a->value[bit_index(bit)] : NULL;
}

/* Split argv into options and operands. Before "--", every argument that
 * starts with '-' (other than "-" itself) is an option, so a key starting
 * with '-' is written after "--". Options may be given as "--opt value" or
 * "--opt=value", anywhere on the line, each at most once. */
static int parse_args(int argc, char **argv, args *a) {
  int options_done = 0;
  memset(a, 0, sizeof *a);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!options_done && strcmp(s, "--") == 0) {
      options_done = 1;
      continue;
    }
    if (options_done || s[0] != '-' || s[1] == 0) {
      if (a->npos == MAX_POS)
        return usage_error("too many arguments");
      a->pos[a->npos++] = s;
      continue;
    }
    const char *eq = strchr(s, '=');
    size_t namelen = eq ? (size_t)(eq - s) : strlen(s);
    const struct option_def *def = NULL;
    for (size_t k = 0; k < sizeof option_defs / sizeof option_defs[0]; k++)
      if (strlen(option_defs[k].name) == namelen &&
          strncmp(option_defs[k].name, s, namelen) == 0)
        def = &option_defs[k];
    if (!def)
      return usage_error("unknown option '%s' (write -- before an argument "
                         "that starts with '-')",
                         s);
    if (a->seen & def->bit)
      return usage_error("option %s given twice", def->name);
    const char *val = NULL;
    if (def->takes_value) {
      if (eq)
        val = eq + 1;
      else if (i + 1 < argc)
        val = argv[++i];
      else
        return usage_error("option %s needs a value", def->name);
    } else if (eq) {
      return usage_error("option %s takes no value", def->name);
    }
    a->seen |= def->bit;
    a->value[bit_index(def->bit)] = val;
  }
  return 0;
}

/* Parse a decimal count with no sign, spaces or overflow. */
static int parse_u64(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (!*s)
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static const char help_text[] =
    "usage: cairn COMMAND DB [OPTIONS] [ARGS]\n"
    "\n"
    "commands:\n"
    "  cairn stat DB                       database and column family "
    "statistics\n"
    "  cairn get DB [--cf CF] KEY          print the value of KEY\n"
    "  cairn put DB [--cf CF] KEY VALUE    store VALUE under KEY (creates DB "
    "if\n"
    "                                      missing; --page-size N when "
    "creating)\n"
    "  cairn del DB [--cf CF] KEY          delete KEY\n"
    "  cairn scan DB [--cf CF] [--prefix P | --from A --to B] [--reverse]\n"
    "                [--limit N]           print KEY<TAB>VALUE lines in key "
    "order\n"
    "  cairn cf DB list|create NAME|drop NAME\n"
    "                                      list, create or drop column "
    "families\n"
    "  cairn check DB                      verify every page of the database\n"
    "  cairn stat DB --json | --prometheus statistics and metrics as JSON or\n"
    "                                      Prometheus text\n"
    "  cairn backup DB DEST [--compact] [--incremental-from PREVIOUS]\n"
    "                                      write a backup file (a hot, "
    "consistent\n"
    "                                      copy of one snapshot)\n"
    "  cairn restore BACKUP [INCREMENTAL ...] DEST\n"
    "                                      rebuild a database from a backup "
    "chain\n"
    "                                      (DEST must not exist)\n"
    "  cairn verify BACKUP [INCREMENTAL ...]\n"
    "                                      check backup files (and their "
    "order)\n"
    "                                      and print what each holds\n"
    "  cairn dump DB > FILE                every column family as portable "
    "text\n"
    "  cairn load DB < FILE                load a dump into a new or empty "
    "database\n"
    "  cairn --help | --version\n"
    "\n"
    "options:\n"
    "  --cf CF         column family (default: \"default\")\n"
    "  --prefix P      scan only keys starting with P\n"
    "  --from A        scan keys >= A          --to B   scan keys < B\n"
    "  --reverse       scan from the last key down\n"
    "  --limit N       print at most N lines\n"
    "  --page-size N   page size of a new database (power of two, "
    "4096..65536)\n"
    "  --hex           print keys, values and names in hex\n"
    "  --compact       backup: only live data, rewritten in key order\n"
    "  --incremental-from PREVIOUS\n"
    "                  backup: only pages changed since the backup PREVIOUS\n"
    "  --json, --prometheus\n"
    "                  stat: machine-readable output\n"
    "  --              end of options (for keys that start with '-')\n"
    "\n"
    "bytes: an argument written 0x... (even number of hex digits) is hex, "
    "anything\n"
    "else is literal text. Output is text when the bytes are valid UTF-8 "
    "without\n"
    "control characters and do not start with \"0x\"; otherwise 0x... hex.\n"
    "\n"
    "exit status: 0 ok, 1 not found (key or column family; or cf create of "
    "an\n"
    "existing one; or the destination of backup/restore exists, or load into "
    "a\n"
    "non-empty database), 2 usage error (also a backup chain given in the "
    "wrong\n"
    "order or with a gap), 3 database or I/O error (missing, locked or "
    "corrupt\n"
    "file or backup; check found problems). Errors print one line on "
    "stderr.\n";

/* ---- commands ------------------------------------------------------------ */

/* Everything a command may leave open or allocated; main releases it all, so
 * every failure path is a plain "return code". */
typedef struct session {
  const args *a;
  const char *cmd;
  const char *path;
  cairn_db *db;
  cairn_txn *txn;
  cairn_cursor *cur;
  bytes b[3];
} session;

static int open_db(session *s, uint32_t flags, uint32_t page_size) {
  cairn_options o;
  cairn_options_init(&o);
  o.flags = flags;
  if (page_size)
    o.page_size = page_size;
  int rc = cairn_open(s->path, &o, &s->db);
  if (rc != CAIRN_OK) {
    s->db = NULL;
    /* Whatever the reason (missing, locked, not a database), the database
     * itself is unusable: always a database error, never "not found". */
    return db_fail(EXIT_DBERR, rc, "open %s", s->path);
  }
  return 0;
}

static int begin(session *s, unsigned flags) {
  int rc = cairn_begin(s->db, flags, &s->txn);
  if (rc != CAIRN_OK) {
    s->txn = NULL;
    return db_fail(exit_for(rc), rc, "%s: begin transaction", s->cmd);
  }
  return 0;
}

static int commit(session *s) {
  int rc = cairn_commit(s->txn);
  s->txn = NULL; /* freed in every case */
  if (rc != CAIRN_OK)
    return db_fail(EXIT_DBERR, rc, "%s: commit", s->cmd);
  return 0;
}

/* Decode a column family name: 1..255 bytes, no NUL (the API takes a C
 * string). Text or 0x hex like any other argument. */
static int decode_cf_name(session *s, const char *arg, bytes *out) {
  int e = decode_arg(arg, "column family name", out);
  if (e)
    return e;
  if (out->size == 0 || out->size > CAIRN_MAX_CF_NAME)
    return usage_error("%s: column family name must be 1..%u bytes", s->cmd,
                       CAIRN_MAX_CF_NAME);
  if (memchr(out->data, 0, out->size))
    return usage_error("%s: column family name contains a NUL byte", s->cmd);
  return 0;
}

/* Resolve --cf (absent or "default" means the default column family). */
static int resolve_cf(session *s, bytes *name, cairn_cf *out) {
  const char *arg = opt_value(s->a, OPT_CF);
  if (!arg || strcmp((const char *)name->data, "default") == 0) {
    *out = CAIRN_DEFAULT_CF;
    return 0;
  }
  int rc = cairn_cf_open(s->txn, (const char *)name->data, 0, out);
  if (rc == CAIRN_NOTFOUND)
    return fail(EXIT_NOTFOUND, "%s: column family '%s' not found", s->cmd, arg);
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "%s: column family '%s'", s->cmd, arg);
  return 0;
}

/* Decode --cf (if given) into b so resolve_cf can use it after open. */
static int decode_cf_opt(session *s, bytes *b) {
  const char *arg = opt_value(s->a, OPT_CF);
  if (!arg) {
    static const char def[] = "default";
    b->data = malloc(sizeof def);
    if (!b->data)
      return fail(EXIT_DBERR, "out of memory");
    memcpy(b->data, def, sizeof def);
    b->size = sizeof def - 1;
    return 0;
  }
  return decode_cf_name(s, arg, b);
}

static int decode_key(session *s, const char *arg, bytes *out) {
  int e = decode_arg(arg, "key", out);
  if (e)
    return e;
  if (out->size > CAIRN_MAX_KEY_SIZE)
    return usage_error("%s: key is %zu bytes, over the %u-byte limit", s->cmd,
                       out->size, CAIRN_MAX_KEY_SIZE);
  return 0;
}

static int cmd_get(session *s, const char *key_arg) {
  bytes *cfname = &s->b[0], *key = &s->b[1];
  cairn_cf cf;
  cairn_slice val;
  int e;
  if ((e = decode_cf_opt(s, cfname)) || (e = decode_key(s, key_arg, key)) ||
      (e = open_db(s, CAIRN_OPEN_RDONLY, 0)) ||
      (e = begin(s, CAIRN_TXN_RDONLY)) || (e = resolve_cf(s, cfname, &cf)))
    return e;
  int rc = cairn_get(s->txn, cf, slice_of(key), &val);
  if (rc == CAIRN_NOTFOUND)
    return fail(EXIT_NOTFOUND, "get: key not found");
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "get");
  print_bytes(val.data, val.size, (s->a->seen & OPT_HEX) != 0);
  putchar('\n');
  return 0;
}

static int cmd_put(session *s, const char *key_arg, const char *val_arg) {
  bytes *cfname = &s->b[0], *key = &s->b[1], *val = &s->b[2];
  uint32_t page_size = 0;
  const char *ps = opt_value(s->a, OPT_PAGE_SIZE);
  cairn_cf cf;
  int e;
  if (ps) {
    uint64_t v;
    if (parse_u64(ps, &v) || v < CAIRN_MIN_PAGE_SIZE ||
        v > CAIRN_MAX_PAGE_SIZE || (v & (v - 1)) != 0)
      return usage_error("put: --page-size must be a power of two from %u to "
                         "%u, not '%s'",
                         CAIRN_MIN_PAGE_SIZE, CAIRN_MAX_PAGE_SIZE, ps);
    page_size = (uint32_t)v;
  }
  if ((e = decode_cf_opt(s, cfname)) || (e = decode_key(s, key_arg, key)) ||
      (e = decode_arg(val_arg, "value", val)))
    return e;
  /* Only a put into the default column family may create the file: a new
   * database has no other column family, so creating it would only leave an
   * empty file behind a "column family not found" error. */
  int is_default = strcmp((const char *)cfname->data, "default") == 0;
  if ((e = open_db(s, is_default ? CAIRN_OPEN_CREATE : 0, page_size)))
    return e;
  if (page_size) {
    /* --page-size only applies to a new file; say so rather than silently
     * ignore a request the existing database cannot honour. */
    cairn_db_stat st;
    int rc = cairn_db_stat_get(s->db, &st);
    if (rc != CAIRN_OK)
      return db_fail(EXIT_DBERR, rc, "put: stat");
    if (st.page_size != page_size)
      return usage_error("put: %s already exists with page size %u, not %u",
                         s->path, (unsigned)st.page_size, (unsigned)page_size);
  }
  if ((e = begin(s, 0)) || (e = resolve_cf(s, cfname, &cf)))
    return e;
  int rc = cairn_put(s->txn, cf, slice_of(key), slice_of(val), 0);
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "put");
  return commit(s);
}

static int cmd_del(session *s, const char *key_arg) {
  bytes *cfname = &s->b[0], *key = &s->b[1];
  cairn_cf cf;
  int e;
  if ((e = decode_cf_opt(s, cfname)) || (e = decode_key(s, key_arg, key)) ||
      (e = open_db(s, 0, 0)) || (e = begin(s, 0)) ||
      (e = resolve_cf(s, cfname, &cf)))
    return e;
  int rc = cairn_del(s->txn, cf, slice_of(key));
  if (rc == CAIRN_NOTFOUND)
    return fail(EXIT_NOTFOUND, "del: key not found");
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "del");
  return commit(s);
}

static int cmd_scan(session *s) {
  const args *a = s->a;
  bytes *cfname = &s->b[0], *lo = &s->b[1], *hi = &s->b[2];
  const char *prefix = opt_value(a, OPT_PREFIX);
  const char *from = opt_value(a, OPT_FROM), *to = opt_value(a, OPT_TO);
  const char *limit_arg = opt_value(a, OPT_LIMIT);
  int reverse = (a->seen & OPT_REVERSE) != 0, hex = (a->seen & OPT_HEX) != 0;
  uint64_t limit = UINT64_MAX;
  cairn_cf cf;
  int e, rc = CAIRN_OK;
  if (prefix && (from || to))
    return usage_error("scan: --prefix cannot be combined with --from/--to");
  if (limit_arg && parse_u64(limit_arg, &limit))
    return usage_error("scan: --limit needs a count, not '%s'", limit_arg);
  if ((e = decode_cf_opt(s, cfname)))
    return e;
  if (prefix && (e = decode_arg(prefix, "prefix", lo)))
    return e;
  if (from && (e = decode_arg(from, "--from", lo)))
    return e;
  if (to && (e = decode_arg(to, "--to", hi)))
    return e;
  if ((e = open_db(s, CAIRN_OPEN_RDONLY, 0)) ||
      (e = begin(s, CAIRN_TXN_RDONLY)) || (e = resolve_cf(s, cfname, &cf)))
    return e;
  rc = cairn_cursor_open(s->txn, cf, &s->cur);
  if (rc != CAIRN_OK) {
    s->cur = NULL;
    return db_fail(exit_for(rc), rc, "scan: open cursor");
  }
  if (prefix) {
    rc = cairn_cursor_prefix(s->cur, slice_of(lo));
  } else if (from || to) {
    /* An absent side is the unbounded slice {NULL, 0}; a given but empty
     * side keeps its non-NULL buffer, so --to "" really matches nothing. */
    cairn_slice none = {NULL, 0};
    rc = cairn_cursor_bounds(s->cur, from ? slice_of(lo) : none,
                             to ? slice_of(hi) : none);
  }
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "scan: set range");
  uint64_t printed = 0;
  if (limit == 0)
    return 0;
  rc = reverse ? cairn_cursor_last(s->cur) : cairn_cursor_first(s->cur);
  while (rc == CAIRN_OK) {
    cairn_slice k, v;
    rc = cairn_cursor_get(s->cur, &k, &v);
    if (rc != CAIRN_OK)
      break;
    print_bytes(k.data, k.size, hex);
    putchar('\t');
    print_bytes(v.data, v.size, hex);
    putchar('\n');
    if (++printed == limit)
      return 0;
    rc = reverse ? cairn_cursor_prev(s->cur) : cairn_cursor_next(s->cur);
  }
  if (rc != CAIRN_NOTFOUND)
    return db_fail(EXIT_DBERR, rc, "scan");
  return 0;
}

/* Print one column family name per line (cairn_cf_list callback). */
static int list_cf(void *ctx, const char *name, cairn_cf cf) {
  (void)cf;
  print_bytes(name, strlen(name), *(const int *)ctx);
  putchar('\n');
  return 0;
}

static int cmd_cf(session *s, const char *sub, const char *name_arg) {
  bytes *name = &s->b[0];
  cairn_cf cf;
  int e, rc;
  if (strcmp(sub, "list") == 0) {
    int hex = (s->a->seen & OPT_HEX) != 0;
    if (name_arg)
      return usage_error("cf list takes no name");
    if ((e = open_db(s, CAIRN_OPEN_RDONLY, 0)) ||
        (e = begin(s, CAIRN_TXN_RDONLY)))
      return e;
    rc = cairn_cf_list(s->txn, list_cf, &hex);
    if (rc != CAIRN_OK)
      return db_fail(EXIT_DBERR, rc, "cf list");
    return 0;
  }
  int create = strcmp(sub, "create") == 0;
  if (!create && strcmp(sub, "drop") != 0)
    return usage_error("cf: unknown subcommand '%s' (list, create, drop)", sub);
  if (!name_arg)
    return usage_error("cf %s needs a column family name", sub);
  if (s->a->seen & OPT_HEX)
    return usage_error("option --hex does not apply to cf %s", sub);
  if ((e = decode_cf_name(s, name_arg, name)))
    return e;
  int is_default = strcmp((const char *)name->data, "default") == 0;
  if (is_default && !create)
    return usage_error("cf drop: the default column family cannot be dropped");
  if ((e = open_db(s, 0, 0)) || (e = begin(s, 0)))
    return e;
  /* Look the name up first: cairn_cf_open with CAIRN_CF_CREATE succeeds on
   * an existing family, and the user should learn it was already there. */
  rc = is_default ? CAIRN_OK
                  : cairn_cf_open(s->txn, (const char *)name->data, 0, &cf);
  if (create) {
    if (rc == CAIRN_OK)
      return fail(EXIT_NOTFOUND, "cf create: column family '%s' already exists",
                  name_arg);
    if (rc != CAIRN_NOTFOUND)
      return db_fail(exit_for(rc), rc, "cf create '%s'", name_arg);
    rc = cairn_cf_open(s->txn, (const char *)name->data, CAIRN_CF_CREATE, &cf);
    if (rc != CAIRN_OK)
      return db_fail(exit_for(rc), rc, "cf create '%s'", name_arg);
  } else {
    if (rc == CAIRN_NOTFOUND)
      return fail(EXIT_NOTFOUND, "cf drop: column family '%s' not found",
                  name_arg);
    if (rc != CAIRN_OK)
      return db_fail(exit_for(rc), rc, "cf drop '%s'", name_arg);
    rc = cairn_cf_drop(s->txn, cf);
    if (rc != CAIRN_OK)
      return db_fail(exit_for(rc), rc, "cf drop '%s'", name_arg);
  }
  return commit(s);
}

/* Column families collected by cairn_cf_list, so their statistics are read
 * after the walk rather than from inside the engine's callback. */
typedef struct cf_names {
  char **name;
  cairn_cf *cf;
  size_t n, cap;
} cf_names;

static int collect_cf(void *ctx, const char *name, cairn_cf cf) {
  cf_names *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    char **nn = realloc(l->name, cap * sizeof *nn);
    if (!nn)
      return CAIRN_NOMEM;
    l->name = nn;
    cairn_cf *nc = realloc(l->cf, cap * sizeof *nc);
    if (!nc)
      return CAIRN_NOMEM;
    l->cf = nc;
    l->cap = cap;
  }
  size_t len = strlen(name);
  if (!(l->name[l->n] = malloc(len + 1)))
    return CAIRN_NOMEM;
  memcpy(l->name[l->n], name, len + 1);
  l->cf[l->n++] = cf;
  return 0;
}

static int print_cf_stats(session *s, cf_names *l) {
  int rc = cairn_cf_list(s->txn, collect_cf, l);
  if (rc != CAIRN_OK)
    return db_fail(EXIT_DBERR, rc, "stat: list column families");
  for (size_t i = 0; i < l->n; i++) {
    cairn_cf_stat cs;
    rc = cairn_cf_stat_get(s->txn, l->cf[i], &cs);
    if (rc != CAIRN_OK)
      return db_fail(EXIT_DBERR, rc, "stat: column family '%s'", l->name[i]);
    fputs("cf: ", stdout);
    print_bytes(l->name[i], strlen(l->name[i]), (s->a->seen & OPT_HEX) != 0);
    printf("\n  entries: %llu\n  depth: %u\n  branch_pages: %llu\n"
           "  leaf_pages: %llu\n  overflow_pages: %llu\n",
           (unsigned long long)cs.entries, (unsigned)cs.depth,
           (unsigned long long)cs.branch_pages,
           (unsigned long long)cs.leaf_pages,
           (unsigned long long)cs.overflow_pages);
  }
  return 0;
}

/* Write callback for the library's streams: stdout. */
static int write_stdout(void *ctx, const void *buf, size_t n) {
  (void)ctx;
  return fwrite(buf, 1, n, stdout) == n ? 0 : CAIRN_IO;
}

static int cmd_stat(session *s) {
  cairn_db_stat st;
  int e, rc;
  int json = (s->a->seen & OPT_JSON) != 0;
  int prom = (s->a->seen & OPT_PROMETHEUS) != 0;
  if (json && prom)
    return usage_error("stat: --json and --prometheus exclude each other");
  if ((json || prom) && (s->a->seen & OPT_HEX))
    return usage_error("stat: --hex does not apply to --%s",
                       json ? "json" : "prometheus");
  if ((e = open_db(s, CAIRN_OPEN_RDONLY, 0)))
    return e;
  if (json || prom) {
    rc = cairn_stat_write(s->db, json ? CAIRN_STAT_JSON : CAIRN_STAT_PROMETHEUS,
                          write_stdout, NULL);
    if (rc != CAIRN_OK)
      return db_fail(EXIT_DBERR, rc, "stat");
    return 0;
  }
  /* Database statistics first, before this command's own snapshot would
   * show up in them as a live reader. */
  rc = cairn_db_stat_get(s->db, &st);
  if (rc != CAIRN_OK)
    return db_fail(EXIT_DBERR, rc, "stat");
  printf("page_size: %u\nfile_size: %llu\nlog_size: %llu\n"
         "overlay_bytes: %llu\npage_count: %llu\n"
         "pages_in_use: %llu\npages_free: %llu\nlast_txn_id: %llu\n"
         "durable_txn_id: %llu\nsnapshots: %llu\noldest_snapshot_id: %llu\n"
         "pages_pinned: %llu\ncolumn_families: %u\nmapped: %d\n"
         "platform: %s\n",
         (unsigned)st.page_size, (unsigned long long)st.file_size,
         (unsigned long long)st.log_size, (unsigned long long)st.overlay_bytes,
         (unsigned long long)st.page_count, (unsigned long long)st.pages_in_use,
         (unsigned long long)st.pages_free, (unsigned long long)st.last_txn_id,
         (unsigned long long)st.durable_txn_id,
         (unsigned long long)st.snapshots,
         (unsigned long long)st.oldest_snapshot_id,
         (unsigned long long)st.pages_pinned, (unsigned)st.column_families,
         st.mapped, st.platform ? st.platform : "-");
  if ((e = begin(s, CAIRN_TXN_RDONLY)))
    return e;
  cf_names l = {NULL, NULL, 0, 0};
  e = print_cf_stats(s, &l);
  for (size_t i = 0; i < l.n; i++)
    free(l.name[i]);
  free(l.name);
  free(l.cf);
  return e;
}

/* cairn_check callback: one problem per line on stdout; stderr keeps its
 * single summary line. */
static void report_problem(void *ctx, const char *problem) {
  unsigned long long *count = ctx;
  ++*count;
  fputs("problem: ", stdout);
  for (const char *p = problem; *p; p++)
    putchar((unsigned char)*p < 0x20 ? '?' : *p);
  putchar('\n');
}

static int cmd_check(session *s) {
  unsigned long long problems = 0;
  int e;
  if ((e = open_db(s, CAIRN_OPEN_RDONLY, 0)))
    return e;
  int rc = cairn_check(s->db, report_problem, &problems);
  /* The problems themselves went to stdout; the one stderr line says how
   * many there were (the engine's detail names the first). */
  if (rc == CAIRN_CORRUPT)
    return db_fail(EXIT_DBERR, rc, "check %s: %llu problem%s", s->path,
                   problems, problems == 1 ? "" : "s");
  if (rc != CAIRN_OK)
    return db_fail(EXIT_DBERR, rc, "check %s", s->path);
  printf("ok\n");
  return 0;
}

/* ---- operations: backup, restore, verify, dump, load --------------------- */

static int cmd_backup(session *s, const char *dest) {
  cairn_backup_options o;
  cairn_backup_job *job = NULL;
  int e;
  cairn_backup_options_init(&o);
  if (s->a->seen & OPT_COMPACT)
    o.flags |= CAIRN_BACKUP_COMPACT;
  o.incremental_from = opt_value(s->a, OPT_INCR_FROM);
  if ((o.flags & CAIRN_BACKUP_COMPACT) && o.incremental_from)
    return usage_error("backup: --compact and --incremental-from exclude "
                       "each other");
  if (!dest[0])
    return usage_error("backup: empty destination path");
  if ((e = open_db(s, CAIRN_OPEN_RDONLY, 0)))
    return e;
  int rc = cairn_backup_begin(s->db, dest, &o, &job);
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "backup %s to %s", s->path, dest);
  uint64_t txn = cairn_backup_txn_id(job);
  rc = cairn_backup_finish(job);
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "backup %s to %s", s->path, dest);
  printf("%s: %s backup of txn %llu\n", dest,
         (o.flags & CAIRN_BACKUP_COMPACT) ? "compact"
         : o.incremental_from             ? "incremental"
                                          : "full",
         (unsigned long long)txn);
  return 0;
}

static int cmd_restore(session *s) {
  const args *a = s->a;
  const char *dest = a->pos[a->npos - 1];
  int n = a->npos - 2;
  if (!dest[0])
    return usage_error("restore: empty destination path");
  for (int i = 0; i < n; i++)
    if (!a->pos[1 + i][0])
      return usage_error("restore: empty backup path");
  int rc = cairn_restore(a->pos + 1, (size_t)n, dest, NULL);
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "restore %s", dest);
  return 0;
}

static const char *kind_text(uint32_t kind) {
  return kind == CAIRN_BACKUP_FULL          ? "full"
         : kind == CAIRN_BACKUP_INCREMENTAL ? "incremental"
                                            : "compact";
}

/* One backup file: its header fields, one "name: value" line each. */
static int print_backup(const char *path, int chain) {
  cairn_backup_info in;
  int rc = cairn_backup_verify(path, NULL, &in);
  if (rc != CAIRN_OK)
    return db_fail(exit_for(rc), rc, "verify %s", path);
  if (chain) {
    printf("backup: ");
    print_bytes(path, strlen(path), 0);
    printf("\n");
  }
  printf("kind: %s\npage_size: %u\ndb_id: ", kind_text(in.kind),
         (unsigned)in.page_size);
  for (int i = 0; i < 16; i++)
    printf("%02x", in.db_id[i]);
  printf("\nbase_txn_id: %llu\ntxn_id: %llu\ndb_pages: %llu\npages: %llu\n"
         "file_size: %llu\nsource: ",
         (unsigned long long)in.base_txn_id, (unsigned long long)in.txn_id,
         (unsigned long long)in.db_pages, (unsigned long long)in.pages,
         (unsigned long long)in.file_size);
  print_bytes(in.source, strlen(in.source), 0);
  printf("\n");
  return 0;
}

/* verify BACKUP [INCREMENTAL ...]: one file, or a chain as restore would
 * take it (every file, then the order, ids and page sizes). */
static int cmd_verify(session *s) {
  const args *a = s->a;
  int n = a->npos - 1, e;
  for (int i = 0; i < n; i++)
    if (!a->pos[1 + i][0])
      return usage_error("verify: empty backup path");
  if (n > 1) {
    int rc = cairn_backup_verify_chain(a->pos + 1, (size_t)n, NULL);
    if (rc != CAIRN_OK)
      return db_fail(exit_for(rc), rc, "verify");
  }
  for (int i = 0; i < n; i++) {
    if (i)
      printf("\n");
    if ((e = print_backup(a->pos[1 + i], n > 1)))
      return e;
  }
  printf("ok\n");
  return 0;
}

static int cmd_dump(session *s) {
  int e;
  if ((e = open_db(s, CAIRN_OPEN_RDONLY, 0)))
    return e;
  int rc = cairn_dump(s->db, write_stdout, NULL);
  if (rc != CAIRN_OK)
    return db_fail(EXIT_DBERR, rc, "dump %s", s->path);
  return 0;
}

/* stdin for cairn_load, after the first line the command already read. */
typedef struct load_in {
  char first[4096];
  size_t nfirst, at;
} load_in;

static int read_stdin(void *ctx, void *buf, size_t cap, size_t *got) {
  load_in *in = ctx;
  if (in->at < in->nfirst) {
    size_t k = in->nfirst - in->at < cap ? in->nfirst - in->at : cap;
    memcpy(buf, in->first + in->at, k);
    in->at += k;
    *got = k;
    return 0;
  }
  *got = fread(buf, 1, cap, stdin);
  return ferror(stdin) ? CAIRN_IO : 0;
}

static int cmd_load(session *s) {
  static load_in in;
  uint32_t page_size = 0;
  int c;
  /* The header line names the page size the dump came from; a database
   * that load creates gets the same one, so dump | load | dump is exact. */
  while (in.nfirst < sizeof in.first && (c = getchar()) != EOF) {
    in.first[in.nfirst++] = (char)c;
    if (c == '\n')
      break;
  }
  if (ferror(stdin))
    return fail(EXIT_DBERR, "load: reading standard input: %s",
                strerror(errno));
  const char *ps = NULL;
  for (size_t i = 0; i + 10 < in.nfirst && !ps; i++)
    if (memcmp(in.first + i, "page_size=", 10) == 0)
      ps = in.first + i + 10;
  if (ps) {
    uint64_t v = 0;
    while (*ps >= '0' && *ps <= '9' && v < (1u << 20))
      v = v * 10 + (uint64_t)(*ps++ - '0');
    if (v >= CAIRN_MIN_PAGE_SIZE && v <= CAIRN_MAX_PAGE_SIZE && !(v & (v - 1)))
      page_size = (uint32_t)v;
  }
  /* Create the database only if it is missing, and remember that we did:
   * a failed load then leaves no half-loaded file behind. */
  cairn_options o;
  cairn_options_init(&o);
  o.flags = 0;
  int created = 0;
  int rc = cairn_open(s->path, &o, &s->db);
  if (rc == CAIRN_NOTFOUND) {
    o.flags = CAIRN_OPEN_CREATE;
    if (page_size)
      o.page_size = page_size;
    rc = cairn_open(s->path, &o, &s->db);
    created = rc == CAIRN_OK;
  }
  if (rc != CAIRN_OK) {
    s->db = NULL;
    return db_fail(EXIT_DBERR, rc, "open %s", s->path);
  }
  rc = cairn_load(s->db, read_stdin, &in);
  if (rc != CAIRN_OK) {
    int code = db_fail(exit_for(rc) == EXIT_USAGE ? EXIT_DBERR : exit_for(rc),
                       rc, "load %s", s->path);
    if (created) {
      cairn_close(s->db);
      s->db = NULL;
      remove(s->path);
    }
    return code;
  }
  return 0;
}

/* ---- main ---------------------------------------------------------------- */

static const struct command_def {
  const char *name;
  int min_ops, max_ops; /* operands after the command, DB included */
  int options;          /* OPT_* bits it accepts */
  const char *synopsis; /* for "wrong number of arguments" errors */
} command_defs[] = {
    {"stat", 1, 1, OPT_HEX | OPT_JSON | OPT_PROMETHEUS,
     "stat DB [--json | --prometheus]"},
    {"get", 2, 2, OPT_CF | OPT_HEX, "get DB [--cf CF] KEY"},
    {"put", 3, 3, OPT_CF | OPT_PAGE_SIZE, "put DB [--cf CF] KEY VALUE"},
    {"del", 2, 2, OPT_CF, "del DB [--cf CF] KEY"},
    {"scan", 1, 1,
     OPT_CF | OPT_PREFIX | OPT_FROM | OPT_TO | OPT_REVERSE | OPT_LIMIT |
         OPT_HEX,
     "scan DB [--cf CF] [--prefix P | --from A --to B] [--reverse] "
     "[--limit N]"},
    {"cf", 2, 3, OPT_HEX, "cf DB list | create NAME | drop NAME"},
    {"check", 1, 1, 0, "check DB"},
    {"backup", 2, 2, OPT_COMPACT | OPT_INCR_FROM,
     "backup DB DEST [--compact] [--incremental-from PREVIOUS_BACKUP]"},
    {"restore", 2, MAX_POS - 1, 0, "restore BACKUP [INCREMENTAL ...] DEST"},
    {"verify", 1, MAX_POS - 1, 0, "verify BACKUP [INCREMENTAL ...]"},
    {"dump", 1, 1, 0, "dump DB > FILE"},
    {"load", 1, 1, 0, "load DB < FILE"},
};

static const char *option_name(int bit) {
  for (size_t k = 0; k < sizeof option_defs / sizeof option_defs[0]; k++)
    if (option_defs[k].bit == bit)
      return option_defs[k].name;
  return "?";
}

static int run(const args *a, session *s) {
  if (a->npos == 0)
    return usage_error("missing command");
  const struct command_def *cmd = NULL;
  for (size_t k = 0; k < sizeof command_defs / sizeof command_defs[0]; k++)
    if (strcmp(command_defs[k].name, a->pos[0]) == 0)
      cmd = &command_defs[k];
  if (!cmd)
    return usage_error("unknown command '%s'", a->pos[0]);
  int ops = a->npos - 1;
  if (ops < cmd->min_ops || ops > cmd->max_ops)
    return usage_error("%s: %s; usage: cairn %s", cmd->name,
                       ops < cmd->min_ops ? "missing arguments"
                                          : "too many arguments",
                       cmd->synopsis);
  int bad = a->seen & ~cmd->options;
  if (bad)
    return usage_error("option %s does not apply to %s",
                       option_name(bad & -bad), cmd->name);
  s->a = a;
  s->cmd = cmd->name;
  s->path = a->pos[1];
  if (s->path[0] == 0)
    return usage_error("%s: empty database path", cmd->name);
  const char *const *op = a->pos + 2;
  if (strcmp(cmd->name, "stat") == 0)
    return cmd_stat(s);
  if (strcmp(cmd->name, "get") == 0)
    return cmd_get(s, op[0]);
  if (strcmp(cmd->name, "put") == 0)
    return cmd_put(s, op[0], op[1]);
  if (strcmp(cmd->name, "del") == 0)
    return cmd_del(s, op[0]);
  if (strcmp(cmd->name, "scan") == 0)
    return cmd_scan(s);
  if (strcmp(cmd->name, "cf") == 0)
    return cmd_cf(s, op[0], ops == 3 ? op[1] : NULL);
  if (strcmp(cmd->name, "backup") == 0)
    return cmd_backup(s, op[0]);
  if (strcmp(cmd->name, "restore") == 0)
    return cmd_restore(s);
  if (strcmp(cmd->name, "verify") == 0)
    return cmd_verify(s);
  if (strcmp(cmd->name, "dump") == 0)
    return cmd_dump(s);
  if (strcmp(cmd->name, "load") == 0)
    return cmd_load(s);
  return cmd_check(s);
}

int main(int argc, char **argv) {
  args a;
  int code = parse_args(argc, argv, &a);
  if (code)
    return code;
  if (a.seen & OPT_HELP) {
    fputs(help_text, stdout);
    return fflush(stdout) == 0 ? 0 : EXIT_DBERR;
  }
  if (a.seen & OPT_VERSION) {
    printf("cairn %s\n", CAIRN_VERSION_STRING);
    return fflush(stdout) == 0 ? 0 : EXIT_DBERR;
  }
  session s;
  memset(&s, 0, sizeof s);
  code = run(&a, &s);
  /* Release in reverse order of acquisition. A failed command has already
   * printed its one line, so later cleanup errors stay quiet. */
  if (s.cur)
    cairn_cursor_close(s.cur);
  cairn_abort(s.txn);
  if (s.db) {
    int rc = cairn_close(s.db);
    if (rc != CAIRN_OK && code == 0)
      code = db_fail(EXIT_DBERR, rc, "close %s", s.path);
  }
  for (size_t i = 0; i < sizeof s.b / sizeof s.b[0]; i++)
    free(s.b[i].data);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    if (code == 0)
      code = fail(EXIT_DBERR, "write error on standard output: %s",
                  strerror(errno));
  }
  return code;
}
