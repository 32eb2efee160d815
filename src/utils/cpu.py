"""What CPU a run or a bench ran on, for the records (``summary.json``, ``bench.json``).

The hosts these runs land on differ from hour to hour: on 2026-12-02 the morning's was recorded
as a Zen 5 (full-width AVX-512) and the afternoon's reported AMD family 25 (Zen 4, AVX-512 on
256-bit units), where oneDNN's float32 products ran at about half the speed
(``experiments/README.md``). A timing is only comparable with one taken on the same kind of CPU,
so every record names it.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

# instruction-set flags that change which kernels oneDNN, MKL and our CPU kernels can use
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def parse_cpuinfo(text: str) -> dict:
    """The first processor's vendor, model name, family, model and ISA flags from ``/proc/cpuinfo`` text."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # only the first processor: the others are the same chip
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    facts: dict = {}
    for key, name in (("vendor_id", "vendor"), ("model name", "model_name"), ("cpu family", "family"),
                      ("model", "model")):
        if key in fields:
            facts[name] = int(fields[key]) if name in ("family", "model") and fields[key].isdigit() else fields[key]
    flags = set(fields.get("flags", "").split())
    facts["isa"] = [f for f in ISA_FLAGS if f in flags]
    return facts


def cpu_facts(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """The CPU as ``/proc/cpuinfo`` describes it (Linux), else what ``platform`` knows, plus the
    instruction set torch dispatches to (``torch.backends.cpu.get_cpu_capability()``, e.g. AVX512)."""
    try:
        facts = parse_cpuinfo(cpuinfo.read_text())
    except OSError:
        facts = {"model_name": platform.processor() or platform.machine()}
    facts["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    return facts


def describe(facts: dict) -> str:
    """One line, e.g. ``AMD EPYC (family 25, model 17; avx2 fma avx512f avx512_bf16; torch AVX512)``."""
    inner = []
    if "family" in facts:
        inner.append(f"family {facts['family']}, model {facts.get('model', '?')}")
    if facts.get("isa"):
        inner.append(" ".join(facts["isa"]))
    inner.append(f"torch {facts['torch_capability']}")
    return f"{facts.get('model_name', 'unknown CPU')} ({'; '.join(inner)})"
