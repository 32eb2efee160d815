// Weighted neighbour sums of a graph's node features over a CSR view of its edges, the propagation
// of the GCN, SGC, GraphSAGE-mean, ARMA and Chebyshev ops, and with one weight per edge and head,
// of GAT and the edge-softmax attention (torch.ops.autoattend.gather_sum); the per-node maximum of
// the attention scores (segment_max) and per-edge products of node rows (edge_products) for their
// softmax and scores.
// Compiled at first use by src/models/cpu_kernels.py.
//
// Why: PyG propagates a (2, E) edge list as index_select, a per-edge product and scatter_add_, three
// passes over an (E, D) message tensor; on Cora that was half of a child's training time (profiled,
// experiments/bench/profile_graph_child_2026-12-06.txt). Here each output row reads its in-edges in
// place. The sums are PyG's bit for bit: every product rounded on its own (no fused multiply-add,
// hence the pragma below: the extension is built with -ffast-math), then added in the order of the
// edge list, which is how scatter_add_ (forward) and index_add_ (the backward of index_select)
// accumulate; a row starts from +0 as their zero-filled outputs do. The caller keeps each row's
// edges in edge-list order (a stable sort), see src/models/graph.py EdgeCsr.
#pragma GCC optimize("no-fast-math", "fp-contract=off")

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

namespace {

// x (N, D); rowptr (R + 1) and col (nnz) int64, a CSR whose row r lists the source rows of x that
// row r of the output sums; weight (nnz), (nnz, H) with H dividing D (head h weighs channels
// h * D / H to (h + 1) * D / H - 1), or none (every weight 1). Returns (R, D):
// out[r] = sum over k in [rowptr[r], rowptr[r + 1]) of weight[k] * x[col[k]], left to right.
at::Tensor gather_sum(const at::Tensor& x, const at::Tensor& rowptr, const at::Tensor& col,
                      const std::optional<at::Tensor>& weight) {
  TORCH_CHECK(x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble),
              "autoattend gather_sum: x must be a float32 or float64 CPU tensor");
  TORCH_CHECK(x.dim() == 2, "autoattend gather_sum: x must be (N, D), got ", x.sizes());
  TORCH_CHECK(rowptr.dim() == 1 && rowptr.numel() >= 1 && col.dim() == 1 && rowptr.scalar_type() == at::kLong &&
                  col.scalar_type() == at::kLong,
              "autoattend gather_sum: rowptr (R + 1) and col (nnz) must be int64 vectors");
  const bool weighted = weight.has_value() && weight->defined();
  const int64_t heads = weighted && weight->dim() == 2 ? weight->size(1) : 1;
  if (weighted) {
    TORCH_CHECK((weight->dim() == 1 || weight->dim() == 2) && weight->size(0) == col.numel() &&
                    weight->scalar_type() == x.scalar_type() && heads > 0 && x.size(1) % heads == 0,
                "autoattend gather_sum: weight must be (nnz,) or (nnz, H) with H dividing D, of x's dtype, got ",
                weight->sizes(), " for x ", x.sizes());
  }
  const auto xc = x.contiguous();
  const auto rp = rowptr.contiguous();
  const auto cc = col.contiguous();
  const int64_t rows = rp.numel() - 1, n = xc.size(0), D = xc.size(1), width = D / heads;
  const int64_t* ptr = rp.data_ptr<int64_t>();
  const int64_t* src = cc.data_ptr<int64_t>();
  TORCH_CHECK(ptr[0] == 0 && ptr[rows] == cc.numel(), "autoattend gather_sum: rowptr must run from 0 to nnz");
  auto out = at::empty({rows, D}, xc.options());
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(D, 1));
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "autoattend_gather_sum", [&] {
    const scalar_t* xs = xc.data_ptr<scalar_t>();
    scalar_t* os = out.data_ptr<scalar_t>();
    const at::Tensor wc = weighted ? weight->contiguous() : at::Tensor();
    const scalar_t* ws = weighted ? wc.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* o = os + r * D;
        std::fill(o, o + D, scalar_t(0));
        for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
          const int64_t j = src[k];
          TORCH_CHECK(j >= 0 && j < n, "autoattend gather_sum: column ", j, " out of range for ", n, " rows");
          const scalar_t* row = xs + j * D;
          if (ws != nullptr) {
            for (int64_t h = 0; h < heads; ++h) {
              const scalar_t w = ws[k * heads + h];
              for (int64_t d = h * width; d < (h + 1) * width; ++d) {
                const scalar_t product = w * row[d];
                o[d] = o[d] + product;
              }
            }
          } else {
            for (int64_t d = 0; d < D; ++d) o[d] = o[d] + row[d];
          }
        }
      }
    });
  });
  return out;
}

// The largest value of each row's edges, per head: src (E, H) in edge-list order, rowptr (N + 1) and
// perm (E) int64, the edges of row r being perm[rowptr[r]] .. perm[rowptr[r + 1] - 1]. Returns (N, H);
// a row without edges gets 0. What PyG's softmax takes as its shift (zeros(N, H).scatter_reduce_(0,
// index, src, "amax", include_self=False)): a NaN wins and stays, and otherwise a later value
// replaces the running one only when larger (std::max, so of +0 and -0 the first is kept), in edge
// order, as scatter_reduce_ does.
at::Tensor segment_max(const at::Tensor& src, const at::Tensor& rowptr, const at::Tensor& perm) {
  TORCH_CHECK(src.device().is_cpu() && (src.scalar_type() == at::kFloat || src.scalar_type() == at::kDouble) &&
                  src.dim() == 2,
              "autoattend segment_max: src must be an (E, H) float32 or float64 CPU tensor, got ", src.sizes());
  TORCH_CHECK(rowptr.dim() == 1 && rowptr.numel() >= 1 && perm.dim() == 1 && perm.numel() == src.size(0) &&
                  rowptr.scalar_type() == at::kLong && perm.scalar_type() == at::kLong,
              "autoattend segment_max: rowptr (N + 1) and perm (E) must be int64 vectors");
  const auto sc = src.contiguous();
  const auto rp = rowptr.contiguous();
  const auto pc = perm.contiguous();
  const int64_t rows = rp.numel() - 1, edges = sc.size(0), H = sc.size(1);
  const int64_t* ptr = rp.data_ptr<int64_t>();
  const int64_t* order = pc.data_ptr<int64_t>();
  TORCH_CHECK(ptr[0] == 0 && ptr[rows] == edges, "autoattend segment_max: rowptr must run from 0 to E");
  auto out = at::empty({rows, H}, sc.options());
  AT_DISPATCH_FLOATING_TYPES(sc.scalar_type(), "autoattend_segment_max", [&] {
    const scalar_t* s = sc.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(H, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        for (int64_t h = 0; h < H; ++h) {
          if (ptr[r] == ptr[r + 1]) {
            o[r * H + h] = scalar_t(0);
            continue;
          }
          scalar_t m = -std::numeric_limits<scalar_t>::infinity();
          for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
            const int64_t e = order[k];
            TORCH_CHECK(e >= 0 && e < edges, "autoattend segment_max: edge ", e, " out of range for ", edges);
            const scalar_t v = s[e * H + h];
            m = std::isnan(v) ? v : std::max(m, v);
          }
          o[r * H + h] = m;
        }
      }
    });
  });
  return out;
}

// Per-edge products of two node tensors: a (Na, W), b (Nb, W), ia and ib (E) int64 -> (E, W),
// out[e] = a[ia[e]] * b[ib[e]], each product rounded on its own: the values of
// a.index_select(0, ia) * b.index_select(0, ib) without the two (E, W) gathers.
at::Tensor edge_products(const at::Tensor& a, const at::Tensor& b, const at::Tensor& ia, const at::Tensor& ib) {
  TORCH_CHECK(a.device().is_cpu() && b.device().is_cpu() && a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1) &&
                  a.scalar_type() == b.scalar_type() &&
                  (a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble),
              "autoattend edge_products: a and b must be (N, W) float CPU tensors of one dtype and width, got ",
              a.sizes(), " and ", b.sizes());
  TORCH_CHECK(ia.dim() == 1 && ib.dim() == 1 && ia.numel() == ib.numel() && ia.scalar_type() == at::kLong &&
                  ib.scalar_type() == at::kLong,
              "autoattend edge_products: ia and ib must be int64 vectors of one length");
  const auto ac = a.contiguous();
  const auto bc = b.contiguous();
  const auto iac = ia.contiguous();
  const auto ibc = ib.contiguous();
  const int64_t edges = iac.numel(), W = ac.size(1), na = ac.size(0), nb = bc.size(0);
  auto out = at::empty({edges, W}, ac.options());
  const int64_t* ra = iac.data_ptr<int64_t>();
  const int64_t* rb = ibc.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(ac.scalar_type(), "autoattend_edge_products", [&] {
    const scalar_t* as = ac.data_ptr<scalar_t>();
    const scalar_t* bs = bc.data_ptr<scalar_t>();
    scalar_t* os = out.data_ptr<scalar_t>();
    at::parallel_for(0, edges, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(W, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const int64_t i = ra[e], j = rb[e];
        TORCH_CHECK(i >= 0 && i < na && j >= 0 && j < nb, "autoattend edge_products: row ", i, " or ", j,
                    " out of range for ", na, " and ", nb, " rows");
        const scalar_t* x = as + i * W;
        const scalar_t* y = bs + j * W;
        scalar_t* o = os + e * W;
        for (int64_t d = 0; d < W; ++d) o[d] = x[d] * y[d];
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("gather_sum(Tensor x, Tensor rowptr, Tensor col, Tensor? weight) -> Tensor", &gather_sum);
  m.def("segment_max(Tensor src, Tensor rowptr, Tensor perm) -> Tensor", &segment_max);
  m.def("edge_products(Tensor a, Tensor b, Tensor ia, Tensor ib) -> Tensor", &edge_products);
}
