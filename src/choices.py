"""Names a config chooses among, kept free of torch and Lightning imports.

:mod:`src.pipeline.checks` validates a composed config against these before the entry points import
torch, Lightning and PyG (about 10 s on two cores), so a mistyped value fails at once. The modules
that implement the choices import their names from here (ops and sharing modes: :mod:`src.space`).
"""

GRAPH_ACTIVATIONS = ("tanh", "relu", "elu", "identity")  # src.models.graph.ACTIVATIONS
ACT_POSITIONS = ("layer", "op")  # a graph layer's activation: after its add/attn (default) or on each op (AutoGL)
# what a graph child's weight decay applies to: every parameter, or those mapping the raw features
# (GraphNet.first_layer_parameters; GCN's paper regularises its first layer alone)
WEIGHT_DECAY_ON = ("all", "first_layer")
# what a graph child trained with before each of these settings existed (attn_self_loops and act_at: 2026-12-04,
# weight_decay_on: 2026-12-07 04:30): records of then (an HPO trial's hparams, an architecture's, a run's) lack them
CHILD_SETTINGS_BEFORE_THEY_EXISTED = {"weight_decay_on": "all", "attn_self_loops": True, "act_at": "layer"}
# A DataModule's settings that changed what it builds, with the value that builds what it did before they existed
# (a run's records without them read so: src.evaluate / src.predict rebuild its data, a resume is told the value)
DATAMODULE_SETTINGS_BEFORE_THEY_EXISTED = {"src.data.sst.SSTDataModule": {"test_words_last": False}}


def datamodule_settings_then(target, lacks) -> dict:
    """The settings of :data:`DATAMODULE_SETTINGS_BEFORE_THEY_EXISTED` for the DataModule ``target`` that a record
    ``lacks`` (a predicate on the setting's name), at the value that builds what that DataModule built then."""
    return {name: old for name, old in DATAMODULE_SETTINGS_BEFORE_THEY_EXISTED.get(target, {}).items() if lacks(name)}


READOUTS = ("linear", "last")  # a graph child's output layer (src.models.graph.layer_widths)
GAT_HEADS = {"gat1": 1, "gat2": 2, "gat4": 4, "gat8": 8, "gat16": 16}  # heads of each GAT op (src.models.graph)
EMBEDDING_SOURCES = ("auto", "kumo", "random")  # src.data.embeddings.load_word_vectors
GRAPH_FILE_SPLITS = ("file", "random")  # +task=graph_file: the masks of the file, or drawn (src.data.graph_file)
KERNEL_BACKENDS = ("auto", "fused", "torch")  # hardware.kernels (src.models.cpu_kernels.BACKENDS)
OPTIMIZER_STATES = ("float32", "bfloat16")  # dtype of the supernet's Adam moments (src.models.optim)
# the supernet's parameters no sampled architecture used in a step: no gradient, not updated (torch 2's
# zero_grad), or a zero one, so Adam moves them by their moments (torch 1.x's; src.models.optim.fill_unused_grads)
UNUSED_GRADS = ("none", "zeros")
# The `precision` values runs support: Lightning's float32 and float64, and its two mixed precisions
# (the integers 64/32/16 and "bf16" are Lightning's names for the same). A test keeps them within
# Lightning's accepted strings (lightning.fabric.connector._PRECISION_INPUT); its "-true" half
# precisions (the whole model in float16/bfloat16) and transformer-engine are not supported.
PRECISIONS = ("32-true", "32", "64-true", "64", "bf16-mixed", "bf16", "16-mixed", "16")
FULL_PRECISIONS = ("32-true", "32", "64-true", "64")  # no autocast: what the fused CPU kernels compute in
ACCELERATORS = ("auto", "cpu", "gpu", "cuda")  # hardware.accelerator (src.utils.device.device_of)
# graph.hpo.trials below this runs no HPO: one trial would be the retrain settings themselves (trial 0)
HPO_MIN_TRIALS = 2
