/*
 * wal.c — the write-ahead log: a commit's logical changes, appended to
 * "<database>-wal" and synced, make the commit durable without writing its
 * tree pages (those wait in the deferred page table for a checkpoint).
 *
 * File: a header in the first 512 bytes, then records back to back.
 *   header: "cairnWAL" | u32 version | u32 0 | db id[16] | u64 base txn |
 *           u64 salt | u32 pad ... | u32 crc32c of bytes 0..59 at 60
 *   record: u32 crc32c of bytes 4..end | u32 body length | u64 txn id |
 *           u64 salt | u64 newest txn id synced before it | body
 *   body:   ops, each u8 kind | u8 cf name length | cf name (empty =
 *           default) | for put/del u16 key length | key | for put
 *           u32 value length | value
 * Invariant: the records after the header carry consecutive txn ids and the
 * header's salt; a synced checkpoint writes a new header (new salt, base =
 * the checkpoint's txn) before any record that follows it — at once, or
 * (after a commit that folded itself, which leaves no record behind) with
 * the next record, under the same sync. A lazy one keeps
 * the log as it is: its meta page is not durable yet, so the records it
 * folded are still the ones a crash replays. Recovery replays the
 * records newer than the database's meta page, in order, and stops at the
 * first record that is torn, foreign (old salt) or out of sequence — so what
 * it replays is always a prefix of the commits, and contains every commit
 * whose log sync returned.
 */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "engine.h"
#include "error.h"

#define WAL_MAGIC "cairnWAL"
#define WAL_VERSION 1u

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Write a new header (new salt) for records following base. */
static int write_header(wal *w, const uint8_t db_id[16], uint64_t base) {
  uint8_t h[WAL_HDR];
  memset(h, 0, sizeof h);
  memcpy(h, WAL_MAGIC, 8);
  st32(h + 8, WAL_VERSION);
  memcpy(h + 16, db_id, 16);
  st64(h + 32, base);
  uint64_t salt = mix(w->salt ^ base ^ metrics_now_ns()) | 1;
  st64(h + 40, salt);
  st32(h + 60, cairn_crc32c(0, h, 60));
  cairn_file *f = w->file;
  int rc = f->methods->write(f, h, sizeof h, 0);
  if (rc)
    return rc;
  w->salt = salt;
  w->header_due = 0;
  return CAIRN_OK;
}

int wal_reset(wal *w, const uint8_t db_id[16], uint64_t base) {
  int rc = write_header(w, db_id, base);
  if (!rc)
    rc = w->file->methods->sync(w->file);
  if (rc)
    return rc;
  w->base = base;
  w->pos = WAL_HDR;
  w->unsynced = 0;
  w->last_txnid = w->synced_txnid = base;
  return CAIRN_OK;
}

void wal_reset_later(wal *w, const uint8_t db_id[16], uint64_t base) {
  memcpy(w->db_id, db_id, 16);
  w->header_due = 1;
  w->base = base;
  w->pos = WAL_HDR;
  w->unsynced = 0;
  w->last_txnid = w->synced_txnid = base;
}

int wal_append(wal *w, uint64_t txnid, uint8_t *rec, size_t body) {
  /* A header written late shares the record's sync: torn, either one
   * leaves a log that replays nothing (a record with the new salt after
   * the old header is foreign), and the record had not been acknowledged. */
  if (w->header_due) {
    int rc = write_header(w, w->db_id, w->base);
    if (rc)
      return rc;
  }
  st32(rec + 4, (uint32_t)body);
  st64(rec + 8, txnid);
  st64(rec + 16, w->salt);
  st64(rec + 24, w->synced_txnid);
  st32(rec, cairn_crc32c(0, rec + 4, WAL_REC_HDR - 4 + body));
  cairn_file *f = w->file;
  int rc = f->methods->write(f, rec, WAL_REC_HDR + body, w->pos);
  if (rc)
    return rc; /* the next record overwrites whatever part got written */
  w->pos += WAL_REC_HDR + body;
  w->unsynced = 1;
  w->last_txnid = txnid;
  return CAIRN_OK;
}

int wal_sync(wal *w) {
  if (!w->unsynced)
    return CAIRN_OK;
  int rc = w->file->methods->sync(w->file);
  if (!rc) {
    w->unsynced = 0;
    w->synced_txnid = w->last_txnid;
  }
  return rc;
}

/* ---- the body of a record: built by the write txn ----------------------- */

static int reserve(cairn_txn *txn, size_t more) {
  size_t need = txn->loglen + more;
  if (need <= txn->logcap)
    return CAIRN_OK;
  size_t cap = txn->logcap ? txn->logcap : 4096;
  while (cap < need)
    cap *= 2;
  uint8_t *n = realloc(txn->log, cap);
  if (!n)
    return cairn__seterr(CAIRN_NOMEM, "out of memory logging the commit");
  txn->log = n;
  txn->logcap = cap;
  if (!txn->loglen)
    txn->loglen = WAL_REC_HDR; /* room for the record header */
  return CAIRN_OK;
}

int wal_log_op(cairn_txn *txn, int kind, const cf_state *cf, const uint8_t *key,
               size_t klen, const uint8_t *val, size_t vlen) {
  if (!txn->db->wal_on || txn->db->replaying)
    return CAIRN_OK;
  size_t nlen = cf && cf->id != CAIRN_DEFAULT_CF ? cf->namelen : 0;
  size_t more = 2 + nlen + (kind <= WAL_DEL ? 2 + klen : 0) +
                (kind == WAL_PUT ? 4 + vlen : 0);
  int rc = reserve(txn, more + WAL_REC_HDR);
  if (rc)
    return txn_fail(txn, rc);
  uint8_t *p = txn->log + txn->loglen;
  *p++ = (uint8_t)kind;
  *p++ = (uint8_t)nlen;
  if (nlen)
    memcpy(p, cf->name, nlen);
  p += nlen;
  if (kind <= WAL_DEL) {
    st16(p, (uint16_t)klen);
    if (klen)
      memcpy(p + 2, key, klen);
    p += 2 + klen;
  }
  if (kind == WAL_PUT) {
    st32(p, (uint32_t)vlen);
    if (vlen)
      memcpy(p + 4, val, vlen);
    p += 4 + vlen;
  }
  txn->loglen = (size_t)(p - txn->log);
  return CAIRN_OK;
}

/* ---- recovery ------------------------------------------------------------ */

static int bad_record(uint64_t txnid, const char *why) {
  return cairn__seterr(CAIRN_CORRUPT, "log record of txn %llu: %s",
                       (unsigned long long)txnid, why);
}

/* Apply one record's ops through the public API inside txn. */
static int apply_body(cairn_txn *txn, uint64_t txnid, const uint8_t *p,
                      size_t n) {
  const uint8_t *end = p + n;
  while (p < end) {
    if (end - p < 2)
      return bad_record(txnid, "truncated op");
    int kind = p[0];
    size_t nlen = p[1];
    p += 2;
    char name[CAIRN_MAX_CF_NAME + 1];
    if (nlen > CAIRN_MAX_CF_NAME || (size_t)(end - p) < nlen)
      return bad_record(txnid, "bad column family name");
    memcpy(name, p, nlen);
    name[nlen] = 0;
    p += nlen;
    cairn_slice key = {NULL, 0}, val = {NULL, 0};
    if (kind == WAL_PUT || kind == WAL_DEL) {
      if (end - p < 2)
        return bad_record(txnid, "truncated key");
      key.size = ld16(p);
      key.data = p + 2;
      if ((size_t)(end - p) < 2 + key.size)
        return bad_record(txnid, "truncated key");
      p += 2 + key.size;
    }
    if (kind == WAL_PUT) {
      if (end - p < 4)
        return bad_record(txnid, "truncated value");
      val.size = ld32(p);
      val.data = p + 4;
      if ((size_t)(end - p) - 4 < val.size)
        return bad_record(txnid, "truncated value");
      p += 4 + val.size;
    }
    cairn_cf cf = CAIRN_DEFAULT_CF;
    int rc = CAIRN_OK;
    if (nlen)
      rc = cairn_cf_open(txn, name, kind == WAL_CF_CREATE ? CAIRN_CF_CREATE : 0,
                         &cf);
    else if (kind == WAL_CF_CREATE || kind == WAL_CF_DROP)
      return bad_record(txnid, "column family op without a name");
    if (!rc) {
      switch (kind) {
      case WAL_PUT: rc = cairn_put(txn, cf, key, val, 0); break;
      case WAL_DEL: rc = cairn_del(txn, cf, key); break;
      case WAL_CF_CREATE: break;
      case WAL_CF_DROP: rc = cairn_cf_drop(txn, cf); break;
      default: return bad_record(txnid, "unknown op");
      }
    }
    if (rc)
      return rc == CAIRN_NOTFOUND || rc == CAIRN_EXISTS
                 ? bad_record(txnid, "does not apply to the database "
                                     "(log and database file do not match)")
                 : rc;
  }
  return CAIRN_OK;
}

/* Is there a whole, valid record of txnid at pos that was written after
 * a sync covering `damaged`? Then the damaged record had been durable: the
 * log is corrupt, not torn (unsynced records may survive a crash in any
 * combination, so a valid record after a torn unsynced one proves
 * nothing). */
static int synced_after(cairn_file *f, uint64_t pos, uint64_t size,
                        uint64_t salt, uint64_t txnid, uint64_t damaged) {
  uint8_t h[WAL_REC_HDR];
  if (pos + WAL_REC_HDR > size || f->methods->read(f, h, sizeof h, pos))
    return 0;
  uint64_t len = ld32(h + 4);
  if (ld64(h + 16) != salt || ld64(h + 8) != txnid ||
      len > size - pos - WAL_REC_HDR)
    return 0;
  uint8_t *b = malloc(WAL_REC_HDR + len);
  int ok = b && !f->methods->read(f, b, WAL_REC_HDR + len, pos) &&
           ld32(b) == cairn_crc32c(0, b + 4, WAL_REC_HDR - 4 + len) &&
           ld64(b + 24) >= damaged;
  free(b);
  return ok;
}

int wal_recover(cairn_db *db, uint64_t *replayed) {
  wal *w = &db->wal;
  cairn_file *f = w->file;
  *replayed = 0;
  uint64_t size;
  int rc = f->methods->size(f, &size);
  if (rc)
    return rc;
  w->pos = WAL_HDR;
  uint8_t h[WAL_HDR];
  if (size < WAL_HDR)
    return CAIRN_OK; /* new, or a crash while creating it: nothing logged */
  rc = f->methods->read(f, h, sizeof h, 0);
  if (rc)
    return rc;
  if (memcmp(h, WAL_MAGIC, 8) != 0 || ld32(h + 60) != cairn_crc32c(0, h, 60))
    return CAIRN_OK; /* a header is only written when nothing is unfolded */
  if (ld32(h + 8) != WAL_VERSION)
    return cairn__seterr(CAIRN_NOTADB,
                         "%s-wal: log format version %u, this build reads %u",
                         db->path, ld32(h + 8), WAL_VERSION);
  if (memcmp(h + 16, db->cur.db_id, 16) != 0)
    return cairn__seterr(CAIRN_CORRUPT,
                         "%s-wal belongs to another database: move it away "
                         "(its commits cannot apply here)",
                         db->path);
  uint64_t base = ld64(h + 32);
  w->salt = ld64(h + 40);
  w->base = base;
  if (base > db->cur.txnid)
    return cairn__seterr(CAIRN_CORRUPT,
                         "%s-wal follows txn %llu but the database's meta page "
                         "records only txn %llu (was the file replaced by an "
                         "older copy?): move the log away to open the file "
                         "as it is",
                         db->path, (unsigned long long)base,
                         (unsigned long long)db->cur.txnid);
  uint64_t pos = WAL_HDR, expect = base + 1;
  uint8_t rh[WAL_REC_HDR];
  uint8_t *body = NULL;
  size_t cap = 0;
  db->replaying = 1;
  while (pos + WAL_REC_HDR <= size) {
    rc = f->methods->read(f, rh, WAL_REC_HDR, pos);
    if (rc)
      break;
    uint64_t len = ld32(rh + 4), txnid = ld64(rh + 8);
    if (ld64(rh + 16) != w->salt || txnid != expect ||
        len > size - pos - WAL_REC_HDR)
      break;
    if (WAL_REC_HDR + len > cap) {
      uint8_t *n = realloc(body, WAL_REC_HDR + len);
      if (!n) {
        rc = cairn__seterr(CAIRN_NOMEM, "out of memory reading the log");
        break;
      }
      body = n;
      cap = WAL_REC_HDR + len;
    }
    memcpy(body, rh, WAL_REC_HDR);
    if (len &&
        (rc = f->methods->read(f, body + WAL_REC_HDR, len, pos + WAL_REC_HDR)))
      break;
    if (ld32(body) != cairn_crc32c(0, body + 4, WAL_REC_HDR - 4 + len)) {
      /* A torn last record ends the log; a damaged one with commits after
       * it must not silently drop them. */
      if (synced_after(f, pos + WAL_REC_HDR + len, size, w->salt, txnid + 1,
                       txnid))
        rc = cairn__seterr(CAIRN_CORRUPT,
                           "%s-wal: log record of txn %llu is damaged "
                           "(checksum mismatch) and later commits follow it; "
                           "moving the log away opens the database at its "
                           "last checkpoint",
                           db->path, (unsigned long long)txnid);
      break;
    }
    if (txnid > db->cur.txnid) {
      if (txnid != db->cur.txnid + 1) {
        rc = bad_record(txnid, "leaves a gap after the database's commit");
        break;
      }
      cairn_txn *txn;
      rc = txn_begin_writer(db, &txn);
      if (rc)
        break;
      if (txn->failed) { /* no memory to release free pages at its begin */
        cairn_abort(txn);
        rc = cairn__seterr(CAIRN_NOMEM, "out of memory replaying the log");
        break;
      }
      rc = apply_body(txn, txnid, body + WAL_REC_HDR, (size_t)len);
      if (!rc)
        rc = cairn_commit_ex(txn, CAIRN_DURABILITY_LAZY);
      else
        cairn_abort(txn);
      if (rc)
        break;
      ++*replayed;
    }
    pos += WAL_REC_HDR + len;
    expect++;
  }
  db->replaying = 0;
  free(body);
  w->pos = pos;
  w->last_txnid = w->synced_txnid = expect - 1;
  return rc;
}
