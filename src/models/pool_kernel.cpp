// Max-pool along the tokens of a padded (B, T, D) batch, stride 1, kernel 2 * reach + 1, padded and
// out-of-range neighbours ignored, forward and backward (torch.ops.autoattend.max_pool_time /
// max_pool_time_backward). Compiled at first use by src/models/cpu_kernels.py.
//
// Why: the max-pool op ran as ATen's channels-last max_pool2d, which took about 2 ms forward on a
// (128, 47, 64) training batch (5 ns an element, a copy takes 0.1) and was 7 % of a supernet step in
// the profiler. Here a row of D channels is compared with its neighbours' rows in vector registers.
//
// Definition, for a real position t of sequence b (mask True) and channel d:
//   out[b, t, d] = max over real positions p in [t - reach, t + reach] of x[b, p, d],
// the first such p in token order where several are equal (as ATen's max-pool picks its index), and
// arg[b, t, d] = p - t. Padded rows of out are 0. This is the op's max-pool of x with its padded
// positions at -inf, the sequence ends being -inf padding too. Backward: dx[b, p, d] gets the sum of
// grad[b, t, d] over the real t whose arg points at p; padded rows of dx are 0. For finite inputs
// (the kernels are built with -ffast-math).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

void check(const at::Tensor& x, const at::Tensor& mask, int64_t reach, const char* what) {
  TORCH_CHECK(x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "autoattend ", what, ": a float32 or float64 CPU tensor is needed");
  TORCH_CHECK(x.dim() == 3 && mask.dim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == x.size(1),
              "autoattend ", what, ": (B, T, D) and a (B, T) mask are needed, got ", x.sizes(), " and ", mask.sizes());
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.device().is_cpu(), "autoattend ", what, ": mask must be bool");
  TORCH_CHECK(reach >= 0 && reach <= 63, "autoattend ", what, ": reach must be in [0, 63]");
}

// -> (out (B, T, D), arg (B, T, D) int8 offsets, or an empty tensor when !with_arg)
std::vector<at::Tensor> max_pool_time(const at::Tensor& x_in, const at::Tensor& mask_in, int64_t reach,
                                      bool with_arg) {
  check(x_in, mask_in, reach, "max_pool_time");
  const auto x = x_in.contiguous();
  const auto mask = mask_in.contiguous();
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  auto out = at::empty(x.sizes(), x.options());
  const auto int8 = x.options().dtype(at::kChar);
  auto arg = with_arg ? at::empty(x.sizes(), int8) : at::empty({0}, int8);
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(T * D, 1));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "autoattend_max_pool_time", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    int8_t* ap = with_arg ? arg.data_ptr<int8_t>() : nullptr;
    const bool* real = mask.data_ptr<bool>();
    at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const bool* rb = real + b * T;
        for (int64_t t = 0; t < T; ++t) {
          scalar_t* __restrict__ o = op + (b * T + t) * D;
          int8_t* __restrict__ a = ap ? ap + (b * T + t) * D : nullptr;
          if (!rb[t]) {
            std::fill(o, o + D, scalar_t(0));
            if (a) std::memset(a, 0, D);
            continue;
          }
          const int64_t lo = std::max<int64_t>(0, t - reach), hi = std::min<int64_t>(T - 1, t + reach);
          bool first = true;
          for (int64_t p = lo; p <= hi; ++p) {
            if (!rb[p]) continue;
            const scalar_t* __restrict__ xr = xp + (b * T + p) * D;
            const auto offset = static_cast<int8_t>(p - t);
            if (first) {
              std::memcpy(o, xr, sizeof(scalar_t) * D);
              if (a) std::memset(a, offset, D);
              first = false;
            } else if (a) {
              for (int64_t d = 0; d < D; ++d) {
                const bool win = xr[d] > o[d];
                o[d] = win ? xr[d] : o[d];
                a[d] = win ? offset : a[d];
              }
            } else {
              for (int64_t d = 0; d < D; ++d) o[d] = xr[d] > o[d] ? xr[d] : o[d];
            }
          }
        }
      }
    });
  });
  return {out, arg};
}

// grad (B, T, D), arg from max_pool_time -> dx (B, T, D)
at::Tensor max_pool_time_backward(const at::Tensor& grad_in, const at::Tensor& arg_in, const at::Tensor& mask_in,
                                  int64_t reach) {
  check(grad_in, mask_in, reach, "max_pool_time_backward");
  TORCH_CHECK(arg_in.scalar_type() == at::kChar && arg_in.sizes() == grad_in.sizes(),
              "autoattend max_pool_time_backward: arg must be the forward's int8 offsets");
  const auto grad = grad_in.contiguous();
  const auto arg = arg_in.contiguous();
  const auto mask = mask_in.contiguous();
  const int64_t B = grad.size(0), T = grad.size(1), D = grad.size(2);
  auto dx = at::zeros(grad.sizes(), grad.options());
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(T * D, 1));
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "autoattend_max_pool_time_backward", [&] {
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    const int8_t* ap = arg.data_ptr<int8_t>();
    scalar_t* dp = dx.data_ptr<scalar_t>();
    const bool* real = mask.data_ptr<bool>();
    at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const bool* rb = real + b * T;
        for (int64_t t = 0; t < T; ++t) {
          if (!rb[t]) continue;
          const scalar_t* __restrict__ g = gp + (b * T + t) * D;
          const int8_t* __restrict__ a = ap + (b * T + t) * D;
          const int64_t lo = std::max<int64_t>(0, t - reach), hi = std::min<int64_t>(T - 1, t + reach);
          for (int64_t p = lo; p <= hi; ++p) {
            if (!rb[p]) continue;
            scalar_t* __restrict__ dr = dp + (b * T + p) * D;
            const auto offset = static_cast<int8_t>(p - t);
            for (int64_t d = 0; d < D; ++d) dr[d] += a[d] == offset ? g[d] : scalar_t(0);
          }
        }
      }
    });
  });
  return dx;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("max_pool_time(Tensor x, Tensor mask, int reach, bool with_arg) -> Tensor[]", &max_pool_time);
  m.def("max_pool_time_backward(Tensor grad, Tensor arg, Tensor mask, int reach) -> Tensor", &max_pool_time_backward);
}
