// Weighted neighbour sums of a graph's node features over a CSR view of its edges, the propagation
// of the GCN, SGC, GraphSAGE-mean, ARMA and Chebyshev ops, and with one weight per edge and head,
// of GAT and the edge-softmax attention (torch.ops.autoattend.gather_sum).
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
#include <cstdint>
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

}  // namespace

TORCH_LIBRARY_FRAGMENT(autoattend, m) {
  m.def("gather_sum(Tensor x, Tensor rowptr, Tensor col, Tensor? weight) -> Tensor", &gather_sum);
}
