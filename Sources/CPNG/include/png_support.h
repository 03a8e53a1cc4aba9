#ifndef NEURON_PNG_SUPPORT_H
#define NEURON_PNG_SUPPORT_H

/* PNG decoding and encoding over libpng, for Swift.
 *
 * libpng reports errors by longjmp out of its error callback, which Swift cannot survive; every
 * function here catches that with setjmp and returns nonzero with a '\0'-terminated message in
 * `message` instead. Nothing prints, nothing aborts: corrupt, truncated or hostile input fails
 * cleanly.
 *
 * Pixels cross this boundary as 8-bit interleaved samples (row-major, `channels` bytes per pixel,
 * 1 = grey, 3 = RGB); npng_unpack / npng_pack convert to and from planar float images. */

#include <stddef.h>
#include <stdint.h>

/* What npng_decode will produce for a PNG: its size and the channels left after the conversions
 * (palette expanded to RGB, alpha stripped, 1/2/4-bit grey widened and 16-bit narrowed to 8 bits). */
typedef struct {
    uint32_t width;
    uint32_t height;
    int channels;         /* 1 or 3 */
    int color_type;       /* as stored in the file: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA */
    int bit_depth;        /* as stored in the file: 1, 2, 4, 8 or 16 */
} npng_header;

/* An encoded PNG in memory, grown by npng_encode; release with npng_buffer_free. */
typedef struct {
    uint8_t *bytes;
    size_t count;
    size_t capacity;
} npng_buffer;

/* Reads the header of the PNG in data[0 ..< size]. Also rejects a header that claims more pixels
 * than `size` bytes can hold (deflate expands at most 1032:1), so a corrupt header cannot make the
 * caller allocate gigabytes. Returns 0, or nonzero with the reason in message. */
int npng_read_header(npng_header *header, const uint8_t *data, size_t size,
                     char *message, size_t message_size);

/* Decodes the whole PNG, through its end chunk, into pixels, which is (height, width, channels)
 * bytes as reported by npng_read_header. Returns 0, or nonzero with the reason in message
 * (truncated data, CRC or zlib errors, ...); pixels is then partly written. */
int npng_decode(uint8_t *pixels, const uint8_t *data, size_t size,
                char *message, size_t message_size);

/* Encodes pixels, (height, width, channels) bytes with channels 1 or 3, as an 8-bit grey or RGB
 * PNG into out, which must start zeroed. Returns 0, or nonzero with the reason in message (out is
 * then empty). */
int npng_encode(npng_buffer *out, const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                char *message, size_t message_size);

void npng_buffer_free(npng_buffer *buffer);

/* out is (out_channels, count) floats; pixels is count pixels of in_channels bytes (1 or 3 each).
 * Each byte b becomes b / 255. Grey to RGB repeats the grey value; RGB to grey uses Pillow's
 * `convert("L")` luma, (19595 R + 38470 G + 7471 B + 2^15) >> 16, before dividing by 255. */
void npng_unpack(float *out, int out_channels, const uint8_t *pixels, int in_channels, size_t count);

/* pixels is count pixels of channels bytes; image is (channels, count) floats. Each value is
 * clamped to [0, 1] (NaN counts as 0) and rounded to floor(255 v + 0.5), as torchvision's
 * save_image does. */
void npng_pack(uint8_t *pixels, const float *image, int channels, size_t count);

#endif
