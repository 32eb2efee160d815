// Multi-head attention with a padding mask and no projections, for inference on the CPU
// (torch.ops.autoattend.attention). Compiled at first use by src/models/cpu_kernels.py.
//
// Why: candidate scoring runs attention over short sentences split into 8-channel heads. Written
// with ATen ops that is a batched product into (B * H, T, T) scores, a softmax over rows of a few
// dozen keys and a second batched product, plus the copies that split the heads: in the profiler
// the softmax alone was 18 % of scoring, because a row of 20-50 elements is mostly per-row
// overhead. Here each (sequence, head) is done in one pass that stays in cache, over the real
// tokens only, so padding costs nothing.
//
// Layout: q, k, v, out are (B, T, D) with head h in channels [h * D/H, (h + 1) * D/H); mask is
// (B, T) bool, True at real tokens (any pattern, not only a prefix). For a real query i of
// sequence b and head h:
//   out[b, i, h] = sum_j softmax_j(<q[b, i, h], k[b, j, h]> / sqrt(D/H)) v[b, j, h]
// over the real keys j. Rows of padded queries are 0.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

// Queries are processed in blocks of this many, as one GCC vector (an AVX-512 register of floats):
// every step below runs across the queries of a block, so it vectorises with no horizontal
// reductions however short the sequence (heads are only 8 channels wide and sentences a few dozen
// tokens long, both too short to vectorise over).
constexpr int64_t kLanes = 16;

// (a traits struct: GCC ignores vector_size on an alias template)
template <typename T>
struct LanesOf;
template <>
struct LanesOf<float> {
  typedef float type __attribute__((vector_size(kLanes * sizeof(float))));
};
template <>
struct LanesOf<double> {
  typedef double type __attribute__((vector_size(kLanes * sizeof(double))));
};
template <typename T>
using Lanes = typename LanesOf<T>::type;

template <typename T>
inline Lanes<T> load(const T* p) {
  Lanes<T> x;
  std::memcpy(&x, p, sizeof(x));
  return x;
}

template <typename T>
inline void store(T* p, const Lanes<T>& x) {
  std::memcpy(p, &x, sizeof(x));
}

// One sequence, all heads. qt receives the real queries, scaled and transposed to (D, nq) with nq
// the query count rounded up to whole blocks (the extra queries are 0 and never written out); kr,
// vr the real keys and values as rows; s the weights of one block (n keys x kLanes queries).
template <typename T>
void attend_one(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                const bool* __restrict__ mask, T* __restrict__ out, int64_t t, int64_t d, int64_t heads,
                std::vector<int64_t>& real, std::vector<T>& qt, std::vector<T>& kr, std::vector<T>& vr,
                std::vector<T>& s) {
  using V = Lanes<T>;
  std::memset(out, 0, sizeof(T) * t * d);
  real.clear();
  for (int64_t i = 0; i < t; ++i) {
    if (mask[i]) real.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(real.size());
  if (n == 0) return;
  const int64_t dh = d / heads;
  const T scale = T(1) / std::sqrt(static_cast<T>(dh));
  const int64_t blocks = (n + kLanes - 1) / kLanes, nq = blocks * kLanes;
  qt.assign(d * nq, T(0));
  kr.resize(n * d);
  vr.resize(n * d);
  s.resize(n * kLanes);
  for (int64_t a = 0; a < n; ++a) {
    const int64_t row = real[a] * d;
    for (int64_t c = 0; c < d; ++c) qt[c * nq + a] = q[row + c] * scale;
    std::memcpy(kr.data() + a * d, k + row, sizeof(T) * d);
    std::memcpy(vr.data() + a * d, v + row, sizeof(T) * d);
  }
  T* __restrict__ sp = s.data();
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t c0 = h * dh;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const T* __restrict__ qb = qt.data() + c0 * nq + blk * kLanes;
      V mx;
      for (int64_t a = 0; a < n; ++a) {  // scores of the block's queries against key a
        const T* __restrict__ ka = kr.data() + a * d + c0;
        V sa = ka[0] * load(qb);
        for (int64_t c = 1; c < dh; ++c) sa += ka[c] * load(qb + c * nq);
        store(sp + a * kLanes, sa);
        mx = a == 0 ? sa : (sa > mx ? sa : mx);
      }
      for (int64_t a = 0; a < n; ++a) store(sp + a * kLanes, load(sp + a * kLanes) - mx);
      // one flat loop, so that GCC calls the vectorised expf of glibc's libmvec
      for (int64_t j = 0; j < n * kLanes; ++j) sp[j] = std::exp(sp[j]);
      V sum = load(sp);
      for (int64_t a = 1; a < n; ++a) sum += load(sp + a * kLanes);
      const V inv = T(1) / sum;
      const int64_t live = std::min(kLanes, n - blk * kLanes);
      for (int64_t c = 0; c < dh; ++c) {
        const T* __restrict__ vc = vr.data() + c0 + c;
        V acc = load(sp) * vc[0];
        for (int64_t a = 1; a < n; ++a) acc += load(sp + a * kLanes) * vc[a * d];
        T o[kLanes];
        store(o, acc * inv);
        for (int64_t i = 0; i < live; ++i) out[real[blk * kLanes + i] * d + c0 + c] = o[i];
      }
    }
  }
}

at::Tensor attention(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in, const at::Tensor& mask_in,
                     int64_t heads) {
  TORCH_CHECK(q_in.device().is_cpu(), "autoattend attention: CPU tensors only");
  TORCH_CHECK(q_in.dim() == 3 && q_in.sizes() == k_in.sizes() && q_in.sizes() == v_in.sizes(),
              "autoattend attention: q, k, v must be (B, T, D) of one shape");
  TORCH_CHECK(k_in.scalar_type() == q_in.scalar_type() && v_in.scalar_type() == q_in.scalar_type(),
              "autoattend attention: q, k, v must share a dtype");
  TORCH_CHECK(mask_in.scalar_type() == at::kBool && mask_in.dim() == 2 && mask_in.size(0) == q_in.size(0) &&
                  mask_in.size(1) == q_in.size(1),
              "autoattend attention: mask must be a (B, T) bool tensor");
  TORCH_CHECK(heads > 0 && q_in.size(2) % heads == 0, "autoattend attention: D must be divisible by heads");
  const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const auto mask = mask_in.contiguous();
  const int64_t b = q.size(0), t = q.size(1), d = q.size(2);
  auto out = at::empty({b, t, d}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "autoattend_attention", [&] {
    const scalar_t* q_p = q.data_ptr<scalar_t>();
    const scalar_t* k_p = k.data_ptr<scalar_t>();
    const scalar_t* v_p = v.data_ptr<scalar_t>();
    const bool* m_p = mask.data_ptr<bool>();
    scalar_t* o_p = out.data_ptr<scalar_t>();
    at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
      std::vector<int64_t> real;
      std::vector<scalar_t> qt, kr, vr, s;
      for (int64_t seq = begin; seq < end; ++seq) {
        const int64_t off = seq * t * d;
        attend_one<scalar_t>(q_p + off, k_p + off, v_p + off, m_p + seq * t, o_p + off, t, d, heads, real, qt, kr,
                             vr, s);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("attention(Tensor q, Tensor k, Tensor v, Tensor mask, int heads) -> Tensor", &attention);
}
