/*
 * kv.c — the data API (get, put, del): argument checks, then the column
 * family's tree (or, with the log, the overlay over it: view.c), and the op
 * into the commit's log record. Every limit in
 * cairn.h is enforced here, before any page is touched, so a rejected call
 * changes nothing.
 */
#include <string.h>

#include "engine.h"
#include "error.h"

static int check_key(cairn_slice key) {
  if (!key.data && key.size)
    return cairn__seterr(CAIRN_INVALID, "key: NULL data with size %zu",
                         key.size);
  if (key.size > CAIRN_MAX_KEY_SIZE)
    return cairn__seterr(CAIRN_TOOBIG, "key of %zu bytes; the limit is %u",
                         key.size, CAIRN_MAX_KEY_SIZE);
  return CAIRN_OK;
}

int cairn_get(cairn_txn *txn, cairn_cf cf, cairn_slice key, cairn_slice *val) {
  int rc = txn_check_live(txn);
  if (!rc && !val)
    rc = cairn__seterr(CAIRN_INVALID, "cairn_get: val is NULL");
  if (!rc)
    rc = check_key(key);
  if (rc)
    return rc;
  cf_state *s = txn_cf(txn, cf, &rc);
  if (!s)
    return rc;
  metrics *m = &txn->db->metrics;
  uint64_t t0 = metrics_sample() ? metrics_now_ns() : 0;
  rc = view_get(txn, s, key.data, key.size, val);
  METRIC_ADD(m, gets, 1);
  if (t0)
    histo_record(&m->get, metrics_now_ns() - t0);
  if (rc == CAIRN_NOTFOUND) {
    METRIC_ADD(m, get_misses, 1);
    return cairn__seterr(CAIRN_NOTFOUND, "key not found");
  }
  if (!rc)
    cairn__clearerr();
  return rc;
}

static int writable(cairn_txn *txn) {
  int rc = txn_check_live(txn);
  if (!rc && txn->rdonly)
    rc = cairn__seterr(CAIRN_READONLY, "write in a read-only transaction");
  return rc;
}

int cairn_put(cairn_txn *txn, cairn_cf cf, cairn_slice key, cairn_slice val,
              unsigned flags) {
  int rc = writable(txn);
  if (!rc)
    rc = check_key(key);
  if (!rc && !val.data && val.size)
    rc = cairn__seterr(CAIRN_INVALID, "value: NULL data with size %zu",
                       val.size);
  if (!rc && val.size > CAIRN_MAX_VALUE_SIZE)
    rc = cairn__seterr(CAIRN_TOOBIG, "value of %zu bytes; the limit is %u",
                       val.size, CAIRN_MAX_VALUE_SIZE);
  if (!rc && (flags & ~CAIRN_PUT_NOOVERWRITE))
    rc = cairn__seterr(CAIRN_INVALID, "cairn_put: unknown flags 0x%x", flags);
  if (rc)
    return rc;
  cf_state *s = txn_cf(txn, cf, &rc);
  if (!s)
    return rc;
  metrics *m = &txn->db->metrics;
  uint64_t t0 = metrics_sample() ? metrics_now_ns() : 0;
  if (txn->ov) /* log mode: the overlay takes it until a checkpoint */
    rc = view_write(txn, s, key.data, key.size, val.data, val.size, 0,
                    (flags & CAIRN_PUT_NOOVERWRITE) != 0);
  else
    rc = btree_put(txn, s, key.data, key.size, val.data, val.size, flags);
  if (!rc)
    rc = wal_log_op(txn, WAL_PUT, s, key.data, key.size, val.data, val.size);
  METRIC_ADD(m, puts, 1);
  if (t0)
    histo_record(&m->put, metrics_now_ns() - t0);
  if (rc == CAIRN_EXISTS)
    return cairn__seterr(CAIRN_EXISTS, "key already exists");
  if (!rc)
    cairn__clearerr();
  return rc;
}

int cairn_del(cairn_txn *txn, cairn_cf cf, cairn_slice key) {
  int rc = writable(txn);
  if (!rc)
    rc = check_key(key);
  if (rc)
    return rc;
  cf_state *s = txn_cf(txn, cf, &rc);
  if (!s)
    return rc;
  if (txn->ov)
    rc = view_write(txn, s, key.data, key.size, NULL, 0, 1, 0);
  else
    rc = btree_del(txn, s, key.data, key.size);
  if (!rc)
    rc = wal_log_op(txn, WAL_DEL, s, key.data, key.size, NULL, 0);
  METRIC_ADD(&txn->db->metrics, dels, 1);
  if (rc == CAIRN_NOTFOUND)
    return cairn__seterr(CAIRN_NOTFOUND, "key not found");
  if (!rc)
    cairn__clearerr();
  return rc;
}
