// Fused ops: each replaces a chain of elementwise kernels (contract: needle/backend_ndarray/fused.py).
// Ids and labels arrive as whole numbers stored in scalar_t; a bad one is reported through `status`
// (1: outside [0, num), 2: not a whole number), which the host reads after the launch.
#include "block_reduce.cuh"

/// 0 for a valid id, else the status code; NaN counts as out of range.
static __device__ __forceinline__ int bad_id(scalar_t id, idx_t num) {
  if (!(id >= 0 && id < (scalar_t)num)) return 1;
  return (scalar_t)(idx_t)id != id ? 2 : 0;
}

static __device__ __forceinline__ scalar_t nd_sigmoid(scalar_t x) { return (nd_tanh(x * scalar_t(0.5)) + 1) * scalar_t(0.5); }

// ---- embedding ----
extern "C" __global__ void KERNEL(embedding_gather)(const scalar_t* weight, const scalar_t* ids, scalar_t* out,
                                                    idx_t n_ids, idx_t num, idx_t dim, int* status) {
  FOR_EACH_INDEX(e, n_ids * dim) {
    const scalar_t id = ids[e / dim];
    const int bad = bad_id(id, num);
    if (bad) atomicMax(status, bad);
    out[e] = bad ? scalar_t(0) : weight[(idx_t)id * dim + e % dim];
  }
}

/// out must be zero: each row of grad is added at its id (atomics: ids repeat).
extern "C" __global__ void KERNEL(embedding_scatter_add)(const scalar_t* grad, const scalar_t* ids, scalar_t* out,
                                                         idx_t n_ids, idx_t num, idx_t dim, int* status) {
  FOR_EACH_INDEX(e, n_ids * dim) {
    const scalar_t id = ids[e / dim];
    const int bad = bad_id(id, num);
    if (bad)
      atomicMax(status, bad);
    else
      atomicAdd(&out[(idx_t)id * dim + e % dim], grad[e]);
  }
}

// ---- softmax cross-entropy: a block per row (long rows) or a thread per row (short rows) ----
extern "C" __global__ void KERNEL(softmax_xent_rows)(const scalar_t* logits, const scalar_t* labels, scalar_t* loss,
                                                     scalar_t* lse, idx_t m, idx_t k, int* status) {
  for (idx_t i = blockIdx.x; i < m; i += gridDim.x) {
    const scalar_t* z = logits + i * k;
    scalar_t mx = -nd_inf();
    for (idx_t j = threadIdx.x; j < k; j += blockDim.x) mx = nd_max(mx, z[j]);
    mx = block_all_reduce(mx, MaxOp());
    const scalar_t shift = (mx == mx && mx > -nd_inf() && mx < nd_inf()) ? mx : scalar_t(0);
    scalar_t s = 0;
    for (idx_t j = threadIdx.x; j < k; j += blockDim.x) s += nd_exp(z[j] - shift);
    s = block_reduce(s, SumOp());
    if (threadIdx.x == 0) {
      const int bad = bad_id(labels[i], k);
      if (bad) atomicMax(status, bad);
      lse[i] = nd_log(s) + shift;
      loss[i] = lse[i] - (bad ? scalar_t(0) : z[(idx_t)labels[i]]);
    }
  }
}

extern "C" __global__ void KERNEL(softmax_xent_serial)(const scalar_t* logits, const scalar_t* labels, scalar_t* loss,
                                                       scalar_t* lse, idx_t m, idx_t k, int* status) {
  FOR_EACH_INDEX(i, m) {
    const scalar_t* z = logits + i * k;
    scalar_t mx = -nd_inf();
    for (idx_t j = 0; j < k; ++j) mx = nd_max(mx, z[j]);
    const scalar_t shift = (mx == mx && mx > -nd_inf() && mx < nd_inf()) ? mx : scalar_t(0);
    scalar_t s = 0;
    for (idx_t j = 0; j < k; ++j) s += nd_exp(z[j] - shift);
    const int bad = bad_id(labels[i], k);
    if (bad) atomicMax(status, bad);
    lse[i] = nd_log(s) + shift;
    loss[i] = lse[i] - (bad ? scalar_t(0) : z[(idx_t)labels[i]]);
  }
}

extern "C" __global__ void KERNEL(softmax_xent_grad)(const scalar_t* logits, const scalar_t* labels, const scalar_t* lse,
                                                     const scalar_t* out_grad, scalar_t* out, idx_t m, idx_t k) {
  const scalar_t scale = out_grad[0] / (scalar_t)m;
  FOR_EACH_INDEX(e, m * k) {
    const idx_t i = e / k;
    const scalar_t hit = (idx_t)labels[i] == e % k ? scalar_t(1) : scalar_t(0);
    out[e] = scale * (nd_exp(logits[e] - lse[i]) - hit);
  }
}

// ---- sigmoid ----
extern "C" __global__ void KERNEL(sigmoid)(const scalar_t* a, scalar_t* out, idx_t n) {
  FOR_EACH_INDEX(i, n) out[i] = nd_sigmoid(a[i]);
}

extern "C" __global__ void KERNEL(sigmoid_grad)(const scalar_t* y, const scalar_t* dy, scalar_t* out, idx_t n) {
  FOR_EACH_INDEX(i, n) out[i] = dy[i] * y[i] * (1 - y[i]);
}

// ---- batch normalization over (outer, c, inner): a block per channel ----
static __device__ __forceinline__ idx_t channel_index(idx_t e, idx_t ch, idx_t c, idx_t inner) {
  return (e / inner) * c * inner + ch * inner + e % inner;
}

extern "C" __global__ void KERNEL(batchnorm_stats)(const scalar_t* x, scalar_t* mean, scalar_t* var, idx_t outer, idx_t c,
                                                   idx_t inner) {
  const idx_t n = outer * inner;
  for (idx_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    scalar_t s = 0;
    for (idx_t e = threadIdx.x; e < n; e += blockDim.x) s += x[channel_index(e, ch, c, inner)];
    const scalar_t mu = block_all_reduce(s, SumOp()) / (scalar_t)n;
    scalar_t q = 0;
    for (idx_t e = threadIdx.x; e < n; e += blockDim.x) {
      const scalar_t d = x[channel_index(e, ch, c, inner)] - mu;
      q += d * d;
    }
    q = block_reduce(q, SumOp());
    if (threadIdx.x == 0) {
      mean[ch] = mu;
      var[ch] = q / (scalar_t)n;
    }
  }
}

extern "C" __global__ void KERNEL(batchnorm_forward)(const scalar_t* x, const scalar_t* weight, const scalar_t* bias,
                                                     const scalar_t* mean, const scalar_t* var, scalar_t* out,
                                                     idx_t outer, idx_t c, idx_t inner, scalar_t eps) {
  FOR_EACH_INDEX(e, outer * c * inner) {
    const idx_t ch = e / inner % c;
    out[e] = (x[e] - mean[ch]) / nd_sqrt(var[ch] + eps) * weight[ch] + bias[ch];
  }
}

/// dbias = sum dy, dweight = sum dy xhat per channel; dx = w rstd (dy - [batch_stats] (dbias + xhat dweight) / n).
extern "C" __global__ void KERNEL(batchnorm_backward)(const scalar_t* x, const scalar_t* dy, const scalar_t* weight,
                                                      const scalar_t* mean, const scalar_t* var, scalar_t* dx,
                                                      scalar_t* dweight, scalar_t* dbias, idx_t outer, idx_t c,
                                                      idx_t inner, scalar_t eps, int batch_stats) {
  const idx_t n = outer * inner;
  for (idx_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const scalar_t mu = mean[ch], rstd = 1 / nd_sqrt(var[ch] + eps);
    scalar_t sg = 0, sgx = 0;
    for (idx_t e = threadIdx.x; e < n; e += blockDim.x) {
      const idx_t at = channel_index(e, ch, c, inner);
      sg += dy[at];
      sgx += dy[at] * ((x[at] - mu) * rstd);
    }
    sg = block_all_reduce(sg, SumOp());
    sgx = block_all_reduce(sgx, SumOp());
    if (threadIdx.x == 0) {
      dbias[ch] = sg;
      dweight[ch] = sgx;
    }
    const scalar_t k = weight[ch] * rstd, mg = batch_stats ? sg / (scalar_t)n : scalar_t(0),
                   mgx = batch_stats ? sgx / (scalar_t)n : scalar_t(0);
    for (idx_t e = threadIdx.x; e < n; e += blockDim.x) {
      const idx_t at = channel_index(e, ch, c, inner);
      dx[at] = k * (dy[at] - mg - (x[at] - mu) * rstd * mgx);
    }
  }
}

// ---- layer normalization over the last axis of (rows, dim): a thread per row ----
static __device__ __forceinline__ void row_stats(const scalar_t* x, idx_t dim, scalar_t eps, scalar_t* mu, scalar_t* rstd) {
  scalar_t s = 0;
  for (idx_t j = 0; j < dim; ++j) s += x[j];
  const scalar_t m = s / (scalar_t)dim;
  scalar_t q = 0;
  for (idx_t j = 0; j < dim; ++j) q += (x[j] - m) * (x[j] - m);
  *mu = m;
  *rstd = 1 / nd_sqrt(q / (scalar_t)dim + eps);
}

extern "C" __global__ void KERNEL(layernorm_forward)(const scalar_t* x, const scalar_t* weight, const scalar_t* bias,
                                                     scalar_t* out, idx_t rows, idx_t dim, scalar_t eps) {
  FOR_EACH_INDEX(r, rows) {
    scalar_t mu, rstd;
    row_stats(x + r * dim, dim, eps, &mu, &rstd);
    for (idx_t j = 0; j < dim; ++j) out[r * dim + j] = (x[r * dim + j] - mu) * rstd * weight[j] + bias[j];
  }
}

/// dx per row, and each row's (mean, rstd) into stats for layernorm_backward_params.
extern "C" __global__ void KERNEL(layernorm_backward_rows)(const scalar_t* x, const scalar_t* dy, const scalar_t* weight,
                                                           scalar_t* dx, scalar_t* stats, idx_t rows, idx_t dim,
                                                           scalar_t eps) {
  FOR_EACH_INDEX(r, rows) {
    const scalar_t* xr = x + r * dim;
    const scalar_t* g = dy + r * dim;
    scalar_t mu, rstd;
    row_stats(xr, dim, eps, &mu, &rstd);
    scalar_t sd = 0, sdx = 0;
    for (idx_t j = 0; j < dim; ++j) {
      const scalar_t d = g[j] * weight[j];
      sd += d;
      sdx += d * ((xr[j] - mu) * rstd);
    }
    const scalar_t md = sd / (scalar_t)dim, mdx = sdx / (scalar_t)dim;
    for (idx_t j = 0; j < dim; ++j) dx[r * dim + j] = rstd * (g[j] * weight[j] - md - (xr[j] - mu) * rstd * mdx);
    stats[2 * r] = mu;
    stats[2 * r + 1] = rstd;
  }
}

/// dweight[j] = sum_r dy[r, j] xhat[r, j], dbias[j] = sum_r dy[r, j]: a thread per column.
extern "C" __global__ void KERNEL(layernorm_backward_params)(const scalar_t* x, const scalar_t* dy, const scalar_t* stats,
                                                             scalar_t* dweight, scalar_t* dbias, idx_t rows, idx_t dim) {
  FOR_EACH_INDEX(j, dim) {
    scalar_t sw = 0, sb = 0;
    for (idx_t r = 0; r < rows; ++r) {
      sw += dy[r * dim + j] * ((x[r * dim + j] - stats[2 * r]) * stats[2 * r + 1]);
      sb += dy[r * dim + j];
    }
    dweight[j] = sw;
    dbias[j] = sb;
  }
}

// ---- the LSTM cell: z (bs, 4h) in gate order i, f, g, o; a thread per (row, unit) ----
extern "C" __global__ void KERNEL(lstm_cell)(const scalar_t* z, const scalar_t* c, scalar_t* h_out, scalar_t* c_out,
                                             idx_t bs, idx_t h) {
  FOR_EACH_INDEX(e, bs * h) {
    const scalar_t* zr = z + (e / h) * 4 * h + e % h;
    const scalar_t i = nd_sigmoid(zr[0]), f = nd_sigmoid(zr[h]), g = nd_tanh(zr[2 * h]), o = nd_sigmoid(zr[3 * h]);
    const scalar_t cn = f * c[e] + i * g;
    c_out[e] = cn;
    h_out[e] = o * nd_tanh(cn);
  }
}

extern "C" __global__ void KERNEL(lstm_cell_grad)(const scalar_t* z, const scalar_t* c, const scalar_t* dh,
                                                  const scalar_t* dc_new, scalar_t* dz, scalar_t* dc, idx_t bs, idx_t h) {
  FOR_EACH_INDEX(e, bs * h) {
    const idx_t base = (e / h) * 4 * h + e % h;
    const scalar_t i = nd_sigmoid(z[base]), f = nd_sigmoid(z[base + h]), g = nd_tanh(z[base + 2 * h]),
                   o = nd_sigmoid(z[base + 3 * h]);
    const scalar_t tc = nd_tanh(f * c[e] + i * g);
    const scalar_t d = dc_new[e] + dh[e] * o * (1 - tc * tc);  // the total adjoint of c'
    dz[base] = d * g * i * (1 - i);
    dz[base + h] = d * c[e] * f * (1 - f);
    dz[base + 2 * h] = d * i * (1 - g * g);
    dz[base + 3 * h] = dh[e] * tc * o * (1 - o);
    dc[e] = d * f;
  }
}

// ---- im2col: a thread per element of the window matrix, reading the image through its strides ----
extern "C" __global__ void KERNEL(im2col)(const scalar_t* a, scalar_t* out, idx_t n, idx_t h, idx_t w, idx_t c,
                                          idx_t kh, idx_t kw, idx_t stride, idx_t pad_h, idx_t pad_w, idx_t out_h,
                                          idx_t out_w, idx_t offset, idx_t sn, idx_t sh, idx_t sw, idx_t sc) {
  FOR_EACH_INDEX(e, n * out_h * out_w * kh * kw * c) {
    const idx_t k = e % c, j = e / c % kw, i = e / (c * kw) % kh, ox = e / (c * kw * kh) % out_w;
    const idx_t oy = e / (c * kw * kh * out_w) % out_h, b = e / (c * kw * kh * out_w * out_h);
    const idx_t y = oy * stride + i - pad_h, x = ox * stride + j - pad_w;
    out[e] = (y < 0 || y >= h || x < 0 || x >= w) ? scalar_t(0) : a[offset + b * sn + y * sh + x * sw + k * sc];
  }
}

// ---- col2im (a convolution's input gradient): a thread per element of out, gathering the taps that cover it ----
extern "C" __global__ void KERNEL(col2im)(const scalar_t* col, scalar_t* out, idx_t n, idx_t h, idx_t w, idx_t c,
                                          idx_t kh, idx_t kw, idx_t stride, idx_t pad_h, idx_t pad_w, idx_t out_h,
                                          idx_t out_w) {
  FOR_EACH_INDEX(e, n * h * w * c) {
    const idx_t k = e % c, x = e / c % w, y = e / (c * w) % h, b = e / (c * w * h);
    scalar_t acc = 0;
    for (idx_t i = (y + pad_h) % stride; i < kh && i <= y + pad_h; i += stride) {
      const idx_t oy = (y + pad_h - i) / stride;
      if (oy >= out_h) continue;
      for (idx_t j = (x + pad_w) % stride; j < kw && j <= x + pad_w; j += stride) {
        const idx_t ox = (x + pad_w - j) / stride;
        if (ox < out_w) acc += col[((((b * out_h + oy) * out_w + ox) * kh + i) * kw + j) * c + k];
      }
    }
    out[e] = acc;
  }
}
