/*
 * crc32c.h — the page checksum: CRC-32C (Castagnoli), the polynomial with
 * hardware support on x86 (SSE4.2) and ARMv8, and the one ext4, iSCSI and
 * RocksDB use. The software path gives identical results on every host.
 */
#ifndef CAIRN_CRC32C_H
#define CAIRN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t cairn_crc32c(uint32_t crc, const void *buf, size_t n);

#endif /* CAIRN_CRC32C_H */
