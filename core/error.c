/*
 * error.c — status code names and the per-thread detailed message behind
 * cairn_errmsg(). The message buffer is thread-local so concurrent threads
 * never see each other's errors.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char errmsg_buf[512];

int cairn__seterr(int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
  va_end(ap);
  return rc;
}

void cairn__clearerr(void) { errmsg_buf[0] = 0; }

const char *cairn_errmsg(void) { return errmsg_buf; }

const char *cairn_strerror(int rc) {
  switch (rc) {
  case CAIRN_OK: return "CAIRN_OK: success";
  case CAIRN_NOTFOUND: return "CAIRN_NOTFOUND: not found";
  case CAIRN_EXISTS: return "CAIRN_EXISTS: already exists";
  case CAIRN_BUSY: return "CAIRN_BUSY: database is locked";
  case CAIRN_CORRUPT: return "CAIRN_CORRUPT: database is corrupt";
  case CAIRN_IO: return "CAIRN_IO: I/O error";
  case CAIRN_NOSPC: return "CAIRN_NOSPC: no space left on device";
  case CAIRN_NOMEM: return "CAIRN_NOMEM: out of memory";
  case CAIRN_INVALID: return "CAIRN_INVALID: invalid argument or misuse";
  case CAIRN_READONLY:
    return "CAIRN_READONLY: write in a read-only transaction or database";
  case CAIRN_TOOBIG: return "CAIRN_TOOBIG: key or value too large";
  case CAIRN_BADTXN: return "CAIRN_BADTXN: transaction has failed or ended";
  case CAIRN_NOTADB: return "CAIRN_NOTADB: not a cairn database";
  case CAIRN_VERSION: return "CAIRN_VERSION: unsupported file format version";
  case CAIRN_INUSE: return "CAIRN_INUSE: resource in use";
  case CAIRN_NOTSUPP: return "CAIRN_NOTSUPP: not supported on this platform";
  default: return "CAIRN_UNKNOWN: unknown status code";
  }
}
