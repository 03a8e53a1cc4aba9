/* Checksums of saved files (checksum.c). */
#ifndef NEURON_CHECKSUM_H
#define NEURON_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF), the
 * CRC of iSCSI, ext4 and Btrfs; "123456789" gives 0xE3069283. data is n bytes (may be null when n = 0).
 * Chains like zlib's crc32: pass 0 for the first block and the previous result for each later one,
 * so crc(a ++ b) = nn_crc32c(nn_crc32c(0, a), b). Slicing-by-8 over tables built once, thread-safely. */
uint32_t nn_crc32c(uint32_t crc, const void *data, size_t n);
/* One bit at a time: the reference nn_crc32c is tested against. */
uint32_t nn_crc32c_ref(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif
