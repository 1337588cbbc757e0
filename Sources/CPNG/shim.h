// libpng's simplified API (png_image_*), which reports errors through return values rather than longjmp.
#include <png.h>
