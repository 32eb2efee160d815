"""Names a config chooses among, kept free of torch and Lightning imports.

:mod:`src.pipeline.checks` validates a composed config against these before the entry points import
torch, Lightning and PyG (about 10 s on two cores), so a mistyped value fails at once. The modules
that implement the choices import their names from here (ops and sharing modes: :mod:`src.space`).
"""

GRAPH_ACTIVATIONS = ("tanh", "relu", "elu", "identity")  # src.models.graph.ACTIVATIONS
ACT_POSITIONS = ("layer", "op")  # a graph layer's activation: after its add/attn (default) or on each op (AutoGL)
READOUTS = ("linear", "last")  # a graph child's output layer (src.models.graph.layer_widths)
EMBEDDING_SOURCES = ("auto", "kumo", "random")  # src.data.embeddings.load_word_vectors
KERNEL_BACKENDS = ("auto", "fused", "torch")  # hardware.kernels (src.models.cpu_kernels.BACKENDS)
OPTIMIZER_STATES = ("float32", "bfloat16")  # dtype of the supernet's Adam moments (src.models.optim)
# Lightning's accepted `precision` strings (lightning.fabric.connector._PRECISION_INPUT; a test keeps
# the two equal). The integers 64/32/16 are accepted as their strings.
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", "64", "32", "16", "bf16")
