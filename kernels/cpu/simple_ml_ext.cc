// Chapter 1 (course hw0 Q6): one epoch of softmax regression on raw row-major pointers, in plain C++.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

/// One SGD epoch over minibatches in order; updates theta (n x k) in place.
void softmax_regression_epoch_cpp(const float* X, const unsigned char* y, float* theta, size_t m, size_t n,
                                  size_t k, float lr, size_t batch) {
  std::vector<float> Z, grad(n * k);
  for (size_t start = 0; start < m; start += batch) {
    const size_t b = std::min(batch, m - start);
    const float* Xb = X + start * n;
    Z.assign(b * k, 0.0f);
    for (size_t i = 0; i < b; ++i) {  // Z = normalize(exp(Xb @ theta))
      float* z = &Z[i * k];
      for (size_t j = 0; j < n; ++j) {
        const float x = Xb[i * n + j];
        for (size_t c = 0; c < k; ++c) z[c] += x * theta[j * k + c];
      }
      const float zmax = *std::max_element(z, z + k);  // shift by the row max: same softmax, no overflow
      float total = 0.0f;
      for (size_t c = 0; c < k; ++c) total += (z[c] = std::exp(z[c] - zmax));
      for (size_t c = 0; c < k; ++c) z[c] /= total;
      z[y[start + i]] -= 1.0f;  // Z - I_y
    }
    std::fill(grad.begin(), grad.end(), 0.0f);
    for (size_t i = 0; i < b; ++i)  // grad = Xb^T (Z - I_y)
      for (size_t j = 0; j < n; ++j) {
        const float x = Xb[i * n + j];
        for (size_t c = 0; c < k; ++c) grad[j * k + c] += x * Z[i * k + c];
      }
    const float scale = lr / static_cast<float>(b);
    for (size_t t = 0; t < n * k; ++t) theta[t] -= scale * grad[t];
  }
}

/// Raise ValueError unless `a` is a C-contiguous array of T with `ndim` dimensions (and writeable if asked).
template <typename T>
void check_array(const py::array& a, const char* name, py::ssize_t ndim, bool writeable = false) {
  const std::string where = std::string("softmax_regression_epoch_cpp: ") + name;
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::value_error(where + " must have dtype " + py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                          py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != ndim) throw py::value_error(where + " must be " + std::to_string(ndim) + "-D");
  if (!(a.flags() & py::array::c_style)) throw py::value_error(where + " must be C-contiguous");
  if (writeable && !a.writeable()) throw py::value_error(where + " must be writeable (it is updated in place)");
}

PYBIND11_MODULE(simple_ml_ext, m) {
  m.def(
      "softmax_regression_epoch_cpp",
      [](py::array X, py::array y, py::array theta, float lr, py::ssize_t batch) {
        check_array<float>(X, "X", 2);
        check_array<unsigned char>(y, "y", 1);
        check_array<float>(theta, "theta", 2, true);
        if (X.shape(0) != y.shape(0) || X.shape(1) != theta.shape(0))
          throw py::value_error("softmax_regression_epoch_cpp: shapes X (" + std::to_string(X.shape(0)) + ", " +
                                std::to_string(X.shape(1)) + "), y (" + std::to_string(y.shape(0)) + ",), theta (" +
                                std::to_string(theta.shape(0)) + ", " + std::to_string(theta.shape(1)) +
                                ") do not fit together");
        if (batch <= 0) throw py::value_error("softmax_regression_epoch_cpp: batch must be positive");
        const size_t k = theta.shape(1);
        const auto* labels = static_cast<const unsigned char*>(y.data());
        for (py::ssize_t i = 0; i < y.shape(0); ++i)
          if (labels[i] >= k)
            throw py::value_error("softmax_regression_epoch_cpp: label " + std::to_string(labels[i]) +
                                  " out of range for " + std::to_string(k) + " classes");
        softmax_regression_epoch_cpp(static_cast<const float*>(X.data()), labels,
                                     static_cast<float*>(theta.mutable_data()), X.shape(0), X.shape(1), k, lr,
                                     static_cast<size_t>(batch));
      },
      py::arg("X"), py::arg("y"), py::arg("theta"), py::arg("lr"), py::arg("batch"),
      "One SGD epoch of softmax regression (course hw0 Q6); updates theta in place.");
}
