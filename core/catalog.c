/*
 * catalog.c — column families: a tree of name -> record inside the file,
 * plus the process-wide map from handle (a persistent id) to name.
 *
 * Record (32 bytes, little-endian): u32 id, u32 depth, u64 root,
 * u64 entries, u64 reserved. Ids are never reused (meta.next_cf_id, and
 * within one handle not even ids of aborted creates), so a handle to a
 * dropped column family can never silently reach a new one. "default" (id 0)
 * always exists; it has no record until it first holds data.
 *
 * Creates and drops change the catalog tree at once (so cf_list inside the
 * txn sees them); root and entry counts of modified column families are
 * folded in at commit (catalog_flush), not on every put.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

static void encode(const cf_state *s, uint8_t *rec) {
  memset(rec, 0, CF_RECORD_SIZE);
  st32(rec, s->id);
  st32(rec + 4, s->depth);
  st64(rec + 8, s->root);
  st64(rec + 16, s->entries);
}

void catalog_decode(const uint8_t *rec, cf_state *out) {
  out->id = ld32(rec);
  out->depth = ld32(rec + 4);
  out->root = ld64(rec + 8);
  out->entries = ld64(rec + 16);
}

int catalog_load_cf(cairn_txn *txn, const char *name, size_t namelen,
                    cf_state *out, int *found) {
  cairn_slice v;
  *found = 0;
  int rc = btree_get(txn, &txn->catalog, (const uint8_t *)name, namelen, &v);
  if (rc == CAIRN_NOTFOUND)
    return CAIRN_OK;
  if (rc)
    return rc;
  if (v.size != CF_RECORD_SIZE)
    return cairn__seterr(CAIRN_CORRUPT,
                         "catalog record of '%.*s' has %zu bytes", (int)namelen,
                         name, v.size);
  catalog_decode(v.data, out);
  if (out->depth > MAX_DEPTH || (out->root == 0) != (out->depth == 0) ||
      out->root >= txn->snap.page_count || out->root == 1)
    return cairn__seterr(
        CAIRN_CORRUPT,
        "catalog record of '%.*s' is inconsistent (root page %llu, depth %u, "
        "%llu pages in the file)",
        (int)namelen, name, (unsigned long long)out->root, (unsigned)out->depth,
        (unsigned long long)txn->snap.page_count);
  *found = 1;
  return CAIRN_OK;
}

int catalog_flush(cairn_txn *txn) {
  for (size_t i = 0; i < txn->ncfs; i++) {
    cf_state *s = txn->cfs[i];
    if (!s->dirty || s->dropped)
      continue;
    uint8_t rec[CF_RECORD_SIZE];
    encode(s, rec);
    int rc = btree_put(txn, &txn->catalog, (const uint8_t *)s->name, s->namelen,
                       rec, CF_RECORD_SIZE, 0);
    if (rc)
      return rc;
    s->dirty = 0;
  }
  txn->snap.catalog_root = txn->catalog.root;
  txn->snap.catalog_depth = txn->catalog.depth;
  txn->snap.catalog_entries = txn->catalog.entries;
  return CAIRN_OK;
}

/* Caller holds db->meta_mu. */
const char *catalog_name_of(cairn_db *db, uint32_t id, size_t *namelen) {
  for (size_t i = 0; i < db->nnames; i++)
    if (db->names[i].id == id) {
      *namelen = db->names[i].namelen;
      return db->names[i].name;
    }
  return NULL;
}

int catalog_register(cairn_db *db, uint32_t id, const char *name,
                     size_t namelen) {
  int rc = CAIRN_OK;
  size_t dummy;
  cairn_mutex_lock(&db->meta_mu);
  if (!catalog_name_of(db, id, &dummy)) {
    if (db->nnames == db->capnames) {
      size_t cap = db->capnames ? db->capnames * 2 : 8;
      cf_name *n = realloc(db->names, cap * sizeof *n);
      if (!n)
        rc = cairn__seterr(CAIRN_NOMEM, "out of memory");
      else {
        db->names = n;
        db->capnames = cap;
      }
    }
    if (!rc) {
      cf_name *e = &db->names[db->nnames++];
      e->id = id;
      e->namelen = (uint8_t)namelen;
      memcpy(e->name, name, namelen);
      e->name[namelen] = 0;
    }
  }
  cairn_mutex_unlock(&db->meta_mu);
  return rc;
}

static int check_name(const char *name, size_t *len) {
  if (!name)
    return cairn__seterr(CAIRN_INVALID, "column family name is NULL");
  *len = strlen(name);
  if (*len == 0 || *len > CAIRN_MAX_CF_NAME)
    return cairn__seterr(CAIRN_INVALID,
                         "column family name must be 1..%u bytes (got %zu)",
                         CAIRN_MAX_CF_NAME, *len);
  return CAIRN_OK;
}

int cairn_cf_open(cairn_txn *txn, const char *name, unsigned flags,
                  cairn_cf *out) {
  size_t len = 0;
  int rc = txn_check_live(txn);
  if (!rc && !out)
    rc = cairn__seterr(CAIRN_INVALID, "cairn_cf_open: out is NULL");
  if (!rc && (flags & ~CAIRN_CF_CREATE))
    rc = cairn__seterr(CAIRN_INVALID, "cairn_cf_open: unknown flags 0x%x",
                       flags);
  if (!rc)
    rc = check_name(name, &len);
  if (rc)
    return rc;
  if (len == 7 && memcmp(name, "default", 7) == 0) {
    *out = CAIRN_DEFAULT_CF;
    cairn__clearerr();
    return CAIRN_OK;
  }
  for (size_t i = 0; i < txn->ncfs; i++) {
    cf_state *s = txn->cfs[i];
    if (!s->dropped && s->namelen == len && memcmp(s->name, name, len) == 0) {
      *out = s->id;
      cairn__clearerr();
      return CAIRN_OK;
    }
  }
  cf_state *s = calloc(1, sizeof *s);
  if (!s)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  int found, created = 0;
  rc = catalog_load_cf(txn, name, len, s, &found);
  if (!rc && !found) {
    if (!(flags & CAIRN_CF_CREATE))
      rc = cairn__seterr(CAIRN_NOTFOUND, "column family '%s' does not exist",
                         name);
    else if (txn->rdonly)
      rc = cairn__seterr(CAIRN_READONLY,
                         "cannot create column family '%s' in a read-only "
                         "transaction",
                         name);
    else if (txn->snap.next_cf_id >= CATALOG_CF_ID ||
             txn->db->next_cf_id >= CATALOG_CF_ID)
      rc = cairn__seterr(CAIRN_TOOBIG, "column family ids exhausted");
    else if ((rc = txn_rebase(txn)) != CAIRN_OK)
      ; /* a background checkpoint's fold failed again: nothing changed */
    else {
      memset(s, 0, sizeof *s);
      uint64_t id = txn->snap.next_cf_id;
      if (id < txn->db->next_cf_id)
        id = txn->db->next_cf_id;
      s->id = (uint32_t)(id ? id : 1);
      txn->snap.next_cf_id = s->id + 1ull;
      txn->db->next_cf_id = s->id + 1ull;
      s->dirty = 1;
      uint8_t rec[CF_RECORD_SIZE];
      encode(s, rec);
      rc = btree_put(txn, &txn->catalog, (const uint8_t *)name, len, rec,
                     CF_RECORD_SIZE, 0);
      created = 1;
    }
  }
  if (!rc && s->id == CAIRN_DEFAULT_CF)
    rc =
        cairn__seterr(CAIRN_CORRUPT, "catalog gives '%s' the default id", name);
  if (!rc) {
    memcpy(s->name, name, len);
    s->name[len] = 0;
    s->namelen = (uint8_t)len;
    rc = catalog_register(txn->db, s->id, name, len);
  }
  if (!rc && created)
    rc = wal_log_op(txn, WAL_CF_CREATE, s, NULL, 0, NULL, 0);
  if (!rc) {
    /* add to the txn's table (txn_cf's helper is static there) */
    cf_state **n = realloc(txn->cfs, (txn->ncfs + 1) * sizeof *n);
    if (!n)
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory");
    else {
      txn->cfs = n;
      txn->capcfs = txn->ncfs + 1;
      txn->cfs[txn->ncfs++] = s;
      *out = s->id;
      txn->gen++;
      cairn__clearerr();
      return CAIRN_OK;
    }
  }
  free(s);
  return txn_fail(txn, rc);
}

int cairn_cf_drop(cairn_txn *txn, cairn_cf cf) {
  int rc = txn_check_live(txn);
  if (rc)
    return rc;
  if (txn->rdonly)
    return cairn__seterr(CAIRN_READONLY,
                         "cannot drop a column family in a read-only txn");
  if (cf == CAIRN_DEFAULT_CF)
    return cairn__seterr(CAIRN_INVALID,
                         "the default column family cannot be dropped");
  if ((rc = txn_rebase(txn)) != CAIRN_OK) /* pages change below */
    return rc;
  cf_state *s = txn_cf(txn, cf, &rc);
  if (!s)
    return rc;
  if (s->ncursors)
    return cairn__seterr(CAIRN_INUSE,
                         "column family '%s' has %d open cursor(s) in this "
                         "transaction",
                         s->name, s->ncursors);
  rc = btree_free_all(txn, s);
  if (!rc)
    rc = btree_del(txn, &txn->catalog, (const uint8_t *)s->name, s->namelen);
  if (rc == CAIRN_NOTFOUND) /* created and never flushed cannot happen: */
    rc = CAIRN_OK;          /* creation writes the record at once */
  if (!rc)
    rc = wal_log_op(txn, WAL_CF_DROP, s, NULL, 0, NULL, 0);
  if (rc)
    return txn_fail(txn, rc);
  s->dropped = 1;
  s->dirty = 0;
  txn->gen++;
  cairn__clearerr();
  return CAIRN_OK;
}

int cairn_cf_list(cairn_txn *txn,
                  int (*fn)(void *ctx, const char *name, cairn_cf cf),
                  void *ctx) {
  int rc = txn_check_live(txn);
  if (rc)
    return rc;
  if (!fn)
    return cairn__seterr(CAIRN_INVALID, "cairn_cf_list: fn is NULL");
  tree_pos pos = {0};
  int default_done = 0;
  char name[CAIRN_MAX_CF_NAME + 1];
  rc = tree_first(txn, &txn->catalog, &pos);
  while (rc == CAIRN_OK) {
    const uint8_t *e;
    rc = tree_entry(txn, &pos, &e);
    if (rc)
      break;
    uint32_t klen = leaf_klen(e);
    if (klen == 0 || klen > CAIRN_MAX_CF_NAME || leaf_vlen(e) != CF_RECORD_SIZE)
      return cairn__seterr(CAIRN_CORRUPT, "bad catalog entry");
    memcpy(name, leaf_key(e), klen);
    name[klen] = 0;
    cairn_slice v;
    rc = btree_entry_value(txn, e, &v);
    if (rc)
      break;
    cf_state s;
    catalog_decode(v.data, &s);
    int cmp = strcmp(name, "default");
    if (!default_done && cmp >= 0) {
      default_done = 1;
      if (cmp > 0) {
        int r = fn(ctx, "default", CAIRN_DEFAULT_CF);
        if (r)
          return r;
      }
    }
    if (s.id != CAIRN_DEFAULT_CF) {
      rc = catalog_register(txn->db, s.id, name, klen);
      if (rc)
        return rc;
    }
    int r = fn(ctx, name, cmp == 0 ? CAIRN_DEFAULT_CF : s.id);
    if (r)
      return r;
    rc = tree_next(txn, &pos);
  }
  if (rc != CAIRN_NOTFOUND)
    return rc;
  if (!default_done) {
    int r = fn(ctx, "default", CAIRN_DEFAULT_CF);
    if (r)
      return r;
  }
  cairn__clearerr();
  return CAIRN_OK;
}
