// The recurrence of one GRU direction over a packed batch, forward and backward, as two ATen ops
// (torch.ops.autoattend.gru_forward / gru_backward). Compiled at first use by
// src/models/cpu_kernels.py.
//
// Why: torch's CPU GRU runs each time step as about ten small kernels and records each one for
// autograd, so on the small batches of the text supernet (D=64, ~50 steps) dispatch dominates.
// Here a time step is one matrix product plus one fused loop over the gates, and the backward
// pass is written out, with the weight gradient as one product over all steps.
//
// Layout: a packed batch as in torch's PackedSequence. Rows are tokens, step-major: step s holds
// batch_sizes[s] rows (the sequences still running, longest first), and the row of a sequence at
// step s + 1 has the same index within its step as at step s. gi (N, 3D) are the input
// projections W_ih x of the N tokens without their bias b_ih, which is added here (adding it in the
// matrix product copies the bias into every row first: a tenth of the GRU's time), gates in torch's
// order (r, z, n).
//   with gi_ = gi + b_ih: r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
//   h = (1 - z) * n + z * h_prev, with gh = W_hh h_prev + b_hh and h_prev = 0 at step 0.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <cstring>
#include <vector>

namespace {

// sigmoid(x) = (1 + tanh(x / 2)) / 2: one bounded transcendental (no overflow of exp(-x)).
template <typename T>
inline T sigmoid_(T x) {
  return T(0.5) * std::tanh(T(0.5) * x) + T(0.5);
}

// One step of the gates for one row; saved = (r, z, n, gh_n) for the backward pass. The branches
// are template parameters so that GCC vectorises each loop (a runtime test inside stops it).
// gh = W_hh h_prev without the bias, which is added here (bh = b_hh): adding it in the matrix
// product would copy the bias into every step's output first; the same for gi and bi = b_ih. At step
// 0 gh is not read (h_prev = 0).
template <typename T, bool kFirst, bool kSave>
inline void cell_forward(const T* __restrict__ gi, const T* __restrict__ bi, const T* __restrict__ gh,
                         const T* __restrict__ bh, const T* __restrict__ h_prev, T* __restrict__ h,
                         T* __restrict__ saved, int64_t D) {
  for (int64_t k = 0; k < D; ++k) {
    const T gh_r = kFirst ? bh[k] : gh[k] + bh[k];
    const T gh_z = kFirst ? bh[D + k] : gh[D + k] + bh[D + k];
    const T gh_n = kFirst ? bh[2 * D + k] : gh[2 * D + k] + bh[2 * D + k];
    const T r = sigmoid_((gi[k] + bi[k]) + gh_r);
    const T z = sigmoid_((gi[D + k] + bi[D + k]) + gh_z);
    const T n = std::tanh((gi[2 * D + k] + bi[2 * D + k]) + r * gh_n);
    const T hp = kFirst ? T(0) : h_prev[k];
    h[k] = n + z * (hp - n);
    if (kSave) {
      saved[k] = r;
      saved[D + k] = z;
      saved[2 * D + k] = n;
      saved[3 * D + k] = gh_n;
    }
  }
}

// Gradients of one step for one row. dh + grad_h is the gradient reaching h (from later steps and
// from the output); dh leaves holding the part of dh_prev that bypasses W_hh (dh * z).
template <typename T, bool kFirst>
inline void cell_backward(const T* __restrict__ saved, const T* __restrict__ h_prev, const T* __restrict__ grad_h,
                          T* __restrict__ dh, T* __restrict__ dgi, T* __restrict__ dgh, int64_t D) {
  for (int64_t k = 0; k < D; ++k) {
    const T r = saved[k], z = saved[D + k], n = saved[2 * D + k], gh_n = saved[3 * D + k];
    const T hp = kFirst ? T(0) : h_prev[k];
    const T g = dh[k] + grad_h[k];
    const T dn = g * (T(1) - z) * (T(1) - n * n);
    const T dz = g * (hp - n) * z * (T(1) - z);
    const T dr = dn * gh_n * r * (T(1) - r);
    dgi[k] = dr;
    dgi[D + k] = dz;
    dgi[2 * D + k] = dn;
    dgh[k] = dr;
    dgh[D + k] = dz;
    dgh[2 * D + k] = dn * r;
    dh[k] = g * z;
  }
}

// The recurrence's per-step products, out (b, N) (+)= in (b, K) @ w (K, N), all row-major: h_prev
// times W_hh^T forward, dgh times W_hh backward. Through at::mm these were most of the GRU's time
// (a few thousand products of about 100 x 64 x 192 per supernet step, each paying a call and the
// packing of w: about 25 GFLOP/s). Here two rows times four vectors of columns accumulate in 8
// vector registers over K, reading w straight from cache. A vector is one register: 16 floats with
// AVX-512, else 8 (AVX2 has 16 registers of 8 floats: 16-float vectors there are split in two and
// the tile's 8 accumulators and 4 loads, 24 registers, spill to the stack, which made this product
// slower than at::mm on AVX2-only hosts). Needs N % kMmCols == 0 (the caller falls back to at::mm
// otherwise).
#if defined(__AVX512F__)
constexpr int64_t kMmLanes = 16;
#else
constexpr int64_t kMmLanes = 8;
#endif
constexpr int64_t kMmCols = 4 * kMmLanes;

template <typename T>
struct MmLanesOf;
template <>
struct MmLanesOf<float> {
  typedef float type __attribute__((vector_size(kMmLanes * sizeof(float))));
};
template <>
struct MmLanesOf<double> {
  typedef double type __attribute__((vector_size(kMmLanes * sizeof(double))));
};

template <typename T, int kRows>
inline void mm_rows(const T* __restrict__ in, int64_t K, const T* __restrict__ w, int64_t N, T* __restrict__ out,
                    bool accumulate) {
  using V = typename MmLanesOf<T>::type;
  for (int64_t n0 = 0; n0 < N; n0 += kMmCols) {
    V acc[kRows][4];
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        if (accumulate) {
          std::memcpy(&acc[r][v], out + r * N + n0 + v * kMmLanes, sizeof(V));
        } else {
          acc[r][v] = V{} * T(0);
        }
      }
    }
    for (int64_t c = 0; c < K; ++c) {
      V wv[4];
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) std::memcpy(&wv[v], w + c * N + n0 + v * kMmLanes, sizeof(V));
#pragma GCC unroll 4
      for (int r = 0; r < kRows; ++r) {
        const T a = in[r * K + c];
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) acc[r][v] += a * wv[v];
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) std::memcpy(out + r * N + n0 + v * kMmLanes, &acc[r][v], sizeof(V));
    }
  }
}

template <typename T>
void step_mm(const T* in, int64_t b, int64_t K, const T* w, int64_t N, T* out, bool accumulate) {
  at::parallel_for(0, (b + 1) / 2, std::max<int64_t>(1, 8192 / (K * N / kMmCols)), [&](int64_t begin, int64_t end) {
    for (int64_t pair = begin; pair < end; ++pair) {
      const int64_t j = 2 * pair;
      if (j + 1 < b) {
        mm_rows<T, 2>(in + j * K, K, w, N, out + j * N, accumulate);
      } else {
        mm_rows<T, 1>(in + j * K, K, w, N, out + j * N, accumulate);
      }
    }
  });
}

// Rows per parallel chunk: small steps (D=64) stay on one thread, where a split costs more than
// it saves.
inline int64_t grain(int64_t D) { return std::max<int64_t>(1, 16384 / D); }

void check_inputs(const at::Tensor& gi, const at::Tensor& b_ih, const at::Tensor& w_hh, const at::Tensor& b_hh,
                  const at::Tensor& batch_sizes) {
  TORCH_CHECK(gi.device().is_cpu(), "autoattend_gru: CPU tensors only");
  TORCH_CHECK(gi.dim() == 2, "autoattend_gru: gi must be an (N, 3D) tensor");
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == 3 * w_hh.size(1) && gi.size(1) == w_hh.size(0),
              "autoattend_gru: w_hh must be (3D, D) with gi (N, 3D)");
  TORCH_CHECK(b_hh.numel() == w_hh.size(0) && b_ih.numel() == w_hh.size(0),
              "autoattend_gru: b_ih and b_hh must have 3D elements");
  TORCH_CHECK(w_hh.scalar_type() == gi.scalar_type() && b_hh.scalar_type() == gi.scalar_type() &&
                  b_ih.scalar_type() == gi.scalar_type(),
              "autoattend_gru: gi, b_ih, w_hh and b_hh must share a dtype");
  TORCH_CHECK(batch_sizes.dtype() == at::kLong && batch_sizes.device().is_cpu() && batch_sizes.dim() == 1,
              "autoattend_gru: batch_sizes must be a CPU int64 vector");
}

// The forward recurrence over N packed rows. Row r reads its input projections from row
// (gi_rows ? gi_rows[r] : r) of gi, whose rows may be strided (a column slice of a wider product);
// with out_p, its state h is also written (accumulate: added) to row out_rows[r] of out (D wide).
// -> (h (N, D), saved (N, 4D) when `save`, else an empty tensor)
std::vector<at::Tensor> forward_impl(const at::Tensor& gi, const int64_t* gi_rows, int64_t N, const at::Tensor& b_ih,
                                     const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& batch_sizes,
                                     bool save, at::Tensor* out, const int64_t* out_rows, bool accumulate) {
  const int64_t D = w_hh.size(1);
  const int64_t gi_stride = gi.stride(0);
  const int64_t steps = batch_sizes.size(0);
  auto h = at::empty({N, D}, gi.options());
  auto saved = save ? at::empty({N, 4 * D}, gi.options()) : at::Tensor();
  const int64_t b0 = steps ? batch_sizes.data_ptr<int64_t>()[0] : 0;
  auto gh = at::empty({b0, 3 * D}, gi.options());  // W_hh h_prev of a step (not written at step 0)
  const auto w_t = w_hh.t().contiguous();  // (D, 3D)
  const bool own_mm = (3 * D) % kMmCols == 0;
  const auto bias = b_hh.contiguous();
  const auto in_bias = b_ih.contiguous();
  const int64_t* bs = batch_sizes.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "autoattend_gru_forward", [&] {
    const scalar_t* gi_p = gi.data_ptr<scalar_t>();
    scalar_t* h_p = h.data_ptr<scalar_t>();
    scalar_t* saved_p = save ? saved.data_ptr<scalar_t>() : nullptr;
    scalar_t* out_p = out ? out->data_ptr<scalar_t>() : nullptr;
    int64_t offset = 0, prev = 0;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t b = bs[s];
      if (s > 0) {
        if (own_mm) {
          step_mm<scalar_t>(h.data_ptr<scalar_t>() + prev * D, b, D, w_t.data_ptr<scalar_t>(), 3 * D,
                            gh.data_ptr<scalar_t>(), false);
        } else {
          auto gh_s = gh.narrow(0, 0, b);
          at::mm_out(gh_s, h.narrow(0, prev, b), w_t);
        }
      }
      const scalar_t* gh_p = gh.data_ptr<scalar_t>();
      const scalar_t* bh_p = bias.data_ptr<scalar_t>();
      const scalar_t* bi_p = in_bias.data_ptr<scalar_t>();
      at::parallel_for(0, b, grain(D), [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
          const int64_t row = offset + j;
          const scalar_t* g = gi_p + (gi_rows ? gi_rows[row] : row) * gi_stride;
          const scalar_t* q = gh_p + j * 3 * D;
          const scalar_t* hp = h_p + (prev + j) * D;
          scalar_t* hr = h_p + row * D;
          scalar_t* sv = saved_p ? saved_p + row * 4 * D : nullptr;
          if (s == 0) {
            save ? cell_forward<scalar_t, true, true>(g, bi_p, q, bh_p, hp, hr, sv, D)
                 : cell_forward<scalar_t, true, false>(g, bi_p, q, bh_p, hp, hr, sv, D);
          } else {
            save ? cell_forward<scalar_t, false, true>(g, bi_p, q, bh_p, hp, hr, sv, D)
                 : cell_forward<scalar_t, false, false>(g, bi_p, q, bh_p, hp, hr, sv, D);
          }
          if (out_p) {
            scalar_t* __restrict__ o = out_p + out_rows[row] * D;
            if (accumulate) {
              for (int64_t k = 0; k < D; ++k) o[k] += hr[k];
            } else {
              std::memcpy(o, hr, sizeof(scalar_t) * D);
            }
          }
        }
      });
      prev = offset;
      offset += b;
    }
  });
  return {h, saved};
}

std::vector<at::Tensor> gru_forward(const at::Tensor& gi, const at::Tensor& b_ih, const at::Tensor& w_hh,
                                    const at::Tensor& b_hh, const at::Tensor& batch_sizes, bool save) {
  check_inputs(gi, b_ih, w_hh, b_hh, batch_sizes);
  TORCH_CHECK(gi.is_contiguous(), "autoattend_gru: gi must be a contiguous (N, 3D) tensor");
  TORCH_CHECK(batch_sizes.sum().item<int64_t>() == gi.size(0), "autoattend_gru: batch_sizes must sum to N");
  return forward_impl(gi, nullptr, gi.size(0), b_ih, w_hh, b_hh, batch_sizes, save, nullptr, nullptr, false);
}

void check_rows(const at::Tensor& rows, int64_t n, int64_t bound, const char* what) {
  TORCH_CHECK(rows.dtype() == at::kLong && rows.device().is_cpu() && rows.dim() == 1 && rows.is_contiguous() &&
                  rows.numel() == n,
              "autoattend_gru: ", what, " must be a contiguous CPU int64 vector of N entries");
  TORCH_CHECK(n == 0 || (rows.min().item<int64_t>() >= 0 && rows.max().item<int64_t>() < bound),
              "autoattend_gru: ", what, " out of range");
}

// Inference: the recurrence reading its input projections through gi_rows (none: row r reads row
// r) and writing (or, with accumulate, adding) each state to out[out_rows[r]] (out (M, D),
// contiguous), so the caller needs neither a gather of gi nor a scatter of h. out_rows must not
// repeat (rows of a step run in parallel).
void gru_forward_scatter(const at::Tensor& gi, const std::optional<at::Tensor>& gi_rows, const at::Tensor& b_ih,
                         const at::Tensor& w_hh, const at::Tensor& b_hh, const at::Tensor& batch_sizes,
                         at::Tensor& out, const at::Tensor& out_rows, bool accumulate) {
  check_inputs(gi, b_ih, w_hh, b_hh, batch_sizes);
  const int64_t N = batch_sizes.sum().item<int64_t>();
  TORCH_CHECK(gi.stride(1) == 1, "autoattend_gru: gi's rows must be contiguous");
  TORCH_CHECK(out.dim() == 2 && out.is_contiguous() && out.size(1) == w_hh.size(1) &&
                  out.scalar_type() == gi.scalar_type(),
              "autoattend_gru: out must be a contiguous (M, D) tensor of gi's dtype");
  if (gi_rows) {
    check_rows(*gi_rows, N, gi.size(0), "gi_rows");
  } else {
    TORCH_CHECK(gi.size(0) == N, "autoattend_gru: without gi_rows, gi must have a row per packed row");
  }
  check_rows(out_rows, N, out.size(0), "out_rows");
  forward_impl(gi, gi_rows ? gi_rows->data_ptr<int64_t>() : nullptr, N, b_ih, w_hh, b_hh, batch_sizes, false, &out,
               out_rows.data_ptr<int64_t>(), accumulate);
}

// -> (grad gi (N, 3D), grad gh (N, 3D), h_prev (N, D)): the caller forms grad w_hh = grad gh^T h_prev
// (3D, D) with its own matrix product, grad b_hh = grad gh summed over rows and grad b_ih = grad gi
// summed over rows
std::vector<at::Tensor> gru_backward(const at::Tensor& grad_h, const at::Tensor& h, const at::Tensor& saved,
                                     const at::Tensor& w_hh, const at::Tensor& batch_sizes) {
  const int64_t N = h.size(0), D = w_hh.size(1);
  const int64_t steps = batch_sizes.size(0);
  TORCH_CHECK(saved.defined() && saved.size(0) == N && saved.size(1) == 4 * D,
              "autoattend_gru: backward needs the forward's saved gates");
  auto grad = grad_h.contiguous();
  auto dgi = at::empty({N, 3 * D}, h.options());
  auto dgh = at::empty({N, 3 * D}, h.options());
  auto h_prev = at::empty({N, D}, h.options());  // h_prev of every row, for the weight gradient
  const int64_t b0 = steps ? batch_sizes.data_ptr<int64_t>()[0] : 0;
  auto dh = at::zeros({b0, D}, h.options());
  const auto w_c = w_hh.contiguous();  // (3D, D)
  const bool own_mm = D % kMmCols == 0;
  const int64_t* bs = batch_sizes.data_ptr<int64_t>();
  std::vector<int64_t> offsets(steps + 1, 0);
  for (int64_t s = 0; s < steps; ++s) offsets[s + 1] = offsets[s] + bs[s];
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "autoattend_gru_backward", [&] {
    const scalar_t* grad_p = grad.data_ptr<scalar_t>();
    const scalar_t* h_p = h.data_ptr<scalar_t>();
    const scalar_t* saved_p = saved.data_ptr<scalar_t>();
    scalar_t* dgi_p = dgi.data_ptr<scalar_t>();
    scalar_t* dgh_p = dgh.data_ptr<scalar_t>();
    scalar_t* prev_p = h_prev.data_ptr<scalar_t>();
    scalar_t* dh_p = dh.data_ptr<scalar_t>();
    for (int64_t s = steps - 1; s >= 0; --s) {
      const int64_t b = bs[s], offset = offsets[s];
      const scalar_t* prev_rows = s > 0 ? h_p + offsets[s - 1] * D : nullptr;
      if (prev_rows) {
        std::memcpy(prev_p + offset * D, prev_rows, sizeof(scalar_t) * b * D);
      } else {
        std::memset(prev_p + offset * D, 0, sizeof(scalar_t) * b * D);
      }
      at::parallel_for(0, b, grain(D), [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
          const int64_t row = offset + j;
          const scalar_t* sv = saved_p + row * 4 * D;
          const scalar_t* g = grad_p + row * D;
          scalar_t* d = dh_p + j * D;
          if (prev_rows) {
            cell_backward<scalar_t, false>(sv, prev_rows + j * D, g, d, dgi_p + row * 3 * D, dgh_p + row * 3 * D, D);
          } else {
            cell_backward<scalar_t, true>(sv, nullptr, g, d, dgi_p + row * 3 * D, dgh_p + row * 3 * D, D);
          }
        }
      });
      if (s > 0) {
        if (own_mm) {
          step_mm<scalar_t>(dgh_p + offset * 3 * D, b, 3 * D, w_c.data_ptr<scalar_t>(), D, dh_p, true);
        } else {
          auto dh_s = dh.narrow(0, 0, b);
          dh_s.addmm_(dgh.narrow(0, offset, b), w_hh);
        }
      }
    }
  });
  return {dgi, dgh, h_prev};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("gru_forward(Tensor gi, Tensor b_ih, Tensor w_hh, Tensor b_hh, Tensor batch_sizes, bool save) -> Tensor[]",
        &gru_forward);
  m.def("gru_forward_scatter(Tensor gi, Tensor? gi_rows, Tensor b_ih, Tensor w_hh, Tensor b_hh, Tensor batch_sizes, "
        "Tensor(a!) out, Tensor out_rows, bool accumulate) -> ()",
        &gru_forward_scatter);
  m.def("gru_backward(Tensor grad_h, Tensor h, Tensor saved, Tensor w_hh, Tensor batch_sizes) -> Tensor[]",
        &gru_backward);
}
