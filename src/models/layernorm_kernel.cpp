// LayerNorm over the last dimension of the real positions of a padded (B, T, D) batch, forward and
// backward (torch.ops.autoattend.masked_layer_norm / masked_layer_norm_backward). Compiled at first
// use by src/models/cpu_kernels.py.
//
// Why: every searched op and every attention output starts with a LayerNorm, and ATen's CPU
// LayerNorm took about 0.25 ms forward and 0.15 ms backward on a (128, 47, 64) training batch, about
// 7 % of a supernet step (profiled), plus the pass that re-zeroes the padded rows after it. Here a
// row of D = 64 stays in registers, padded rows are only filled, never normalised, and the output
// needs no second pass.
//
// Definition (real rows; biased variance, as nn.LayerNorm): mean = sum(x) / D,
// var = sum((x - mean)^2) / D, rstd = 1 / sqrt(var + eps), y = (x - mean) * rstd * w + b.
// Padded rows: y = fill. Backward (real rows): xhat = (x - mean) * rstd, gw = dy * w,
// dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), dw = sum(dy * xhat), db = sum(dy);
// padded rows get dx = 0 and add nothing to dw and db.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t kRowsPerChunk = 64;

void check(const at::Tensor& x, const at::Tensor& mask, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "autoattend masked_layer_norm: x must be a float32 or float64 CPU tensor");
  TORCH_CHECK(x.dim() == 3 && mask.dim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == x.size(1),
              "autoattend masked_layer_norm: x must be (B, T, D) and mask (B, T), got ", x.sizes(), " and ",
              mask.sizes());
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.device().is_cpu(), "autoattend masked_layer_norm: mask must be bool");
  TORCH_CHECK(weight.numel() == x.size(2) && bias.numel() == x.size(2) && weight.scalar_type() == x.scalar_type() &&
                  bias.scalar_type() == x.scalar_type(),
              "autoattend masked_layer_norm: weight and bias must be (D,) of x's dtype");
}

// -> (y (B, T, D) contiguous, mean (B, T), rstd (B, T)); mean and rstd are 0 at padded rows
std::vector<at::Tensor> masked_layer_norm(const at::Tensor& x_in, const at::Tensor& mask_in, const at::Tensor& weight_in,
                                          const at::Tensor& bias_in, double eps, double fill) {
  check(x_in, mask_in, weight_in, bias_in);
  const auto x = x_in.contiguous();
  const auto mask = mask_in.contiguous();
  const auto weight = weight_in.contiguous();
  const auto bias = bias_in.contiguous();
  const int64_t D = x.size(2), rows = x.size(0) * x.size(1);
  auto y = at::empty(x.sizes(), x.options());
  auto mean = at::zeros({x.size(0), x.size(1)}, x.options());
  auto rstd = at::zeros({x.size(0), x.size(1)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "autoattend_masked_layer_norm", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* w = weight.data_ptr<scalar_t>();
    const scalar_t* b = bias.data_ptr<scalar_t>();
    const bool* real = mask.data_ptr<bool>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    scalar_t* mp = mean.data_ptr<scalar_t>();
    scalar_t* rp = rstd.data_ptr<scalar_t>();
    const auto filler = static_cast<scalar_t>(fill);
    const scalar_t inv_d = scalar_t(1) / static_cast<scalar_t>(D);
    at::parallel_for(0, rows, kRowsPerChunk, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* out = yp + r * D;
        if (!real[r]) {
          std::fill(out, out + D, filler);
          continue;
        }
        const scalar_t* row = xp + r * D;
        scalar_t sum = 0;
        for (int64_t d = 0; d < D; ++d) sum += row[d];
        const scalar_t mu = sum * inv_d;
        scalar_t sq = 0;
        for (int64_t d = 0; d < D; ++d) sq += (row[d] - mu) * (row[d] - mu);
        const scalar_t rs = scalar_t(1) / std::sqrt(sq * inv_d + static_cast<scalar_t>(eps));
        for (int64_t d = 0; d < D; ++d) out[d] = (row[d] - mu) * rs * w[d] + b[d];
        mp[r] = mu;
        rp[r] = rs;
      }
    });
  });
  return {y, mean, rstd};
}

// -> (dx (B, T, D), dw (D,), db (D,))
std::vector<at::Tensor> masked_layer_norm_backward(const at::Tensor& grad_in, const at::Tensor& x_in,
                                                   const at::Tensor& mask_in, const at::Tensor& mean,
                                                   const at::Tensor& rstd, const at::Tensor& weight_in) {
  const auto grad = grad_in.contiguous();
  const auto x = x_in.contiguous();
  const auto mask = mask_in.contiguous();
  const auto weight = weight_in.contiguous();
  TORCH_CHECK(grad.sizes() == x.sizes() && mean.is_contiguous() && rstd.is_contiguous() &&
                  mean.numel() == x.size(0) * x.size(1) && rstd.numel() == mean.numel(),
              "autoattend masked_layer_norm_backward: the forward's saved statistics do not fit x");
  const int64_t D = x.size(2), rows = x.size(0) * x.size(1);
  auto dx = at::empty(x.sizes(), x.options());
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  // per-chunk partial sums of dw and db, added in chunk order: the result does not depend on the
  // number of threads
  auto partial = at::zeros({std::max<int64_t>(chunks, 1), 2, D}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "autoattend_masked_layer_norm_backward", [&] {
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* w = weight.data_ptr<scalar_t>();
    const scalar_t* mp = mean.data_ptr<scalar_t>();
    const scalar_t* rp = rstd.data_ptr<scalar_t>();
    const bool* real = mask.data_ptr<bool>();
    scalar_t* dxp = dx.data_ptr<scalar_t>();
    scalar_t* pp = partial.data_ptr<scalar_t>();
    const scalar_t inv_d = scalar_t(1) / static_cast<scalar_t>(D);
    at::parallel_for(0, chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      for (int64_t c = chunk_begin; c < chunk_end; ++c) {
        scalar_t* dw = pp + c * 2 * D;
        scalar_t* db = dw + D;
        const int64_t end = std::min(rows, (c + 1) * kRowsPerChunk);
        for (int64_t r = c * kRowsPerChunk; r < end; ++r) {
          scalar_t* out = dxp + r * D;
          if (!real[r]) {
            std::fill(out, out + D, scalar_t(0));
            continue;
          }
          const scalar_t* g = gp + r * D;
          const scalar_t* row = xp + r * D;
          const scalar_t mu = mp[r], rs = rp[r];
          scalar_t sum_gw = 0, sum_gw_xhat = 0;
          for (int64_t d = 0; d < D; ++d) {
            const scalar_t xhat = (row[d] - mu) * rs;
            const scalar_t gw = g[d] * w[d];
            sum_gw += gw;
            sum_gw_xhat += gw * xhat;
            dw[d] += g[d] * xhat;
            db[d] += g[d];
          }
          const scalar_t c1 = sum_gw_xhat * inv_d, c2 = sum_gw * inv_d;
          for (int64_t d = 0; d < D; ++d) {
            const scalar_t xhat = (row[d] - mu) * rs;
            out[d] = rs * (g[d] * w[d] - c2 - xhat * c1);
          }
        }
      }
    });
  });
  auto sums = partial.sum(0);  // (2, D)
  return {dx, sums[0], sums[1]};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("masked_layer_norm(Tensor x, Tensor mask, Tensor weight, Tensor bias, float eps, float fill) -> Tensor[]",
        &masked_layer_norm);
  m.def("masked_layer_norm_backward(Tensor grad, Tensor x, Tensor mask, Tensor mean, Tensor rstd, Tensor weight) -> Tensor[]",
        &masked_layer_norm_backward);
}
