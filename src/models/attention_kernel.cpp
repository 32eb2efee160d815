// Multi-head attention with a padding mask and no projections on the CPU, as ATen ops:
// torch.ops.autoattend.attention (inference) and attention_train_forward / attention_train_backward
// (training, with dropout on the weights). Compiled at first use by src/models/cpu_kernels.py.
//
// Why: the searched models run attention over short sentences split into 8-channel heads. Written
// with ATen ops that is a batched product into (B * H, T, T) scores, a softmax over rows of a few
// dozen keys, a dropout over the weights and a second batched product, plus the copies that split
// the heads: in the profiler the softmax alone was 18 % of candidate scoring, and one training
// attention layer (forward + backward, an SST-5 batch) 17-19 ms, because rows of 20-50 elements are
// mostly per-row overhead. Here each (sequence, head) is done in cache, over the real tokens only,
// so padding costs nothing.
//
// Layout: q, k, v, out are (B, T, D) with head h in channels [h * D/H, (h + 1) * D/H); mask is
// (B, T) bool, True at real tokens (any pattern, not only a prefix). For a real query i of
// sequence b and head h, with s = 1 / sqrt(D/H):
//   w[b, h, i, j] = softmax_j(s <q[b, i, h], k[b, j, h]>)      over the real keys j
//   out[b, i, h] = sum_j w[b, h, i, j] * keep[b, h, i, j] * v[b, j, h]
// keep is 1 without dropout, else 0 or 1 / (1 - p). Rows of padded queries are 0.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Queries are processed in blocks of this many, as one GCC vector (one register of floats: 16 with
// AVX-512, else 8): every step below runs across the queries of a block, so it vectorises with no
// horizontal reductions however short the sequence (heads are only 8 channels wide and sentences a
// few dozen tokens long, both too short to vectorise over). On AVX2, 16-float vectors are split in
// two and weighted_rows' 8 accumulators alone take all 16 registers: they spilled to the stack.
// Each query's arithmetic is the same whatever the block size.
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
#else
constexpr int64_t kLanes = 8;
#endif

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

// kLanes bool keep flags (0 or 1 bytes) as one vector
typedef uint8_t KeepBytes __attribute__((vector_size(kLanes)));

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

// sum_c row[c] * cols[c * stride] over c < dh, lane-wise: the score (or grad-weight) vector of one
// row against a block of lanes. Four partial sums, so the products do not wait on each other.
template <typename T>
__attribute__((always_inline)) inline Lanes<T> dot_lanes(const T* __restrict__ cols, int64_t stride,
                                                         const T* __restrict__ row, int64_t dh) {
  using V = Lanes<T>;
  V a0 = V{} + T(0), a1 = a0, a2 = a0, a3 = a0;
  int64_t c = 0;
  for (; c + 4 <= dh; c += 4) {
    a0 += row[c] * load(cols + c * stride);
    a1 += row[c + 1] * load(cols + (c + 1) * stride);
    a2 += row[c + 2] * load(cols + (c + 2) * stride);
    a3 += row[c + 3] * load(cols + (c + 3) * stride);
  }
  for (; c < dh; ++c) a0 += row[c] * load(cols + c * stride);
  return (a0 + a1) + (a2 + a3);
}

// Lane-wise maximum and sum of n rows of lane vectors w (n, kLanes), two accumulators each.
template <typename T>
__attribute__((always_inline)) inline Lanes<T> max_rows(const T* __restrict__ w, int64_t n) {
  using V = Lanes<T>;
  V m0 = load(w), m1 = m0;
  int64_t r = 1;
  for (; r + 2 <= n; r += 2) {
    const V x0 = load(w + r * kLanes), x1 = load(w + (r + 1) * kLanes);
    m0 = x0 > m0 ? x0 : m0;
    m1 = x1 > m1 ? x1 : m1;
  }
  if (r < n) {
    const V x0 = load(w + r * kLanes);
    m0 = x0 > m0 ? x0 : m0;
  }
  return m1 > m0 ? m1 : m0;
}

template <typename T>
__attribute__((always_inline)) inline Lanes<T> sum_rows(const T* __restrict__ w, int64_t n) {
  using V = Lanes<T>;
  V s0 = V{} + T(0), s1 = s0;
  int64_t r = 0;
  for (; r + 2 <= n; r += 2) {
    s0 += load(w + r * kLanes);
    s1 += load(w + (r + 1) * kLanes);
  }
  if (r < n) s0 += load(w + r * kLanes);
  return s0 + s1;
}

// acc[cc] = sum_a w[a] * m[a * stride + cc] for cc < cn <= kChunk, over n rows of lane vectors w (n,
// kLanes): a weighted sum of n rows of a few channels. One accumulator per channel, so the n-long
// sums run side by side; with one accumulator per channel in turn, every key waited an FMA latency
// for the one before (the attention kernels' largest cost on sentence-length sequences).
constexpr int64_t kChunk = 8;

template <typename T>
__attribute__((always_inline)) inline void weighted_rows(const T* __restrict__ w, int64_t n, const T* __restrict__ m,
                                                         int64_t stride, int64_t cn, Lanes<T>* __restrict__ acc) {
  using V = Lanes<T>;
  if (cn == kChunk) {
    V a[kChunk];
#pragma GCC unroll 8
    for (int64_t cc = 0; cc < kChunk; ++cc) a[cc] = V{} + T(0);
    for (int64_t r = 0; r < n; ++r) {
      const V wr = load(w + r * kLanes);
      const T* __restrict__ mr = m + r * stride;
#pragma GCC unroll 8
      for (int64_t cc = 0; cc < kChunk; ++cc) a[cc] += wr * mr[cc];
    }
#pragma GCC unroll 8
    for (int64_t cc = 0; cc < kChunk; ++cc) acc[cc] = a[cc];
    return;
  }
  for (int64_t cc = 0; cc < cn; ++cc) acc[cc] = V{} + T(0);
  for (int64_t r = 0; r < n; ++r) {
    const V wr = load(w + r * kLanes);
    for (int64_t cc = 0; cc < cn; ++cc) acc[cc] += wr * m[r * stride + cc];
  }
}

// One head's weighted sums into a transposed buffer: dst[c * nq] (a vector of lanes) =
// factor * sum_a w[a] * m[a * stride + c] for the head's dh channels c.
template <typename T>
__attribute__((always_inline)) inline void head_weighted_rows(const T* __restrict__ w, int64_t n,
                                                              const T* __restrict__ m, int64_t stride, int64_t dh,
                                                              Lanes<T> factor, T* __restrict__ dst, int64_t nq) {
  for (int64_t c = 0; c < dh; c += kChunk) {
    const int64_t cn = std::min(kChunk, dh - c);
    Lanes<T> acc[kChunk];
    weighted_rows(w, n, m + c, stride, cn, acc);
    for (int64_t cc = 0; cc < cn; ++cc) store(dst + (c + cc) * nq, acc[cc] * factor);
  }
}

void check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask, int64_t heads) {
  TORCH_CHECK(q.device().is_cpu(), "autoattend attention: CPU tensors only");
  TORCH_CHECK(q.dim() == 3 && q.sizes() == k.sizes() && q.sizes() == v.sizes(),
              "autoattend attention: q, k, v must be (B, T, D) of one shape");
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "autoattend attention: q, k, v must share a dtype");
  TORCH_CHECK(mask.scalar_type() == at::kBool && mask.dim() == 2 && mask.size(0) == q.size(0) &&
                  mask.size(1) == q.size(1),
              "autoattend attention: mask must be a (B, T) bool tensor");
  TORCH_CHECK(heads > 0 && q.size(2) % heads == 0, "autoattend attention: D must be divisible by heads");
}

// keep: bool, one entry per (sequence b, head h, real query i, real key j) in that order (b, then h,
// then i, then j, over the real tokens of each sequence), True = kept; empty = no dropout.
// scale = 1 / (1 - p). The forward pass saves each real query's log-sum-exp of its scores, lse
// (B, H, T), and the backward pass recomputes the weights from it rather than storing them.

// Offset of sequence b's first keep entry (heads * sum of n_b'^2 over b' < b); the total in *total.
std::vector<int64_t> keep_offsets(const bool* mask, int64_t b, int64_t t, int64_t heads, int64_t* total) {
  std::vector<int64_t> offsets(b + 1, 0);
  for (int64_t s = 0; s < b; ++s) {
    int64_t n = 0;
    for (int64_t i = 0; i < t; ++i) n += mask[s * t + i];
    offsets[s + 1] = offsets[s] + heads * n * n;
  }
  *total = offsets[b];
  return offsets;
}

template <typename T>
struct Scratch {
  std::vector<int64_t> real;
  std::vector<T> qt, qs, kr, vr, kt, vt, gt, gr, dd, w, w2, kf, ot, dqt, dkt, dvt;
};

// The real rows of one sequence gathered: qs (n, D) queries times s, kr / vr (n, D) keys and values;
// and transposed, zero-padded to whole blocks: qt (D, nq) queries times s, kt / vt (D, nq).
template <typename T>
int64_t gather_sequence(const T* q, const T* k, const T* v, const bool* mask, int64_t t, int64_t d, T s,
                        Scratch<T>& sc, bool transposed_keys) {
  sc.real.clear();
  for (int64_t i = 0; i < t; ++i) {
    if (mask[i]) sc.real.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(sc.real.size());
  const int64_t nq = (n + kLanes - 1) / kLanes * kLanes;
  sc.qt.assign(d * nq, T(0));
  sc.qs.resize(n * d);
  sc.kr.resize(n * d);
  sc.vr.resize(n * d);
  if (transposed_keys) {
    sc.kt.assign(d * nq, T(0));
    sc.vt.assign(d * nq, T(0));
  }
  for (int64_t a = 0; a < n; ++a) {
    const int64_t row = sc.real[a] * d;
    for (int64_t c = 0; c < d; ++c) {
      const T qc = q[row + c] * s;
      sc.qt[c * nq + a] = qc;
      sc.qs[a * d + c] = qc;
      if (transposed_keys) {
        sc.kt[c * nq + a] = k[row + c];
        sc.vt[c * nq + a] = v[row + c];
      }
    }
    std::memcpy(sc.kr.data() + a * d, k + row, sizeof(T) * d);
    std::memcpy(sc.vr.data() + a * d, v + row, sizeof(T) * d);
  }
  return n;
}

// Dropout factors of one block of kLanes queries [q0, q0 + live) against each of the n keys, as
// kf[a * kLanes + l] = keep(query q0 + l, key a) ? scale : 0 (0 for lanes past the last query).
template <typename T>
void query_block_keep(const bool* keep_h, int64_t n, int64_t q0, int64_t live, T scale, T* kf) {
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t l = 0; l < kLanes; ++l) {
      kf[a * kLanes + l] = (l < live && keep_h[(q0 + l) * n + a]) ? scale : T(0);
    }
  }
}

// Not inlined: inference and training then run the same machine code, so without dropout they give the
// same bits (inlined, -ffast-math let the two callers round differently).
template <typename T>
__attribute__((noinline)) void forward_one(const T* q, const T* k, const T* v, const bool* mask, const bool* keep,
                                           T scale, T* __restrict__ out, T* __restrict__ lse, int64_t t, int64_t d,
                                           int64_t heads, Scratch<T>& sc) {
  using V = Lanes<T>;
  std::memset(out, 0, sizeof(T) * t * d);
  if (lse) std::memset(lse, 0, sizeof(T) * heads * t);
  const int64_t dh = d / heads;
  const T s = T(1) / std::sqrt(static_cast<T>(dh));
  const int64_t n = gather_sequence(q, k, v, mask, t, d, s, sc, false);
  if (n == 0) return;
  const int64_t blocks = (n + kLanes - 1) / kLanes, nq = blocks * kLanes;
  sc.w.resize(n * kLanes);
  sc.kf.resize(n * kLanes);
  sc.ot.resize(d * nq);  // the output transposed, (D, nq): whole-vector stores, one transpose at the end
  T* __restrict__ wp = sc.w.data();
  T* __restrict__ ot = sc.ot.data();
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t c0 = h * dh;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t q0 = blk * kLanes, live = std::min(kLanes, n - q0);
      const T* __restrict__ qb = sc.qt.data() + c0 * nq + q0;
      for (int64_t a = 0; a < n; ++a) store(wp + a * kLanes, dot_lanes(qb, nq, sc.kr.data() + a * d + c0, dh));
      const V mx = max_rows(wp, n);
      for (int64_t a = 0; a < n; ++a) store(wp + a * kLanes, load(wp + a * kLanes) - mx);
      for (int64_t j = 0; j < n * kLanes; ++j) wp[j] = std::exp(wp[j]);
      const V sum = sum_rows(wp, n);
      if (lse) {  // only a backward pass needs it
        T mxs[kLanes], sums[kLanes];
        store(mxs, mx);
        store(sums, sum);
        for (int64_t l = 0; l < live; ++l) lse[h * t + sc.real[q0 + l]] = mxs[l] + std::log(sums[l]);
      }
      // the softmax's 1 / sum is applied to the weighted sums of values, not to every weight
      const V inv = T(1) / sum;
      if (keep) {
        query_block_keep(keep + h * n * n, n, q0, live, scale, sc.kf.data());
        for (int64_t a = 0; a < n; ++a) store(wp + a * kLanes, load(wp + a * kLanes) * load(sc.kf.data() + a * kLanes));
      }
      head_weighted_rows(wp, n, sc.vr.data() + c0, d, dh, inv, ot + c0 * nq + q0, nq);
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    T* __restrict__ row = out + sc.real[a] * d;
    for (int64_t c = 0; c < d; ++c) row[c] = ot[c * nq + a];
  }
}

// Gradients of one sequence. With P the weights, Pd = P * keep, dPd[i, j] = <grad_out[i], v[j]>:
//   dv[j] = sum_i Pd[i, j] grad_out[i]
//   dS[i, j] = P[i, j] (dPd[i, j] keep[i, j] - D[i]),  D[i] = <grad_out[i], out[i]>
//   dq[i] = s sum_j dS[i, j] k[j],  dk[j] = s sum_i dS[i, j] q[i]
// dq runs in blocks of queries (lanes = queries), dk and dv in blocks of keys (lanes = keys).
template <typename T>
void backward_one(const T* g, const T* q, const T* k, const T* v, const bool* mask, const bool* keep, T scale,
                        const T* o, const T* lse, T* __restrict__ dq, T* __restrict__ dk, T* __restrict__ dv,
                        int64_t t, int64_t d, int64_t heads, Scratch<T>& sc) {
  using V = Lanes<T>;
  std::memset(dq, 0, sizeof(T) * t * d);
  std::memset(dk, 0, sizeof(T) * t * d);
  std::memset(dv, 0, sizeof(T) * t * d);
  const int64_t dh = d / heads;
  const T s = T(1) / std::sqrt(static_cast<T>(dh));
  const int64_t n = gather_sequence(q, k, v, mask, t, d, s, sc, true);
  if (n == 0) return;
  const int64_t blocks = (n + kLanes - 1) / kLanes, nq = blocks * kLanes;
  sc.gt.assign(d * nq, T(0));  // grad_out of the real rows, transposed (D, nq)
  sc.gr.resize(n * d);         // and as rows (n, D)
  sc.dd.assign(heads * nq, T(0));  // D[h][i]
  for (int64_t a = 0; a < n; ++a) {
    const int64_t row = sc.real[a] * d;
    for (int64_t c = 0; c < d; ++c) sc.gt[c * nq + a] = g[row + c];
    for (int64_t h = 0; h < heads; ++h) {
      T dot = 0;
      for (int64_t c = h * dh; c < (h + 1) * dh; ++c) dot += g[row + c] * o[row + c];
      sc.dd[h * nq + a] = dot;
    }
    std::memcpy(sc.gr.data() + a * d, g + row, sizeof(T) * d);
  }
  sc.w.resize(n * kLanes);
  sc.w2.resize(n * kLanes);
  sc.kf.resize(n * kLanes);
  sc.dqt.resize(d * nq);  // the gradients transposed, (D, nq), as the forward pass's output
  sc.dkt.resize(d * nq);
  sc.dvt.resize(d * nq);
  T* __restrict__ wp = sc.w.data();
  T* __restrict__ w2 = sc.w2.data();
  T* __restrict__ kf = sc.kf.data();
  T* __restrict__ dqt = sc.dqt.data();
  T* __restrict__ dkt = sc.dkt.data();
  T* __restrict__ dvt = sc.dvt.data();
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t c0 = h * dh;
    const bool* keep_h = keep ? keep + h * n * n : nullptr;
    // dq: lanes are queries
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t q0 = blk * kLanes, live = std::min(kLanes, n - q0);
      const T* __restrict__ qb = sc.qt.data() + c0 * nq + q0;
      const T* __restrict__ gb = sc.gt.data() + c0 * nq + q0;
      T lse_l[kLanes];
      for (int64_t l = 0; l < kLanes; ++l) lse_l[l] = l < live ? lse[h * t + sc.real[q0 + l]] : T(0);
      const V lse_v = load(lse_l), dd_v = load(sc.dd.data() + h * nq + q0);
      for (int64_t a = 0; a < n; ++a) {
        store(wp + a * kLanes, dot_lanes(qb, nq, sc.kr.data() + a * d + c0, dh) - lse_v);
      }
      for (int64_t j = 0; j < n * kLanes; ++j) wp[j] = std::exp(wp[j]);  // P, recomputed
      if (keep_h) query_block_keep(keep_h, n, q0, live, scale, kf);
      for (int64_t a = 0; a < n; ++a) {
        V dp = dot_lanes(gb, nq, sc.vr.data() + a * d + c0, dh);
        if (keep_h) dp *= load(kf + a * kLanes);
        store(wp + a * kLanes, load(wp + a * kLanes) * (dp - dd_v));  // dS
      }
      head_weighted_rows(wp, n, sc.kr.data() + c0, d, dh, V{} + s, dqt + c0 * nq + q0, nq);
    }
    // dk, dv: lanes are keys
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t k0 = blk * kLanes, live = std::min(kLanes, n - k0);
      T live_l[kLanes];
      for (int64_t l = 0; l < kLanes; ++l) live_l[l] = l < live ? T(1) : T(0);
      const V live_v = load(live_l);
      const T* __restrict__ kb = sc.kt.data() + c0 * nq + k0;
      const T* __restrict__ vb = sc.vt.data() + c0 * nq + k0;
      for (int64_t i = 0; i < n; ++i) {
        const V sa = dot_lanes(kb, nq, sc.qs.data() + i * d + c0, dh);
        // keys past the last one: a large negative score instead, so that exp stays finite there
        store(wp + i * kLanes, (sa - lse[h * t + sc.real[i]]) * live_v + (live_v - T(1)) * T(80));
      }
      for (int64_t j = 0; j < n * kLanes; ++j) wp[j] = std::exp(wp[j]);  // P, recomputed
      for (int64_t i = 0; i < n; ++i) {
        V dp = dot_lanes(vb, nq, sc.gr.data() + i * d + c0, dh);
        const V p = load(wp + i * kLanes);
        V pd = p;
        if (keep_h) {
          V kv;
          if (live == kLanes) {  // 16 consecutive keep flags of query i: one vector conversion
            KeepBytes bytes;
            std::memcpy(&bytes, keep_h + i * n + k0, sizeof(bytes));
            kv = __builtin_convertvector(bytes, V) * scale;
          } else {
            T kr_l[kLanes];
            for (int64_t l = 0; l < kLanes; ++l) kr_l[l] = (l < live && keep_h[i * n + k0 + l]) ? scale : T(0);
            kv = load(kr_l);
          }
          pd = p * kv;
          dp *= kv;
        }
        store(w2 + i * kLanes, pd);
        store(wp + i * kLanes, p * (dp - sc.dd[h * nq + i]));  // dS
      }
      head_weighted_rows(w2, n, sc.gr.data() + c0, d, dh, V{} + T(1), dvt + c0 * nq + k0, nq);
      head_weighted_rows(wp, n, sc.qs.data() + c0, d, dh, V{} + T(1), dkt + c0 * nq + k0, nq);
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    const int64_t row = sc.real[a] * d;
    for (int64_t c = 0; c < d; ++c) {
      dq[row + c] = dqt[c * nq + a];
      dk[row + c] = dkt[c * nq + a];
      dv[row + c] = dvt[c * nq + a];
    }
  }
}

const bool* keep_pointer(const at::Tensor& keep, int64_t total) {
  if (keep.numel() == 0) return nullptr;
  TORCH_CHECK(keep.scalar_type() == at::kBool && keep.dim() == 1 && keep.numel() == total && keep.is_contiguous(),
              "autoattend attention: keep must be a contiguous bool vector of heads * sum(n_b^2) entries, or empty");
  return keep.data_ptr<bool>();
}

at::Tensor attention(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in, const at::Tensor& mask_in,
                     int64_t heads) {
  check_qkv(q_in, k_in, v_in, mask_in, heads);
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
      Scratch<scalar_t> sc;
      for (int64_t seq = begin; seq < end; ++seq) {
        const int64_t off = seq * t * d;
        forward_one<scalar_t>(q_p + off, k_p + off, v_p + off, m_p + seq * t, nullptr, scalar_t(1), o_p + off,
                              nullptr, t, d, heads, sc);  // no log-sum-exp: no backward pass
      }
    });
  });
  return out;
}

std::vector<at::Tensor> attention_train_forward(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                                                const at::Tensor& mask_in, int64_t heads, const at::Tensor& keep,
                                                double scale) {
  check_qkv(q_in, k_in, v_in, mask_in, heads);
  const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const auto mask = mask_in.contiguous();
  const int64_t b = q.size(0), t = q.size(1), d = q.size(2);
  int64_t total = 0;
  const auto offsets = keep_offsets(mask.data_ptr<bool>(), b, t, heads, &total);
  const bool* keep_p = keep_pointer(keep, total);
  auto out = at::empty({b, t, d}, q.options());
  auto lse = at::empty({b, heads, t}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "autoattend_attention_train_forward", [&] {
    const scalar_t* q_p = q.data_ptr<scalar_t>();
    const scalar_t* k_p = k.data_ptr<scalar_t>();
    const scalar_t* v_p = v.data_ptr<scalar_t>();
    const bool* m_p = mask.data_ptr<bool>();
    scalar_t* o_p = out.data_ptr<scalar_t>();
    scalar_t* l_p = lse.data_ptr<scalar_t>();
    at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> sc;
      for (int64_t seq = begin; seq < end; ++seq) {
        const int64_t off = seq * t * d;
        forward_one<scalar_t>(q_p + off, k_p + off, v_p + off, m_p + seq * t,
                                    keep_p ? keep_p + offsets[seq] : nullptr, static_cast<scalar_t>(scale),
                                    o_p + off, l_p + seq * heads * t, t, d, heads, sc);
      }
    });
  });
  return {out, lse};
}

std::vector<at::Tensor> attention_train_backward(const at::Tensor& grad_in, const at::Tensor& q_in,
                                                 const at::Tensor& k_in, const at::Tensor& v_in,
                                                 const at::Tensor& mask_in, int64_t heads, const at::Tensor& keep,
                                                 double scale, const at::Tensor& out_in, const at::Tensor& lse_in) {
  check_qkv(q_in, k_in, v_in, mask_in, heads);
  TORCH_CHECK(grad_in.sizes() == q_in.sizes() && out_in.sizes() == q_in.sizes(),
              "autoattend attention: grad and out must be (B, T, D) like q");
  const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const auto grad = grad_in.contiguous(), out = out_in.contiguous(), lse = lse_in.contiguous();
  const auto mask = mask_in.contiguous();
  const int64_t b = q.size(0), t = q.size(1), d = q.size(2);
  TORCH_CHECK(lse.dim() == 3 && lse.size(0) == b && lse.size(1) == heads && lse.size(2) == t,
              "autoattend attention: lse must be (B, heads, T)");
  int64_t total = 0;
  const auto offsets = keep_offsets(mask.data_ptr<bool>(), b, t, heads, &total);
  const bool* keep_p = keep_pointer(keep, total);
  auto dq = at::empty({b, t, d}, q.options());
  auto dk = at::empty({b, t, d}, q.options());
  auto dv = at::empty({b, t, d}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "autoattend_attention_train_backward", [&] {
    const scalar_t* g_p = grad.data_ptr<scalar_t>();
    const scalar_t* q_p = q.data_ptr<scalar_t>();
    const scalar_t* k_p = k.data_ptr<scalar_t>();
    const scalar_t* v_p = v.data_ptr<scalar_t>();
    const scalar_t* o_p = out.data_ptr<scalar_t>();
    const scalar_t* l_p = lse.data_ptr<scalar_t>();
    const bool* m_p = mask.data_ptr<bool>();
    scalar_t* dq_p = dq.data_ptr<scalar_t>();
    scalar_t* dk_p = dk.data_ptr<scalar_t>();
    scalar_t* dv_p = dv.data_ptr<scalar_t>();
    at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
      Scratch<scalar_t> sc;
      for (int64_t seq = begin; seq < end; ++seq) {
        const int64_t off = seq * t * d;
        backward_one<scalar_t>(g_p + off, q_p + off, k_p + off, v_p + off, m_p + seq * t,
                                     keep_p ? keep_p + offsets[seq] : nullptr, static_cast<scalar_t>(scale),
                                     o_p + off, l_p + seq * heads * t, dq_p + off, dk_p + off, dv_p + off, t, d,
                                     heads, sc);
      }
    });
  });
  return {dq, dk, dv};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("attention(Tensor q, Tensor k, Tensor v, Tensor mask, int heads) -> Tensor", &attention);
  m.def("attention_train_forward(Tensor q, Tensor k, Tensor v, Tensor mask, int heads, Tensor keep, float scale)"
        " -> Tensor[]", &attention_train_forward);
  m.def("attention_train_backward(Tensor grad, Tensor q, Tensor k, Tensor v, Tensor mask, int heads, Tensor keep,"
        " float scale, Tensor out, Tensor lse) -> Tensor[]", &attention_train_backward);
}
