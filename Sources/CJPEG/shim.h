// libjpeg-turbo (Debian: libjpeg62-turbo-dev) behind one C function, because libjpeg reports errors by
// calling `error_exit`, which must not return: the only safe way out is a longjmp back into C, which Swift
// cannot do. `vkk_jpeg_decode` keeps the setjmp here and turns every libjpeg error into a return code and
// a message.
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct vkk_jpeg_error {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void vkk_jpeg_error_exit(j_common_ptr info) {
    struct vkk_jpeg_error *error = (struct vkk_jpeg_error *)info->err;
    error->manager.format_message(info, error->message);
    longjmp(error->jump, 1);
}

static void vkk_jpeg_silence(j_common_ptr info, int level) { (void)info; (void)level; }

/// Decodes a whole JPEG held in memory to 8-bit RGB (3 bytes per pixel, rows top first).
/// The header is read first; images wider or taller than `max_side` or with more than `max_pixels`
/// pixels are refused before any pixel buffer is allocated. Returns 0 and sets *pixels (free() it),
/// *width and *height; else returns 1 and copies libjpeg's message (or the refusal) into `message`
/// (`message_size` bytes).
static inline int vkk_jpeg_decode(const unsigned char *data, unsigned long size, unsigned long long max_pixels,
                                  unsigned int max_side, unsigned char **pixels, unsigned int *width,
                                  unsigned int *height, char *message, size_t message_size) {
    struct jpeg_decompress_struct info;
    struct vkk_jpeg_error error;
    unsigned char *volatile buffer = NULL;
    *pixels = NULL;
    memset(&info, 0, sizeof info);
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = vkk_jpeg_error_exit;
    error.manager.emit_message = vkk_jpeg_silence;
    error.message[0] = 0;
    if (setjmp(error.jump)) {
        snprintf(message, message_size, "%s", error.message);
        jpeg_destroy_decompress(&info);
        free(buffer);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, size);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = JCS_RGB;
    jpeg_calc_output_dimensions(&info);
    unsigned long long w = info.output_width, h = info.output_height;
    if (w == 0 || h == 0 || w > max_side || h > max_side || w * h > max_pixels || info.output_components != 3) {
        snprintf(message, message_size, "image is %llux%llu with %d components (limits: sides up to %u, %llu pixels, RGB)",
                 w, h, info.output_components, max_side, max_pixels);
        jpeg_destroy_decompress(&info);
        return 1;
    }
    buffer = (unsigned char *)malloc((size_t)(w * h * 3));
    if (!buffer) {
        snprintf(message, message_size, "out of memory for %llux%llu pixels", w, h);
        jpeg_destroy_decompress(&info);
        return 1;
    }
    jpeg_start_decompress(&info);
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = buffer + (size_t)info.output_scanline * (size_t)w * 3;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    *pixels = buffer;
    *width = (unsigned int)w;
    *height = (unsigned int)h;
    return 0;
}
