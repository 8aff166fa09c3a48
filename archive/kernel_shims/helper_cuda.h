/*
 * Project-written stand-in for helper_cuda.h, the header of the CUDA samples (CUDA 5.0 and later)
 * that alexnet-2012's layer_kernels.cuh and neuron.cuh include. It is not part of the CUDA
 * toolkit (it came with the samples), so it is not on a compiler's include path today. It declares
 * only what those files, and cuda-convnet2's nvmatrix (the __shfl_down check), use:
 * getLastCudaError after a kernel launch and checkCudaErrors around a runtime or library call.
 * Used only to compile the released code unmodified (archive/kernels.py); it is no part of the
 * releases.
 */
#ifndef ALEXNET_ARCHIVE_HELPER_CUDA_SHIM_H
#define ALEXNET_ARCHIVE_HELPER_CUDA_SHIM_H

#include "cutil_inline.h"

#define getLastCudaError(msg) alexnetArchiveCheckLaunch((msg), __FILE__, __LINE__)

/* A CUDA runtime, cuBLAS or cuRAND call returned a status other than 0 (success): say which
 * call and where, then stop. */
template <typename Status>
inline void alexnetArchiveCheckStatus(Status status, const char *call, const char *file, int line) {
    if (static_cast<int>(status) != 0) {
        std::fprintf(stderr, "%s:%d: %s returned status %d\n", file, line, call,
                     static_cast<int>(status));
        std::exit(EXIT_FAILURE);
    }
}

#define checkCudaErrors(call) alexnetArchiveCheckStatus((call), #call, __FILE__, __LINE__)

#endif
