// Padded positions of a (B, T, D) tensor set to a value, in one pass (torch.ops.autoattend.fill_padded).
// Compiled at first use by src/models/cpu_kernels.py.
//
// Why: every op output is re-zeroed at its padded positions (src/models/ops.py zero_padded), forward
// and backward. ATen's masked_fill with a (B, T, 1) mask and torch.where run element by element
// without vectorisation: about 7x a copy of the same tensor, and together with dropout's torch.where
// about a fifth of a supernet step (profiled). Here each (b, t) row is one memcpy or one fill.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace {

// x (B, T, D), any strides; mask (B, T) bool, True at real positions. Returns a contiguous copy of
// x with every row (b, t) where mask is False set to `value`.
at::Tensor fill_padded(const at::Tensor& x, const at::Tensor& mask, double value) {
  TORCH_CHECK(x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "autoattend fill_padded: x must be a float32 or float64 CPU tensor");
  TORCH_CHECK(x.dim() == 3 && mask.dim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == x.size(1),
              "autoattend fill_padded: x must be (B, T, D) and mask (B, T), got ", x.sizes(), " and ", mask.sizes());
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.device().is_cpu(), "autoattend fill_padded: mask must be bool");
  const auto m = mask.contiguous();
  auto out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t T = x.size(1), D = x.size(2), rows = x.size(0) * T;
  const int64_t sb = x.stride(0), st = x.stride(1), sd = x.stride(2);
  const bool* real = m.data_ptr<bool>();
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(D, 1));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "autoattend_fill_padded", [&] {
    const scalar_t* src = x.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    const auto fill = static_cast<scalar_t>(value);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* o = dst + r * D;
        if (!real[r]) {
          std::fill(o, o + D, fill);
          continue;
        }
        const scalar_t* row = src + (r / T) * sb + (r % T) * st;
        if (sd == 1) {
          std::memcpy(o, row, sizeof(scalar_t) * D);
        } else {
          for (int64_t d = 0; d < D; ++d) o[d] = row[d * sd];
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("fill_padded(Tensor x, Tensor mask, float value) -> Tensor", &fill_padded);
}
