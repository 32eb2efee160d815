// Dropout from a counter-based generator: keep masks (torch.ops.autoattend.uniform_keep) and the
// dropout itself (torch.ops.autoattend.dropout_rows). Compiled at first use by
// src/models/cpu_kernels.py.
//
// Why: torch.rand on the CPU draws about 3 ns per number from its Mersenne Twister, and a supernet
// step draws tens of millions of them (every op output, every attention weight between real
// tokens), about a tenth of the step. Here number i of a call is SplitMix64 of (seed + (i + 1) *
// gamma), i.e. the i-th output of a SplitMix64 stream started at `seed`: independent across i,
// computable in any order and in parallel, and vectorised by GCC. The seed is drawn from the
// caller's torch generator, so the masks stay reproducible per generator.
//
// Distribution: u = the top 24 bits of the output, uniform on 0 .. 2^24 - 1, and an element is
// kept when u * 2^-24 >= p with p rounded to float32: the distribution of `torch.rand(n) >= p`
// (torch's float32 uniform draws 24 random bits), so keep probability 1 - p up to that rounding.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The smallest 24-bit u with u * 2^-24 >= float(p); exact in double.
uint64_t keep_threshold(double p) {
  const double pf = static_cast<double>(static_cast<float>(p));
  return static_cast<uint64_t>(std::ceil(std::min(std::max(pf, 0.0), 1.0) * 16777216.0));
}

// Number i of the stream started at `base`, kept or not.
inline bool kept(uint64_t base, uint64_t i, uint64_t threshold) {
  return (splitmix64(base + (i + 1) * kGamma) >> 40) >= threshold;
}

at::Tensor uniform_keep(int64_t count, double p, int64_t seed) {
  TORCH_CHECK(count >= 0, "autoattend uniform_keep: count must be >= 0");
  auto keep = at::empty({count}, at::TensorOptions().dtype(at::kBool));
  const uint64_t threshold = keep_threshold(p);
  const uint64_t base = static_cast<uint64_t>(seed);
  bool* out = keep.data_ptr<bool>();
  at::parallel_for(0, count, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = kept(base, static_cast<uint64_t>(i), threshold);
  });
  return keep;
}

// Inverted dropout of x viewed as rows of `row_size` elements, in one pass with no mask tensor.
//
// `rows` (int64, strictly increasing): the rows that draw; row rows[k] keeps element j when number
// k * row_size + j of the stream is kept (so the mask is uniform_keep(len(rows) * row_size) laid
// out over those rows), and is scaled by float(1 / (1 - p)) where kept, 0 elsewhere. Every other
// row comes out 0. No `rows`: every row draws, row r being row k = r. Dropout is linear and the
// mask is a function of (seed, p, rows), so the backward pass is this same call on the gradient.
template <typename scalar_t>
void dropout_rows_impl(const scalar_t* x, scalar_t* out, const int64_t* rows, int64_t num_rows, int64_t draw_rows,
                       int64_t row_size, uint64_t threshold, uint64_t base, scalar_t scale) {
  const int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(row_size, 1));
  at::parallel_for(0, draw_rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t row = rows ? rows[k] : k;
      if (rows) {  // zero the rows between the previous drawing row and this one
        const int64_t gap_start = k == 0 ? 0 : rows[k - 1] + 1;
        std::memset(out + gap_start * row_size, 0, sizeof(scalar_t) * (row - gap_start) * row_size);
      }
      const scalar_t* src = x + row * row_size;
      scalar_t* dst = out + row * row_size;
      const uint64_t first = static_cast<uint64_t>(k * row_size);
      for (int64_t j = 0; j < row_size; ++j) {
        dst[j] = kept(base, first + static_cast<uint64_t>(j), threshold) ? src[j] * scale : scalar_t(0);
      }
    }
  });
  if (rows) {
    const int64_t tail = draw_rows == 0 ? 0 : rows[draw_rows - 1] + 1;
    std::memset(out + tail * row_size, 0, sizeof(scalar_t) * (num_rows - tail) * row_size);
  }
}

at::Tensor dropout_rows(const at::Tensor& x, const c10::optional<at::Tensor>& rows, int64_t row_size, double p,
                        int64_t seed) {
  TORCH_CHECK(x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "autoattend dropout_rows: x must be a float32 or float64 CPU tensor");
  TORCH_CHECK(row_size > 0 && x.numel() % row_size == 0, "autoattend dropout_rows: row_size ", row_size,
              " does not divide x's ", x.numel(), " elements");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "autoattend dropout_rows: p must be in [0, 1), got ", p);
  const auto input = x.contiguous();
  auto out = at::empty(input.sizes(), input.options());
  const int64_t num_rows = input.numel() / row_size;
  at::Tensor index;
  const int64_t* row_ptr = nullptr;
  int64_t draw_rows = num_rows;
  if (rows.has_value()) {
    index = rows->contiguous();
    TORCH_CHECK(index.device().is_cpu() && index.scalar_type() == at::kLong && index.dim() == 1,
                "autoattend dropout_rows: rows must be a 1-d int64 CPU tensor");
    row_ptr = index.data_ptr<int64_t>();
    draw_rows = index.numel();
    for (int64_t k = 0; k < draw_rows; ++k) {
      TORCH_CHECK(row_ptr[k] >= 0 && row_ptr[k] < num_rows && (k == 0 || row_ptr[k] > row_ptr[k - 1]),
                  "autoattend dropout_rows: rows must be strictly increasing indices below ", num_rows);
    }
  }
  const uint64_t threshold = keep_threshold(p);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "autoattend_dropout_rows", [&] {
    // the scale rounded to the tensor's type, as `x * (1 / (1 - p))` computes it
    const auto scale = static_cast<scalar_t>(1.0 / (1.0 - p));
    dropout_rows_impl<scalar_t>(input.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), row_ptr, num_rows, draw_rows,
                                row_size, threshold, static_cast<uint64_t>(seed), scale);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("uniform_keep(int count, float p, int seed) -> Tensor", &uniform_keep);
  m.def("dropout_rows(Tensor x, Tensor? rows, int row_size, float p, int seed) -> Tensor", &dropout_rows);
}
