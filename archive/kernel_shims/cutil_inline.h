/*
 * Project-written stand-in for the CUDA SDK's cutil_inline.h, which the SDK samples dropped in
 * CUDA 5.0 (2012). It declares only what r561's cudaconv2 and nvmatrix headers use: the
 * cutilCheckMsg error check after a kernel launch and the MIN and MAX macros. Used only to
 * compile the released kernels unmodified (archive/kernels.py); it is no part of the release.
 */
#ifndef ALEXNET_ARCHIVE_CUTIL_INLINE_SHIM_H
#define ALEXNET_ARCHIVE_CUTIL_INLINE_SHIM_H

#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* The launch that was just made failed: say where and why, then stop (as cutil did). */
inline void alexnetArchiveCheckLaunch(const char *msg, const char *file, int line) {
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        std::fprintf(stderr, "%s:%d: %s: %s\n", file, line, msg, cudaGetErrorString(err));
        std::exit(EXIT_FAILURE);
    }
}

#define cutilCheckMsg(msg) alexnetArchiveCheckLaunch((msg), __FILE__, __LINE__)

#endif
