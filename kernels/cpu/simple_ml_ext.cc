// Chapter 1 (course hw0 Q6): one epoch of softmax regression on raw row-major pointers, in plain C++.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

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
      float total = 0.0f;
      for (size_t c = 0; c < k; ++c) total += (z[c] = std::exp(z[c]));
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

PYBIND11_MODULE(simple_ml_ext, m) {
  m.def(
      "softmax_regression_epoch_cpp",
      [](py::array_t<float, py::array::c_style> X, py::array_t<unsigned char, py::array::c_style> y,
         py::array_t<float, py::array::c_style> theta, float lr, int batch) {
        if (X.ndim() != 2 || y.ndim() != 1 || theta.ndim() != 2)
          throw std::invalid_argument("softmax_regression_epoch_cpp: expected X (m, n), y (m,), theta (n, k)");
        if (X.shape(0) != y.shape(0) || X.shape(1) != theta.shape(0))
          throw std::invalid_argument("softmax_regression_epoch_cpp: shapes X " + std::to_string(X.shape(0)) +
                                      "x" + std::to_string(X.shape(1)) + ", y " + std::to_string(y.shape(0)) +
                                      ", theta " + std::to_string(theta.shape(0)) + "x" +
                                      std::to_string(theta.shape(1)) + " do not fit together");
        if (batch <= 0) throw std::invalid_argument("softmax_regression_epoch_cpp: batch must be positive");
        const size_t k = theta.shape(1);
        auto yv = y.unchecked<1>();
        for (py::ssize_t i = 0; i < y.shape(0); ++i)
          if (yv(i) >= k) throw std::invalid_argument("softmax_regression_epoch_cpp: label out of range");
        softmax_regression_epoch_cpp(X.data(), y.data(), theta.mutable_data(), X.shape(0), X.shape(1), k, lr,
                                     static_cast<size_t>(batch));
      },
      py::arg("X"), py::arg("y"), py::arg("theta"), py::arg("lr"), py::arg("batch"));
}
