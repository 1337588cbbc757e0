#include <cblas.h>
// OpenBLAS extensions (declared in its cblas.h) used to size the thread pool.
