"""The CPU a run or a bench records (``src/utils/cpu.py``): hosts differ between hours, so every
``summary.json`` / ``bench.json`` names the CPU its timings come from."""

from __future__ import annotations

import platform

import torch

from src.utils.cpu import ISA_FLAGS, cpu_facts, describe, parse_cpuinfo

TWO_PROCESSORS = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 avx512_vnni sha_ni
cpu MHz\t\t: 2596.140

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Another chip
flags\t\t: fpu avx2 amx_bf16 amx_tile
"""


def test_parse_cpuinfo_reads_the_first_processor_and_the_isa_flags_in_a_fixed_order():
    facts = parse_cpuinfo(TWO_PROCESSORS)
    assert facts == {"vendor": "AuthenticAMD", "model_name": "AMD EPYC 9R14", "family": 25, "model": 17,
                     "isa": ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]}
    assert all(f in ISA_FLAGS for f in facts["isa"])


def test_parse_cpuinfo_of_an_arm_like_file_has_no_x86_fields():
    facts = parse_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve\nCPU part\t: 0xd40\n")
    assert facts == {"isa": []}


def test_cpu_facts_falls_back_to_platform_without_proc_cpuinfo(tmp_path):
    facts = cpu_facts(tmp_path / "missing")
    assert facts == {"model_name": platform.processor() or platform.machine(),
                     "torch_capability": torch.backends.cpu.get_cpu_capability()}
    assert describe(facts).endswith(f"(torch {facts['torch_capability']})")


def test_cpu_facts_reads_the_given_file_and_describe_names_family_model_and_flags(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(TWO_PROCESSORS)
    facts = cpu_facts(path)
    assert facts["family"] == 25 and facts["model"] == 17
    assert describe(facts) == (f"AMD EPYC 9R14 (family 25, model 17; avx2 fma avx512f avx512_vnni avx512_bf16; "
                               f"torch {torch.backends.cpu.get_cpu_capability()})")
