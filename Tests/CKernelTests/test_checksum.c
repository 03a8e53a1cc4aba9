/* CRC-32C: the published check value and the iSCSI test vectors (RFC 3720, B.4), agreement with the
 * bitwise reference at every length and alignment, and chaining. */
#include "ctest.h"

static void test_vectors(void) {
    CHECK(nn_crc32c(0, "123456789", 9) == 0xE3069283u);
    CHECK(nn_crc32c_ref(0, "123456789", 9) == 0xE3069283u);
    unsigned char zeros[32] = {0}, ones[32], up[32], down[32];
    for (int i = 0; i < 32; i++) {
        ones[i] = 0xFF;
        up[i] = (unsigned char)i;
        down[i] = (unsigned char)(31 - i);
    }
    CHECK(nn_crc32c(0, zeros, 32) == 0x8A9136AAu);
    CHECK(nn_crc32c(0, ones, 32) == 0x62A8AB43u);
    CHECK(nn_crc32c(0, up, 32) == 0x46DD794Eu);
    CHECK(nn_crc32c(0, down, 32) == 0x113FDB5Cu);
    CHECK(nn_crc32c(0, NULL, 0) == 0);
    CHECK(nn_crc32c(0x12345678u, NULL, 0) == 0x12345678u);
}

static void test_against_reference(void) {
    enum { N = 1 << 16 };
    unsigned char *buffer = malloc(N + 8);
    for (size_t i = 0; i < N + 8; i++) buffer[i] = (unsigned char)(ctest_uniform(0, 256));
    int ok = 1;
    for (size_t offset = 0; offset < 8; offset++)
        for (size_t n = 0; n <= 100; n++) ok &= nn_crc32c(0, buffer + offset, n) == nn_crc32c_ref(0, buffer + offset, n);
    CHECK(ok);
    CHECK(nn_crc32c(0, buffer + 3, N) == nn_crc32c_ref(0, buffer + 3, N));
    /* Chaining over any split gives the CRC of the whole. */
    uint32_t whole = nn_crc32c(0, buffer, N);
    ok = 1;
    for (size_t split = 0; split <= N; split += 4099) ok &= nn_crc32c(nn_crc32c(0, buffer, split), buffer + split, N - split) == whole;
    CHECK(ok);
    /* Every single-bit flip changes the CRC (a CRC detects all 1-bit errors). */
    uint32_t head = nn_crc32c(0, buffer, 64);
    ok = 1;
    for (size_t bit = 0; bit < 8 * 64; bit++) {
        buffer[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        ok &= nn_crc32c(0, buffer, 64) != head && nn_crc32c(0, buffer, N) != whole;
        buffer[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    CHECK(ok);
    free(buffer);
}

int main(void) {
    test_vectors();
    test_against_reference();
    return ctest_finish("test_checksum");
}
