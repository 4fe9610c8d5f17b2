"""C source of the CPU backend's own kernels (compiled by ``minigrad.native`` on first use).

NumPy runs one array operation per call: a layer norm is about ten calls, each a pass
over the whole array, and in a training step those arrays come from main memory, not
from the cache. A C loop does the whole formula for one row while the row sits in the
L1 cache. These kernels are the CPU twins of ``minigrad/cuda_kernels.py``, with the same
formulas as the ops' docstrings:

* ``layer_norm_forward`` / ``layer_norm_backward``: one row at a time (mean, variance,
  normalize, scale and shift; the backward's two row means and dx), the weight and bias
  gradients added up row by row into the caller's per-slice buffers;
* ``softmax_prepare`` and ``softmax_finish``: the attention weights' softmax around
  NumPy's vectorized ``exp`` (scale, mask and subtract the row maximum; then divide by
  the row sum). A row whose every score is masked becomes 0;
* ``softmax_backward``: ``w * (g - sum(g * w)) * scale`` (softmax's vector-Jacobian
  product), one row at a time;
* ``bias_relu`` and ``relu_backward``: the feed-forward layer's ``max(h + b, 0)`` in place,
  and ``g * [y > 0]`` with its column sums (the bias's gradient) in the same pass;
* ``scatter_add_rows``: ``target[index[r]] += values[r]`` row by row (the embedding's
  gradient), in ``np.add.at``'s order;
* ``linear_forward`` and ``linear_backward``: a Linear layer (and the ReLU after it) in one
  call each: the matrix products by the BLAS that NumPy loaded (its ``cblas_?gemm``, whose
  address the backend passes in), the bias, the clamp and the bias's gradient around them;
* ``adam_update``: the optimizer's update of one parameter, one pass instead of twelve;
  ``adam_update_many`` runs it over a list of parameters in one call.

Every kernel works on a range of rows of C-contiguous arrays (the layer norm and softmax
backward kernels on ``[0, rows)`` of the addresses they are handed, the softmax forward
kernels on rows ``[lo, hi)``, which the mask's row offsets need), so the backend can give
slices of rows to threads: ctypes releases the GIL during the call.
Each is written once as a macro over the element type and defined for ``float``
(suffix ``f32``) and ``double`` (``f64``). ``#pragma omp simd`` (``-fopenmp-simd``: no
OpenMP runtime) lets the compiler vectorize the row sums; nothing else assumes
fast-math, so NaN and infinity behave as in NumPy, and ``-ffp-contract=off`` keeps
``a * b + c`` two roundings, as in NumPy (elementwise results are then bit for bit the
array code's; sums differ in rounding, since they add in another order).
``-fno-math-errno`` only stops ``sqrt`` from setting ``errno`` for a negative input;
without it the compiler calls the C library's ``sqrt`` one element at a time, and Adam's
loop is not vectorized (2.5x slower).
This module holds only source text and the functions' signatures: it imports nothing.
"""

from __future__ import annotations

SOURCE = r"""
#include <math.h>

/* The offset of row `row`'s mask entries, for a mask broadcast to the scores' shape:
   `lead` leading axes with sizes `shape` and element strides `strides` (0 on a broadcast
   axis); rows are numbered in C order over those axes. */
static long long mask_row_offset(long long row, int lead, const long long* shape, const long long* strides) {
    long long offset = 0;
    for (int d = lead - 1; d >= 0; d--) {
        offset += (row % shape[d]) * strides[d];
        row /= shape[d];
    }
    return offset;
}

/* cblas.h's values for row-major storage and (no) transposition */
#define CBLAS_ROW_MAJOR 101
#define CBLAS_NO_TRANS 111
#define CBLAS_TRANS 112

#define DEFINE_KERNELS(T, SUFFIX, SQRT)                                                        \
/* y = (x - mean) * rstd * w + b per row; w, b may be NULL. */                                \
void layer_norm_forward_##SUFFIX(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd,  \
                                 long long rows, long long n, T eps) {                        \
    for (long long r = 0; r < rows; r++) {                                                    \
        const T* xr = x + r * n;                                                              \
        T* yr = y + r * n;                                                                    \
        T sum = 0, sq = 0;                                                                    \
        _Pragma("omp simd reduction(+:sum)")                                                  \
        for (long long j = 0; j < n; j++) sum += xr[j];                                       \
        const T mu = sum / (T)n;                                                              \
        _Pragma("omp simd reduction(+:sq)")                                                   \
        for (long long j = 0; j < n; j++) sq += (xr[j] - mu) * (xr[j] - mu);                  \
        const T rs = (T)1 / SQRT(sq / (T)n + eps);                                            \
        mean[r] = mu;                                                                         \
        rstd[r] = rs;                                                                         \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) {                                                   \
            T v = (xr[j] - mu) * rs;                                                          \
            if (w) v *= w[j];                                                                 \
            if (b) v += b[j];                                                                 \
            yr[j] = v;                                                                        \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* With xhat = (x - mean) * rstd and dxhat = g * w (g when w is NULL):                        \
   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), and                         \
   dw += g * xhat, db += g summed over these rows. dx, dw, db may be NULL. */                 \
void layer_norm_backward_##SUFFIX(const T* g, const T* x, const T* mean, const T* rstd,       \
                                  const T* w, T* dx, T* dw, T* db, long long rows,            \
                                  long long n) {                                              \
    for (long long r = 0; r < rows; r++) {                                                    \
        const T* gr = g + r * n;                                                              \
        const T* xr = x + r * n;                                                              \
        const T mu = mean[r], rs = rstd[r];                                                   \
        if (dw) {                                                                             \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < n; j++) dw[j] += gr[j] * ((xr[j] - mu) * rs);           \
        }                                                                                     \
        if (db) {                                                                             \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < n; j++) db[j] += gr[j];                                 \
        }                                                                                     \
        if (!dx) continue;                                                                    \
        T s1 = 0, s2 = 0;                                                                     \
        _Pragma("omp simd reduction(+:s1, s2)")                                               \
        for (long long j = 0; j < n; j++) {                                                   \
            const T d = w ? gr[j] * w[j] : gr[j];                                             \
            s1 += d;                                                                          \
            s2 += d * ((xr[j] - mu) * rs);                                                    \
        }                                                                                     \
        const T m1 = s1 / (T)n, m2 = s2 / (T)n;                                               \
        T* dr = dx + r * n;                                                                   \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) {                                                   \
            const T d = w ? gr[j] * w[j] : gr[j];                                             \
            dr[j] = rs * (d - m1 - ((xr[j] - mu) * rs) * m2);                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* s = s * scale, then -inf where the bool mask is set (mask_kind 1) or + the float mask      \
   (mask_kind 2; same element type); then s - max(s) per row, the max stored in row_max.      \
   A row whose max is -inf (every score masked) is left as it is: exp gives 0 there. */     \
void softmax_prepare_##SUFFIX(T* s, long long lo, long long hi, long long n, T scale,         \
                              int mask_kind, const void* mask, int lead,                      \
                              const long long* shape, const long long* strides,               \
                              long long last_stride, T* row_max) {                            \
    for (long long r = lo; r < hi; r++) {                                                     \
        T* sr = s + r * n;                                                                    \
        if (mask_kind == 1) {                                                                 \
            const unsigned char* m = (const unsigned char*)mask + mask_row_offset(r, lead, shape, strides); \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < n; j++) sr[j] = m[j * last_stride] ? -(T)INFINITY : sr[j] * scale; \
        } else if (mask_kind == 2) {                                                          \
            const T* m = (const T*)mask + mask_row_offset(r, lead, shape, strides);           \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < n; j++) sr[j] = sr[j] * scale + m[j * last_stride];     \
        } else if (scale != (T)1) {                                                           \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < n; j++) sr[j] *= scale;                                 \
        }                                                                                     \
        /* the row max; a NaN is skipped here and reaches the output through exp */           \
        T mx = -(T)INFINITY;                                                                  \
        _Pragma("omp simd reduction(max:mx)")                                                 \
        for (long long j = 0; j < n; j++) mx = sr[j] > mx ? sr[j] : mx;                       \
        row_max[r] = mx;                                                                      \
        if (mx == -(T)INFINITY) continue;                                                     \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) sr[j] -= mx;                                        \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* e / sum(e) per row, after exp; a row whose max was -inf keeps its zeros. */                \
void softmax_finish_##SUFFIX(T* e, long long lo, long long hi, long long n, const T* row_max) { \
    for (long long r = lo; r < hi; r++) {                                                     \
        if (row_max[r] == -(T)INFINITY) continue;                                             \
        T* er = e + r * n;                                                                    \
        T sum = 0;                                                                            \
        _Pragma("omp simd reduction(+:sum)")                                                  \
        for (long long j = 0; j < n; j++) sum += er[j];                                       \
        const T inv = (T)1 / sum;                                                             \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) er[j] *= inv;                                       \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* out = w * (g - sum(g * w)) * scale per row. */                                             \
void softmax_backward_##SUFFIX(const T* g, const T* w, T* out, long long rows, long long n,   \
                               T scale) {                                                     \
    for (long long r = 0; r < rows; r++) {                                                    \
        const T* gr = g + r * n;                                                              \
        const T* wr = w + r * n;                                                              \
        T* o = out + r * n;                                                                   \
        T dot = 0;                                                                            \
        _Pragma("omp simd reduction(+:dot)")                                                  \
        for (long long j = 0; j < n; j++) dot += gr[j] * wr[j];                               \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) o[j] = wr[j] * (gr[j] - dot) * scale;               \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* y = max(y + b, 0) per row, in place; b may be NULL. A NaN stays NaN, as with np.maximum. */ \
void bias_relu_##SUFFIX(T* y, const T* b, long long rows, long long n) {                        \
    for (long long r = 0; r < rows; r++) {                                                    \
        T* yr = y + r * n;                                                                    \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) {                                                   \
            const T v = b ? yr[j] + b[j] : yr[j];                                             \
            yr[j] = v < 0 ? (T)0 : v;                                                         \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* dx = g * [y > 0] per row (g * 0 where y <= 0: a NaN in g stays NaN, as in NumPy), and     \
   db += dx summed over these rows; db may be NULL. */                                        \
void relu_backward_##SUFFIX(const T* g, const T* y, T* dx, T* db, long long rows, long long n) { \
    for (long long r = 0; r < rows; r++) {                                                    \
        const T* gr = g + r * n;                                                              \
        const T* yr = y + r * n;                                                              \
        T* dr = dx + r * n;                                                                   \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) dr[j] = gr[j] * (T)(yr[j] > 0);                     \
        if (db) {                                                                             \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < n; j++) db[j] += dr[j];                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* One Adam update of n elements, in place (the math is in minigrad.optim.Adam), with the     \
   operations in the order of Backend.adam_update's NumPy expressions (and 1 - b1, 1 - b2     \
   rounded as there), so that both give the same bits:                                        \
   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;                                           \
   p = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps). */                        \
void adam_update_##SUFFIX(T* p, const T* g, T* m, T* v, long long n, T beta1, T one_minus_b1, \
                          T beta2, T one_minus_b2, T step_size, T bias_correction2_sqrt,      \
                          T eps) {                                                            \
    _Pragma("omp simd")                                                                       \
    for (long long i = 0; i < n; i++) {                                                       \
        const T gi = g[i];                                                                    \
        const T mi = m[i] * beta1 + gi * one_minus_b1;                                        \
        const T vi = v[i] * beta2 + (gi * gi) * one_minus_b2;                                 \
        m[i] = mi;                                                                            \
        v[i] = vi;                                                                            \
        const T denom = SQRT(vi) / bias_correction2_sqrt + eps;                               \
        p[i] += (mi / denom) * -step_size;                                                    \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* target[index[r]] += values[r] for the rows r = 0..rows-1 of n elements (an embedding's   \
   gradient); repeated indices add up in row order, as np.add.at does. */                     \
void scatter_add_rows_##SUFFIX(T* target, const long long* index, const T* values,            \
                               long long rows, long long n) {                                 \
    for (long long r = 0; r < rows; r++) {                                                    \
        T* t = target + index[r] * n;                                                         \
        const T* v = values + r * n;                                                          \
        _Pragma("omp simd")                                                                   \
        for (long long j = 0; j < n; j++) t[j] += v[j];                                       \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* c (m x n, row stride ldc) = op(a) op(b), op transposing or not (ta, tb: CBLAS_(NO_)TRANS), \
   by the BLAS's cblas_?gemm at address `gemm` (a build with 64-bit integers). */             \
typedef void (*gemm_##SUFFIX##_t)(int, int, int, long long, long long, long long, T, const T*, \
                                  long long, const T*, long long, T, T*, long long);          \
static void gemm_##SUFFIX(void* gemm, int ta, int tb, long long m, long long n, long long k,    \
                          const T* a, long long lda, const T* b, long long ldb, T* c,         \
                          long long ldc) {                                                    \
    ((gemm_##SUFFIX##_t)gemm)(CBLAS_ROW_MAJOR, ta, tb, m, n, k, (T)1, a, lda, b, ldb, (T)0, c, ldc); \
}                                                                                             \
                                                                                              \
/* A Linear layer's forward, out = x w^T + b (rows x nout) for x (rows x nin), w (nout x nin) \
   and b (nout) or NULL, then out = max(out, 0) when relu: the product by the BLAS (the      \
   call NumPy makes for x @ w.T), then the bias and the clamp in one pass over out. */        \
void linear_forward_##SUFFIX(void* gemm, const T* x, const T* w, const T* b,      \
                             T* out, long long rows, long long nin, long long nout, int relu) { \
    gemm_##SUFFIX(gemm, CBLAS_NO_TRANS, CBLAS_TRANS, rows, nout, nin, x, nin, w, nin,  \
                  out, nout);                                                                 \
    if (relu) {                                                                               \
        bias_relu_##SUFFIX(out, b, rows, nout);                                               \
    } else if (b) {                                                                           \
        for (long long r = 0; r < rows; r++) {                                                \
            T* o = out + r * nout;                                                            \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < nout; j++) o[j] += b[j];                                \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* A Linear layer's backward for the output gradient g (rows x nout). When y (the output of   \
   linear_forward with relu) is given, gy = g * [y > 0] is written into `kept`, else gy = g;  \
   then dx = gy w (rows x nin), dw = gy^T x (nout x nin) by the BLAS (NumPy's calls for       \
   g @ w and g.T @ x), and db += the column sums of gy. dx, dw, db: NULL when not wanted;    \
   db must hold zeros. */                                                                     \
void linear_backward_##SUFFIX(void* gemm, const T* g, const T* y, T* kept,        \
                              const T* x, const T* w, T* dx, T* dw, T* db, long long rows,    \
                              long long nin, long long nout) {                                \
    const T* gy = g;                                                                          \
    if (y) {                                                                                  \
        relu_backward_##SUFFIX(g, y, kept, db, rows, nout);                                   \
        gy = kept;                                                                            \
    } else if (db) {                                                                          \
        for (long long r = 0; r < rows; r++) {                                                \
            const T* gr = g + r * nout;                                                       \
            _Pragma("omp simd")                                                               \
            for (long long j = 0; j < nout; j++) db[j] += gr[j];                              \
        }                                                                                     \
    }                                                                                         \
    if (dx)                                                                                   \
        gemm_##SUFFIX(gemm, CBLAS_NO_TRANS, CBLAS_NO_TRANS, rows, nin, nout, gy, nout, \
                      w, nin, dx, nin);                                                       \
    if (dw)                                                                                   \
        gemm_##SUFFIX(gemm, CBLAS_TRANS, CBLAS_NO_TRANS, nout, nin, rows, gy, nout, x, \
                      nin, dw, nin);                                                          \
}                                                                                             \
                                                                                              \
/* adam_update for `count` parameters in one call: parameter c has n[c] elements at p[c],     \
   g[c], m[c], v[c], and its own step size and bias correction (its own step count). */       \
void adam_update_many_##SUFFIX(T* const* p, T* const* g, T* const* m, T* const* v,            \
                               const long long* n, const T* step_size,                        \
                               const T* bias_correction2_sqrt, long long count, T beta1,      \
                               T one_minus_b1, T beta2, T one_minus_b2, T eps) {              \
    for (long long c = 0; c < count; c++)                                                     \
        adam_update_##SUFFIX(p[c], g[c], m[c], v[c], n[c], beta1, one_minus_b1, beta2,        \
                             one_minus_b2, step_size[c], bias_correction2_sqrt[c], eps);      \
}

DEFINE_KERNELS(float, f32, sqrtf)
DEFINE_KERNELS(double, f64, sqrt)
"""

# The C signatures, for ctypes: "p" a pointer (an array, or NULL), "i" a C int, "q" a long
# long, "T" the element type (float for f32, double for f64).
SIGNATURES = {
    "layer_norm_forward": "pppppp" + "qq" + "T",
    "layer_norm_backward": "pppppppp" + "qq",
    "softmax_prepare": "p" + "qqq" + "T" + "i" + "p" + "i" + "pp" + "q" + "p",
    "softmax_finish": "p" + "qqq" + "p",
    "softmax_backward": "ppp" + "qq" + "T",
    "bias_relu": "pp" + "qq",
    "relu_backward": "pppp" + "qq",
    "scatter_add_rows": "ppp" + "qq",
    "linear_forward": "p" + "pppp" + "qqq" + "i",
    "linear_backward": "p" + "pppppppp" + "qqq",
    "adam_update": "pppp" + "q" + "TTTTTTT",
    "adam_update_many": "pppp" + "ppp" + "q" + "TTTTT",
}
