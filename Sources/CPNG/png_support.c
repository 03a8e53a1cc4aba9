#include "png_support.h"

#include <png.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the libpng callbacks share: the bytes being decoded or the buffer being filled, and where
 * the reason for a failure goes. */
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    npng_buffer *out;
    int explained;        /* message already holds a better reason than libpng's */
    char *message;
    size_t message_size;
} stream;

static void say(stream *s, const char *format, ...) {
    if (s->message_size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(s->message, s->message_size, format, args);
    va_end(args);
}

static void on_error(png_structp png, png_const_charp text) {
    stream *s = png_get_error_ptr(png);
    if (!s->explained) say(s, s->out ? "cannot encode PNG (libpng: %s)" : "corrupt PNG data (libpng: %s)", text);
    png_longjmp(png, 1);
}

/* Warnings (an ancillary chunk with a bad CRC, say) do not stop decoding; libpng would print them. */
static void on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void read_bytes(png_structp png, png_bytep destination, size_t count) {
    stream *s = png_get_io_ptr(png);
    if (count > s->size - s->offset) {
        say(s, "truncated PNG: the data ends after %zu bytes", s->size);
        s->explained = 1;
        png_error(png, "truncated");
    }
    memcpy(destination, s->data + s->offset, count);
    s->offset += count;
}

static void write_bytes(png_structp png, png_bytep bytes, size_t count) {
    stream *s = png_get_io_ptr(png);
    npng_buffer *b = s->out;
    if (count > b->capacity - b->count) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity - b->count < count) capacity *= 2;
        uint8_t *grown = realloc(b->bytes, capacity);
        if (!grown) {
            say(s, "out of memory encoding a PNG of %zu bytes", capacity);
            s->explained = 1;
            png_error(png, "out of memory");
        }
        b->bytes = grown;
        b->capacity = capacity;
    }
    memcpy(b->bytes + b->count, bytes, count);
    b->count += count;
}

static void flush_nothing(png_structp png) { (void)png; }

static int check_signature(stream *s) {
    static const uint8_t signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (s->size == 0) {
        say(s, "empty file, not a PNG");
        return 1;
    }
    size_t n = s->size < 8 ? s->size : 8;
    if (memcmp(s->data, signature, n) != 0) {
        say(s, "not a PNG file (it does not start with the PNG signature)");
        return 1;
    }
    if (s->size < 8) {
        say(s, "truncated PNG: %zu bytes, shorter than the 8-byte signature", s->size);
        return 1;
    }
    return 0;
}

/* Reads the chunks up to the image data and asks libpng for 8-bit grey or RGB rows; returns the
 * number of interlace passes. May longjmp. */
static int configure_reader(png_structp png, png_infop info, stream *s, npng_header *header) {
    png_set_read_fn(png, s, read_bytes);
    png_read_info(png, info);
    uint32_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int color_type = png_get_color_type(png, info), bit_depth = png_get_bit_depth(png, info);
    uint64_t stored_bytes = ((uint64_t)width * height * png_get_channels(png, info) * bit_depth + 7) / 8;
    if (stored_bytes / 1032 > s->size) {
        say(s, "corrupt PNG header: %u x %u pixels cannot fit in %zu bytes", width, height, s->size);
        s->explained = 1;
        png_error(png, "implausible size");
    }

    /* No gamma or colour management: samples come through as stored, as Pillow and torchvision
     * read them. Palette images get RGB (tRNS becomes alpha, stripped below); 16-bit samples keep
     * their high byte (Pillow's and torchvision's 16-to-8-bit conversion). */
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    if ((channels != 1 && channels != 3) || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)width * channels) {
        say(s, "unsupported PNG layout (colour type %d, bit depth %d)", color_type, bit_depth);
        s->explained = 1;
        png_error(png, "unsupported layout");
    }
    header->width = width;
    header->height = height;
    header->channels = channels;
    header->color_type = color_type;
    header->bit_depth = bit_depth;
    return passes;
}

static png_structp create_reader(stream *s) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
    if (!png) {
        say(s, "libpng could not allocate a reader");
        return NULL;
    }
    /* Skip every ancillary chunk but tRNS unread (the conversions above use none of them: no gamma,
     * colour management, background or text). libpng would otherwise allocate and zero a chunk's
     * declared length before reading it, with no limit in Debian's build: a 119-byte file declaring a
     * 2 GB tEXt chunk cost 2 GB and seconds (found by fuzzing). Skipped chunks are read in small
     * pieces, so a length past the end of the data fails as truncation. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    return png;
}

int npng_read_header(npng_header *header, const uint8_t *data, size_t size,
                     char *message, size_t message_size) {
    stream s = {data, size, 0, NULL, 0, message, message_size};
    if (check_signature(&s)) return 1;
    png_structp png = create_reader(&s);
    if (!png) return 1;
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!info) say(&s, "libpng could not allocate a reader");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return 1;
    }
    configure_reader(png, info, &s, header);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int npng_decode(uint8_t *pixels, const uint8_t *data, size_t size,
                char *message, size_t message_size) {
    stream s = {data, size, 0, NULL, 0, message, message_size};
    if (check_signature(&s)) return 1;
    png_structp png = create_reader(&s);
    if (!png) return 1;
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!info) say(&s, "libpng could not allocate a reader");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return 1;
    }
    npng_header header;
    int passes = configure_reader(png, info, &s, &header);
    size_t stride = (size_t)header.width * header.channels;
    /* Interlaced images arrive in passes, each refining the rows already in pixels. */
    for (int pass = 0; pass < passes; pass++)
        for (uint32_t y = 0; y < header.height; y++) png_read_row(png, pixels + y * stride, NULL);
    /* Reading through IEND is what notices a file cut after its image data. */
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int npng_encode(npng_buffer *out, const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                char *message, size_t message_size) {
    stream s = {NULL, 0, 0, out, 0, message, message_size};
    if (channels != 1 && channels != 3) {
        say(&s, "cannot encode %d channels, only 1 (grey) or 3 (RGB)", channels);
        return 1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, on_error, on_warning);
    if (!png) {
        say(&s, "libpng could not allocate a writer");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!info) say(&s, "libpng could not allocate a writer");
        png_destroy_write_struct(&png, info ? &info : NULL);
        npng_buffer_free(out);
        return 1;
    }
    png_set_write_fn(png, &s, write_bytes, flush_nothing);
    png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * channels;
    for (uint32_t y = 0; y < height; y++) png_write_row(png, pixels + y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

void npng_buffer_free(npng_buffer *buffer) {
    free(buffer->bytes);
    buffer->bytes = NULL;
    buffer->count = 0;
    buffer->capacity = 0;
}

void npng_unpack(float *out, int out_channels, const uint8_t *pixels, int in_channels, size_t count) {
    if (in_channels == out_channels) {
        for (size_t i = 0; i < count; i++)
            for (int c = 0; c < in_channels; c++) out[c * count + i] = pixels[i * in_channels + c] / 255.0f;
    } else if (in_channels == 1) {
        for (size_t i = 0; i < count; i++) {
            float v = pixels[i] / 255.0f;
            out[i] = v;
            out[count + i] = v;
            out[2 * count + i] = v;
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            const uint8_t *p = pixels + 3 * i;
            uint32_t luma = (19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16;
            out[i] = luma / 255.0f;
        }
    }
}

void npng_pack(uint8_t *pixels, const float *image, int channels, size_t count) {
    for (size_t i = 0; i < count; i++)
        for (int c = 0; c < channels; c++) {
            float v = fminf(fmaxf(image[c * count + i], 0.0f), 1.0f);   /* fmaxf(NaN, 0) is 0 */
            pixels[i * channels + c] = (uint8_t)(v * 255.0f + 0.5f);
        }
}
