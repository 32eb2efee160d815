// Dropout keep masks from a counter-based generator (torch.ops.autoattend.uniform_keep). Compiled
// at first use by src/models/cpu_kernels.py.
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

#include <cmath>
#include <cstdint>

namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

at::Tensor uniform_keep(int64_t count, double p, int64_t seed) {
  TORCH_CHECK(count >= 0, "autoattend uniform_keep: count must be >= 0");
  auto keep = at::empty({count}, at::TensorOptions().dtype(at::kBool));
  // the smallest 24-bit u with u * 2^-24 >= float(p); exact in double
  const double pf = static_cast<double>(static_cast<float>(p));
  const double bound = std::ceil(std::min(std::max(pf, 0.0), 1.0) * 16777216.0);
  const uint64_t threshold = static_cast<uint64_t>(bound);
  const uint64_t base = static_cast<uint64_t>(seed);
  bool* out = keep.data_ptr<bool>();
  at::parallel_for(0, count, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t u = splitmix64(base + static_cast<uint64_t>(i + 1) * kGamma) >> 40;
      out[i] = u >= threshold;
    }
  });
  return keep;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("uniform_keep(int count, float p, int seed) -> Tensor", &uniform_keep);
}
