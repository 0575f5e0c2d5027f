/*
 * fault_platform.h — the fault-injecting platform "fault" used by the crash
 * and error-path tests on every host.
 *
 * Files live in memory in two images: what a crash would leave (the durable
 * image) and what the running program sees. A write is durable only after a
 * sync of its file. fault_crash() simulates power loss: every write not yet
 * synced is kept, dropped or torn (a prefix of 512-byte sectors kept, the
 * rest old), chosen by a seed; files and renames whose directory entry was
 * never synced with sync_dir vanish.
 *
 * Operations counted as boundaries: write, sync, truncate, rename,
 * sync_dir. start_sync (a background sync) is not one: it makes nothing
 * durable, the worst case of a sync that had not finished at the crash.
 * Injection points are given as the 0-based index of such an operation
 * counted from the last fault_reset()/fault_clear_injection().
 */
#ifndef CAIRN_FAULT_PLATFORM_H
#define CAIRN_FAULT_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Register the "fault" platform with cairn (idempotent). */
void fault_platform_install(void);

/* Delete every file and clear all injections and counters. */
void fault_reset(void);

/* Number of boundary operations so far. */
long fault_op_count(void);

/* Power fails at boundary operation n: that operation and every later one
 * fails with CAIRN_IO ("simulated power loss") and has no effect, until
 * fault_crash() is called. n < 0 disables. */
void fault_set_crash_at(long n);

/* Boundary operation n fails with rc (CAIRN_NOSPC or CAIRN_IO) and has no
 * effect; if persistent, every later write/sync fails the same way too
 * (a full disk), until fault_clear_injection(). n < 0 disables. */
void fault_set_error_at(long n, int rc, int persistent);

/* Clear pending injections and restart the operation count. */
void fault_clear_injection(void);

/* 1 once the crash point was reached (power is "off"). */
int fault_crashed(void);

/* Simulate the power loss: resolve every unsynced write of every file from
 * seed (keep / drop / tear), make the result both images, power back on.
 * Open handles must not be used afterwards except to close them. */
void fault_crash(uint64_t seed);

/* Size in bytes of a file as the running program sees it (-1 if absent). */
long long fault_file_size(const char *path);
/* Overwrite bytes of a file in both images (corruption tests). */
int fault_file_poke(const char *path, uint64_t off, const void *buf, size_t n);
/* Read bytes of a file as the running program sees it. */
int fault_file_peek(const char *path, uint64_t off, void *buf, size_t n);

#endif /* CAIRN_FAULT_PLATFORM_H */
