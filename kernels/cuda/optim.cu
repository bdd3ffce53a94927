// The fused Adam update: new parameter and moments in one pass (the formula of needle.optim.Adam).
#include "common.cuh"

/// lr_t = lr / (1 - beta1^t), v_scale = 1 / sqrt(1 - beta2^t); first: the moments start from zero.
extern "C" __global__ void KERNEL(adam_step)(const scalar_t* p, const scalar_t* g, const scalar_t* m, const scalar_t* v,
                                             scalar_t* out_p, scalar_t* out_m, scalar_t* out_v, idx_t n, scalar_t lr_t,
                                             scalar_t beta1, scalar_t beta2, scalar_t eps, scalar_t weight_decay,
                                             scalar_t v_scale, int first) {
  FOR_EACH_INDEX(i, n) {
    const scalar_t grad = g[i] + weight_decay * p[i];
    const scalar_t mi = (first ? scalar_t(0) : beta1 * m[i]) + (scalar_t(1) - beta1) * grad;
    const scalar_t vi = (first ? scalar_t(0) : beta2 * v[i]) + (scalar_t(1) - beta2) * grad * grad;
    out_m[i] = mi;
    out_v[i] = vi;
    out_p[i] = p[i] - lr_t * mi / (nd_sqrt(vi) * v_scale + eps);
  }
}
