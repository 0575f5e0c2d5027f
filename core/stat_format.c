/*
 * stat_format.c — cairn_stat_write: database statistics, per column family
 * statistics and this handle's metrics as one JSON object or as Prometheus
 * text exposition format (version 0.0.4), through a write callback, so the
 * CLI (`cairn stat --json | --prometheus`) and a server print the same thing.
 *
 * Invariant: every metric appears in both formats under one name
 * (JSON key "puts" <-> cairn_puts_total), the output depends only on the
 * numbers, and every string (a column family name, the platform) is printed
 * with one rule: as text when it is valid UTF-8 without control characters
 * and does not start with "0x", otherwise as 0x-hex — the CLI's rule — then
 * escaped for the format, so any name yields well-formed output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "ops.h"

typedef struct out {
  cairn_write_fn write;
  void *ctx;
  int rc;
} out;

static void put(out *o, const char *s, size_t n) {
  if (o->rc || !n)
    return;
  o->rc = ops_cb_status(o->write(o->ctx, s, n), "output");
}

static void outf(out *o, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static void outf(out *o, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0)
    put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Valid UTF-8, no C0/C1 control characters or DEL, not starting "0x". */
static int is_text(const unsigned char *p, size_t n) {
  if (n >= 2 && p[0] == '0' && p[1] == 'x')
    return 0;
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f)
        return 0;
      i++;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0)
      len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
      len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
      len = 4, cp = c & 0x07, min = 0x10000;
    else
      return 0;
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

/* A string as text or 0x-hex, with '\\' and '"' escaped (the only two
 * characters JSON strings and Prometheus label values both need escaped
 * once control characters are excluded). */
static void put_name(out *o, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  if (!is_text(p, n)) {
    static const char d[] = "0123456789abcdef";
    put(o, "0x", 2);
    for (size_t i = 0; i < n; i++) {
      char h[2] = {d[p[i] >> 4], d[p[i] & 15]};
      put(o, h, 2);
    }
    return;
  }
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\\' || p[i] == '"') {
      put(o, s + start, i - start);
      put(o, p[i] == '\\' ? "\\\\" : "\\\"", 2);
      start = i + 1;
    }
  }
  put(o, s + start, n - start);
}

/* ---- gathering ---------------------------------------------------------- */

typedef struct gathered {
  cairn_db_stat db;
  cairn_metrics m;
  ops_cfs cfs;
  cairn_cf_stat *cf; /* one per cfs entry */
} gathered;

static void gathered_free(gathered *g) {
  ops_cfs_free(&g->cfs);
  free(g->cf);
}

static int gather(cairn_db *db, gathered *g) {
  /* The database statistics first, before this function's own snapshot
   * would show up in them as a live reader. */
  int rc = cairn_db_stat_get(db, &g->db);
  if (rc)
    return rc;
  cairn_txn *txn;
  if ((rc = cairn_begin(db, CAIRN_TXN_RDONLY, &txn)) != CAIRN_OK)
    return rc;
  rc = ops_cfs_get(txn, &g->cfs);
  if (!rc && !(g->cf = calloc(g->cfs.n + 1, sizeof *g->cf)))
    rc = cairn__seterr(CAIRN_NOMEM, "out of memory");
  for (size_t i = 0; i < g->cfs.n && !rc; i++)
    rc = cairn_cf_stat_get(txn, g->cfs.cf[i], &g->cf[i]);
  cairn_abort(txn);
  if (!rc)
    rc = cairn_metrics_get(db, &g->m);
  return rc;
}

/* ---- the metrics, once, for both formats -------------------------------- */

typedef struct counter_def {
  const char *key; /* JSON key; Prometheus name is cairn_<key>[_total] */
  int is_counter;  /* monotonic (Prometheus counter, "_total") or gauge */
  const char *help;
  size_t off;
} counter_def;

#define M(f, c, h)                                                             \
  { #f, c, h, offsetof(cairn_metrics, f) }
static const counter_def counters[] = {
    M(gets, 1, "Point lookups (cairn_get)."),
    M(get_misses, 1, "Point lookups that found no key."),
    M(puts, 1, "Puts (cairn_put)."),
    M(dels, 1, "Deletes (cairn_del)."),
    M(commits, 1, "Write transactions committed with changes."),
    M(commits_sync, 1, "Commits that were durable on return."),
    M(commits_lazy, 1, "Commits made durable later (lazy durability)."),
    M(commits_empty, 1, "Commits with nothing to write."),
    M(aborts, 1, "Write transactions aborted."),
    M(syncs, 1, "Durable points: sync commits and lazy-mode syncs."),
    M(pages_written, 1, "Pages written by commits."),
    M(bytes_written, 1, "Bytes written by commits."),
    M(last_commit_pages, 0, "Pages written by the newest commit."),
    M(last_commit_bytes, 0, "Bytes written by the newest commit."),
    M(pages_allocated_new, 1, "Pages added at the end of the file."),
    M(pages_reused, 1, "Page allocations served by the free list."),
    M(pages_freed, 1, "Pages released by commits."),
    M(cache_hits, 1, "Page cache hits (cached mode)."),
    M(cache_misses, 1, "Page cache misses (cached mode)."),
    M(cache_evictions, 1, "Page cache evictions (cached mode)."),
    M(checkpoints, 1, "Checkpoints (reserved for the write-ahead log)."),
};
#undef M

static uint64_t field(const cairn_metrics *m, size_t off) {
  uint64_t v;
  memcpy(&v, (const char *)m + off, sizeof v);
  return v;
}

typedef struct latency_def {
  const char *key;
  const char *help;
  size_t off;
} latency_def;

static const latency_def latencies[] = {
    {"get", "Latency of sampled cairn_get calls.",
     offsetof(cairn_metrics, get)},
    {"put", "Latency of sampled cairn_put calls.",
     offsetof(cairn_metrics, put)},
    {"commit", "Latency of commits.", offsetof(cairn_metrics, commit)},
    {"sync", "Latency of syncs.", offsetof(cairn_metrics, sync)},
};

static const cairn_latency *lat(const cairn_metrics *m, size_t off) {
  return (const cairn_latency *)(const void *)((const char *)m + off);
}

/* ---- JSON --------------------------------------------------------------- */

static void json(out *o, const gathered *g) {
  const cairn_db_stat *s = &g->db;
  outf(o, "{\n  \"version\": \"%s\",\n  \"db\": {\n", CAIRN_VERSION_STRING);
  outf(o,
       "    \"page_size\": %u,\n    \"file_size\": %llu,\n"
       "    \"log_size\": %llu,\n    \"overlay_bytes\": %llu,\n"
       "    \"page_count\": %llu,\n    \"pages_in_use\": %llu,\n"
       "    \"pages_free\": %llu,\n    \"last_txn_id\": %llu,\n"
       "    \"durable_txn_id\": %llu,\n    \"snapshots\": %llu,\n",
       (unsigned)s->page_size, (unsigned long long)s->file_size,
       (unsigned long long)s->log_size, (unsigned long long)s->overlay_bytes,
       (unsigned long long)s->page_count, (unsigned long long)s->pages_in_use,
       (unsigned long long)s->pages_free, (unsigned long long)s->last_txn_id,
       (unsigned long long)s->durable_txn_id, (unsigned long long)s->snapshots);
  outf(o,
       "    \"oldest_snapshot_id\": %llu,\n    \"pages_pinned\": %llu,\n"
       "    \"column_families\": %u,\n    \"mapped\": %s,\n"
       "    \"platform\": \"",
       (unsigned long long)s->oldest_snapshot_id,
       (unsigned long long)s->pages_pinned, (unsigned)s->column_families,
       s->mapped ? "true" : "false");
  put_name(o, s->platform ? s->platform : "");
  outf(o, "\"\n  },\n  \"column_families\": [");
  for (size_t i = 0; i < g->cfs.n; i++) {
    const cairn_cf_stat *c = &g->cf[i];
    outf(o, "%s\n    {\"name\": \"", i ? "," : "");
    put_name(o, g->cfs.name[i]);
    outf(o,
         "\", \"entries\": %llu, \"depth\": %u, \"branch_pages\": %llu, "
         "\"leaf_pages\": %llu, \"overflow_pages\": %llu}",
         (unsigned long long)c->entries, (unsigned)c->depth,
         (unsigned long long)c->branch_pages, (unsigned long long)c->leaf_pages,
         (unsigned long long)c->overflow_pages);
  }
  outf(o, "%s],\n  \"metrics\": {\n", g->cfs.n ? "\n  " : "");
  for (size_t i = 0; i < sizeof counters / sizeof *counters; i++)
    outf(o, "    \"%s\": %llu,\n", counters[i].key,
         (unsigned long long)field(&g->m, counters[i].off));
  outf(o, "    \"latency_ns\": {");
  for (size_t i = 0; i < sizeof latencies / sizeof *latencies; i++) {
    const cairn_latency *l = lat(&g->m, latencies[i].off);
    outf(o,
         "%s\n      \"%s\": {\"count\": %llu, \"mean\": %llu, \"p50\": %llu, "
         "\"p99\": %llu, \"p999\": %llu, \"max\": %llu}",
         i ? "," : "", latencies[i].key, (unsigned long long)l->count,
         (unsigned long long)l->mean_ns, (unsigned long long)l->p50_ns,
         (unsigned long long)l->p99_ns, (unsigned long long)l->p999_ns,
         (unsigned long long)l->max_ns);
  }
  outf(o, "\n    }\n  }\n}\n");
}

/* ---- Prometheus --------------------------------------------------------- */

static void help_type(out *o, const char *name, const char *help,
                      const char *type) {
  outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(out *o, const char *name, const char *help, uint64_t v) {
  help_type(o, name, help, "gauge");
  outf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void seconds(out *o, uint64_t ns) {
  outf(o, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
       (unsigned long long)(ns % 1000000000u));
}

static void prometheus(out *o, const gathered *g) {
  const cairn_db_stat *s = &g->db;
  help_type(o, "cairn_info", "Version and platform of this cairn database.",
            "gauge");
  outf(o, "cairn_info{version=\"%s\",platform=\"", CAIRN_VERSION_STRING);
  put_name(o, s->platform ? s->platform : "");
  outf(o, "\"} 1\n");
  gauge(o, "cairn_page_size_bytes", "Page size of the database file.",
        s->page_size);
  gauge(o, "cairn_file_size_bytes", "Size of the database file.", s->file_size);
  gauge(o, "cairn_log_size_bytes",
        "Size of the write-ahead log file (0 without one).", s->log_size);
  gauge(o, "cairn_overlay_bytes",
        "Memory holding the commits since the last checkpoint.",
        s->overlay_bytes);
  gauge(o, "cairn_pages", "Pages the file holds (high-water mark).",
        s->page_count);
  gauge(o, "cairn_pages_in_use", "Pages reachable from the newest commit.",
        s->pages_in_use);
  gauge(o, "cairn_pages_free",
        "Free pages (reusable now or once "
        "snapshots end).",
        s->pages_free);
  gauge(o, "cairn_pages_pinned",
        "Freed pages kept alive by the oldest snapshot.", s->pages_pinned);
  gauge(o, "cairn_last_txn_id", "Id of the newest commit.", s->last_txn_id);
  gauge(o, "cairn_durable_txn_id", "Id of the newest durable commit.",
        s->durable_txn_id);
  gauge(o, "cairn_snapshots", "Live read transactions.", s->snapshots);
  gauge(o, "cairn_oldest_snapshot_id",
        "Id of the oldest live snapshot (0 when none).", s->oldest_snapshot_id);
  gauge(o, "cairn_column_families", "Column families.", s->column_families);
  gauge(o, "cairn_mapped", "1 if reads come from a memory map.",
        (uint64_t)(s->mapped != 0));
  static const struct {
    const char *name, *help, *label;
  } cfm[] = {
      {"cairn_cf_entries", "Entries in a column family.", NULL},
      {"cairn_cf_depth", "Tree depth of a column family (0 when empty).", NULL},
      {"cairn_cf_pages", "Pages of a column family's tree, by kind.", "branch"},
  };
  for (size_t k = 0; k < 3; k++) {
    help_type(o, cfm[k].name, cfm[k].help, "gauge");
    for (size_t i = 0; i < g->cfs.n; i++) {
      const cairn_cf_stat *c = &g->cf[i];
      static const char *kinds[] = {"branch", "leaf", "overflow"};
      uint64_t pages[3] = {c->branch_pages, c->leaf_pages, c->overflow_pages};
      for (size_t t = 0; t < (cfm[k].label ? 3u : 1u); t++) {
        outf(o, "%s{cf=\"", cfm[k].name);
        put_name(o, g->cfs.name[i]);
        if (cfm[k].label)
          outf(o, "\",kind=\"%s\"} %llu\n", kinds[t],
               (unsigned long long)pages[t]);
        else
          outf(o, "\"} %llu\n",
               (unsigned long long)(k == 0 ? c->entries : c->depth));
      }
    }
  }
  for (size_t i = 0; i < sizeof counters / sizeof *counters; i++) {
    char name[96];
    snprintf(name, sizeof name, "cairn_%s%s", counters[i].key,
             counters[i].is_counter ? "_total" : "");
    help_type(o, name, counters[i].help,
              counters[i].is_counter ? "counter" : "gauge");
    outf(o, "%s %llu\n", name,
         (unsigned long long)field(&g->m, counters[i].off));
  }
  for (size_t i = 0; i < sizeof latencies / sizeof *latencies; i++) {
    const cairn_latency *l = lat(&g->m, latencies[i].off);
    char name[96];
    snprintf(name, sizeof name, "cairn_%s_latency_seconds", latencies[i].key);
    help_type(o, name, latencies[i].help, "summary");
    static const char *q[] = {"0.5", "0.99", "0.999"};
    uint64_t qv[3] = {l->p50_ns, l->p99_ns, l->p999_ns};
    for (int k = 0; k < 3; k++) {
      outf(o, "%s{quantile=\"%s\"} ", name, q[k]);
      seconds(o, qv[k]);
      put(o, "\n", 1);
    }
    outf(o, "%s_sum ", name);
    seconds(o, l->mean_ns * l->count); /* the histogram keeps the mean */
    outf(o, "\n%s_count %llu\n", name, (unsigned long long)l->count);
    snprintf(name, sizeof name, "cairn_%s_latency_max_seconds",
             latencies[i].key);
    help_type(o, name, "Slowest timed call.", "gauge");
    outf(o, "%s ", name);
    seconds(o, l->max_ns);
    put(o, "\n", 1);
  }
}

int cairn_stat_write(cairn_db *db, int format, cairn_write_fn write,
                     void *ctx) {
  if (!db || !write)
    return cairn__seterr(CAIRN_INVALID, "cairn_stat_write: db or write NULL");
  if (format != CAIRN_STAT_JSON && format != CAIRN_STAT_PROMETHEUS)
    return cairn__seterr(CAIRN_INVALID, "cairn_stat_write: unknown format %d",
                         format);
  gathered g;
  memset(&g, 0, sizeof g);
  int rc = gather(db, &g);
  if (!rc) {
    out o = {write, ctx, CAIRN_OK};
    if (format == CAIRN_STAT_JSON)
      json(&o, &g);
    else
      prometheus(&o, &g);
    rc = o.rc;
  }
  gathered_free(&g);
  if (!rc)
    cairn__clearerr();
  return rc;
}
