/* libFuzzer target for the PNG reader (Sources/CPNG/png_support.c): clang -fsanitize=fuzzer,address,
 * see the Makefile's fuzz-png target.
 *
 * Beyond "no crash or sanitizer report", each input must satisfy the reader's contract: every failure
 * comes with a non-empty message; npng_decode agrees with npng_read_header on success; the header's
 * size bound holds (deflate expands at most 1032:1, and a 1-bit palette sample becomes 3 bytes of RGB, so
 * no more than 1032 * 24 output bytes per input byte); and an image that decodes re-encodes as 8-bit grey
 * or RGB and decodes back to the same pixels (checked up to a million pixels, to keep runs fast). */
#include "png_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void finding(const char *what) {
    fprintf(stderr, "fuzz_png: %s\n", what);
    abort();
}

static void expect_message(const char *message) {
    if (message[0] == '\0') finding("a failure without a message");
    if (!memchr(message, '\0', 256)) finding("an unterminated message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char message[256];
    npng_header header;
    memset(message, 0, sizeof message);
    if (npng_read_header(&header, data, size, message, sizeof message) != 0) {
        expect_message(message);
        return 0;
    }
    if (header.channels != 1 && header.channels != 3) finding("header with channels other than 1 or 3");
    size_t pixels_count = (size_t)header.width * header.height;
    size_t bytes = pixels_count * (size_t)header.channels;
    if (bytes / (1032 * 24) > size + 1) finding("header accepted an image far larger than its input");
    uint8_t *pixels = malloc(bytes ? bytes : 1);
    memset(message, 0, sizeof message);
    if (npng_decode(pixels, data, size, message, sizeof message) != 0) {
        expect_message(message);
        free(pixels);
        return 0;
    }
    if (pixels_count > (1u << 20)) {
        free(pixels);
        return 0;
    }
    /* Both conversions to planar floats, over every pixel (ASan checks the bounds). */
    float *planes = malloc((pixels_count ? pixels_count : 1) * 3 * sizeof(float));
    npng_unpack(planes, 3, pixels, header.channels, pixels_count);
    npng_unpack(planes, 1, pixels, header.channels, pixels_count);
    free(planes);

    npng_buffer encoded = {0};
    memset(message, 0, sizeof message);
    if (npng_encode(&encoded, pixels, header.width, header.height, header.channels, message, sizeof message) != 0)
        finding("a decoded image failed to re-encode");
    npng_header again;
    uint8_t *copy = malloc(bytes ? bytes : 1);
    if (npng_read_header(&again, encoded.bytes, encoded.count, message, sizeof message) != 0 ||
        again.width != header.width || again.height != header.height || again.channels != header.channels ||
        npng_decode(copy, encoded.bytes, encoded.count, message, sizeof message) != 0 ||
        memcmp(copy, pixels, bytes) != 0)
        finding("re-encoded image does not decode to the same pixels");
    npng_buffer_free(&encoded);
    free(copy);
    free(pixels);
    return 0;
}
