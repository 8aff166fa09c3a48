// Project-written probe (archive/kernels.py): cuda-convnet2's nvmatrix_kernels.cuh wraps
// __shfl_down in a template that only its nvmatrix.cu instantiates, and that file stops earlier
// (the memoryType probe). This one instantiates the wrapper, to see what CUDA 13 says of it.
#include <nvmatrix_kernels.cuh>

__global__ void probeShflDown(float *a) {
    a[threadIdx.x] = shfl_down(a[threadIdx.x], 1);
}
