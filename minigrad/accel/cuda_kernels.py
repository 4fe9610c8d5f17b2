"""CUDA source of the GPU backend's own kernels (compiled by CuPy on first use).

On a GPU the models of this project are bound by the CPU time spent issuing kernels, not
by arithmetic: every CuPy call costs microseconds of Python and Cython. A fused op that
is ten array calls on NumPy is therefore written here once more as one kernel, with the
same formulas as the op's docstring:

* ``row_reduce`` and ``col_sum``: the row sums, row dot products, row maxima and column
  sums that the fused ops' CPU code asks the backend for;
* ``softmax_rows`` / ``softmax_backward_rows``: the attention weights' softmax (after the
  scores' product) and its vector-Jacobian product, ``w * (g - sum(g * w)) * scale``;
* ``layer_norm_forward`` / ``layer_norm_backward``: a layer norm row in one pass each.

The row kernels run one block of threads per row (a row of scores, or the features of one
position): each thread walks the row with a stride, then the block adds its threads'
values (``block_sum``: a warp shuffle, then one value per warp in shared memory). Every
kernel is a template over ``float`` and ``double``; ``minigrad.backend.CupyBackend``
compiles them and falls back to CuPy array calls for other dtypes or non-contiguous rows.
This module holds only source text: it imports nothing.
"""

from __future__ import annotations

SOURCE = r"""
template <typename T> __device__ T nan_value();
template <> __device__ float nan_value<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ double nan_value<double>() { return __longlong_as_double(0x7ff8000000000000LL); }
template <typename T> __device__ T neg_inf();
template <> __device__ float neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ double neg_inf<double>() { return __longlong_as_double(0xfff0000000000000LL); }
__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float sqrt_(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_(double x) { return sqrt(x); }

// ---- block-wide reductions: every thread of the block gets the result -------------------
template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
template <typename T> __device__ __forceinline__ T warp_max(T v) {  // fmax: NaNs are skipped
    for (int offset = 16; offset > 0; offset /= 2) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}
// shared: at least 32 values. blockDim.x is a multiple of 32 (at most 1024).
template <typename T> __device__ T block_sum(T v, T* shared) {
    v = warp_sum(v);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();  // every thread has read shared[0] from an earlier call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = warp_sum(lane < warps ? shared[lane] : T(0));
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}
template <typename T> __device__ T block_max(T v, T* shared) {
    v = warp_max(v);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = warp_max(lane < warps ? shared[lane] : neg_inf<T>());
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    return shared[0];
}

// ---- the backend's reductions ---------------------------------------------------------
// out[row] = sum(a[row, :])            (op 0)
//          = sum(a[row, :] * b[row, :]) (op 1)
//          = fmax over a[row, :]        (op 2: NaNs are skipped unless the whole row is NaN)
template <typename T>
__global__ void row_reduce(const T* a, const T* b, T* out, long long rows, int n, int op) {
    __shared__ T shared[32];
    const T* ar = a + blockIdx.x * (long long)n;
    const T* br = b + blockIdx.x * (long long)n;
    T acc = (op == 2) ? nan_value<T>() : T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        if (op == 0) acc += ar[j];
        else if (op == 1) acc += ar[j] * br[j];
        else acc = fmax(acc, ar[j]);
    }
    if (op == 2) {
        // a thread with no values keeps NaN, which fmax skips; an all-NaN row stays NaN
        acc = warp_max(acc);
        const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
        if (lane == 0) shared[warp] = acc;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < warps; ++w) acc = fmax(acc, shared[w]);
            out[blockIdx.x] = acc;
        }
        return;
    }
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) out[blockIdx.x] = acc;
}

// out[c] = sum over r of x[r, c]. A block covers 32 columns: each of its 32 rows of
// threads (threadIdx.y) adds every 32nd row of x, then the block adds those 32 partial
// sums per column in shared memory (a fixed order: the same result every run).
template <typename T>
__global__ void col_sum(const T* x, T* out, long long rows, long long cols) {
    __shared__ T partial[32][33];
    const long long c = blockIdx.x * 32LL + threadIdx.x;
    T acc = T(0);
    if (c < cols)
        for (long long r = threadIdx.y; r < rows; r += 32) acc += x[r * cols + c];
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    for (int half = 16; half > 0; half /= 2) {
        if (threadIdx.y < half) partial[threadIdx.y][threadIdx.x] += partial[threadIdx.y + half][threadIdx.x];
        __syncthreads();
    }
    if (threadIdx.y == 0 && c < cols) out[c] = partial[0][threadIdx.x];
}

// ---- softmax along rows, in place --------------------------------------------------------
// w[row, :] = softmax(w[row, :] * scale), shifted by the row max. A row whose every entry
// is -inf (every key masked) becomes 0 (NaN entries stay NaN), as the CPU code does.
template <typename T>
__global__ void softmax_rows(T* w, long long rows, int n, T scale) {
    __shared__ T shared[32];
    T* r = w + blockIdx.x * (long long)n;
    T m = neg_inf<T>();
    for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmax(m, r[j] * scale);
    m = block_max(m, shared);
    if (m == neg_inf<T>()) {  // the same for the whole block: no thread skips a barrier
        for (int j = threadIdx.x; j < n; j += blockDim.x) r[j] = (r[j] != r[j]) ? r[j] : T(0);
        return;
    }
    T total = T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        T e = exp_(r[j] * scale - m);
        r[j] = e;
        total += e;
    }
    total = block_sum(total, shared);
    for (int j = threadIdx.x; j < n; j += blockDim.x) r[j] /= total;
}

// out[row, :] = w * (g - sum(g * w)) * scale: the softmax's vector-Jacobian product (times
// the scores' scale, which the attention's two gradient products would apply otherwise)
template <typename T>
__global__ void softmax_backward_rows(const T* g, const T* w, T* out, long long rows, int n, T scale) {
    __shared__ T shared[32];
    const long long base = blockIdx.x * (long long)n;
    T acc = T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) acc += g[base + j] * w[base + j];
    acc = block_sum(acc, shared);
    for (int j = threadIdx.x; j < n; j += blockDim.x) out[base + j] = w[base + j] * (g[base + j] - acc) * scale;
}

// ---- layer norm over rows of n features ---------------------------------------------------
// flags: 1 = weight given, 2 = bias given. mean and rstd get one value per row.
template <typename T>
__global__ void layer_norm_forward(const T* x, const T* weight, const T* bias, T* out, T* mean, T* rstd,
                                   long long rows, int n, T eps, int flags) {
    __shared__ T shared[32];
    const long long base = blockIdx.x * (long long)n;
    const T inv_n = T(1) / T(n);
    T acc = T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) acc += x[base + j];
    const T mu = block_sum(acc, shared) * inv_n;
    acc = T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        T d = x[base + j] - mu;
        acc += d * d;
    }
    const T r = T(1) / sqrt_(block_sum(acc, shared) * inv_n + eps);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        T y = (x[base + j] - mu) * r;
        if (flags & 1) y *= weight[j];
        if (flags & 2) y += bias[j];
        out[base + j] = y;
    }
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = mu;
        rstd[blockIdx.x] = r;
    }
}

// With xhat = (x - mean) * rstd and dxhat = g * weight (g without a weight):
//   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))     (flags & 2)
//   gxhat = g * xhat, summed over rows afterwards for the weight's gradient (flags & 4)
// flags & 1: weight given.
template <typename T>
__global__ void layer_norm_backward(const T* g, const T* x, const T* mean, const T* rstd, const T* weight,
                                    T* dx, T* gxhat, long long rows, int n, int flags) {
    __shared__ T shared[32];
    const long long base = blockIdx.x * (long long)n;
    const T mu = mean[blockIdx.x], r = rstd[blockIdx.x];
    T sum1 = T(0), sum2 = T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const T gj = g[base + j];
        const T xhat = (x[base + j] - mu) * r;
        const T dxhat = (flags & 1) ? gj * weight[j] : gj;
        sum1 += dxhat;
        sum2 += dxhat * xhat;
        if (flags & 4) gxhat[base + j] = gj * xhat;
    }
    if (!(flags & 2)) return;  // the same for the whole block
    const T inv_n = T(1) / T(n);
    const T mean1 = block_sum(sum1, shared) * inv_n;
    const T mean2 = block_sum(sum2, shared) * inv_n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const T xhat = (x[base + j] - mu) * r;
        const T dxhat = (flags & 1) ? g[base + j] * weight[j] : g[base + j];
        dx[base + j] = r * (dxhat - mean1 - xhat * mean2);
    }
}
"""

# the kernels' names, each compiled for float and double
KERNELS = (
    "row_reduce",
    "col_sum",
    "softmax_rows",
    "softmax_backward_rows",
    "layer_norm_forward",
    "layer_norm_backward",
)
