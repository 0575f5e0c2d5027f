/*
 * ops.h — helpers shared by the operations files (backup.c, dump.c,
 * stat_format.c), defined in dump.c. Nothing here is public API.
 */
#ifndef CAIRN_OPS_H
#define CAIRN_OPS_H

#include <stddef.h>

#include "cairn.h"

/* The column families a txn sees, in name order, with their handles. */
typedef struct ops_cfs {
  char **name;
  cairn_cf *cf;
  size_t n, cap;
} ops_cfs;

/* Fill l (zeroed by the caller) from txn; CAIRN_NOMEM with a message. */
int ops_cfs_get(cairn_txn *txn, ops_cfs *l);
void ops_cfs_free(ops_cfs *l);

/* The status of a user's stream callback (what = "output" or "input"):
 * 0 -> CAIRN_OK, a CAIRN_* code -> itself, anything else -> CAIRN_IO; each
 * failure with a message. */
int ops_cb_status(int r, const char *what);

#endif /* CAIRN_OPS_H */
