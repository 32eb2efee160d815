"""The CPU a run or a bench records (``src/utils/cpu.py``): hosts differ between hours, so every
``summary.json`` / ``bench.json`` names the CPU its timings come from."""

from __future__ import annotations

import platform

import pytest
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


def test_the_memory_limit_is_the_lowest_of_the_process_cgroup_and_those_above(tmp_path):
    """The limit that bounds a process can sit on its own control group or any group above it;
    only the cgroup root's file was read (none, in a container's nested group)."""
    from src.utils.memory import _cgroup_limits

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "memory.max").write_text("1000\n")
    (tmp_path / "a" / "b" / "memory.max").write_text("max\n")  # no limit of its own
    (tmp_path / "memory.max").write_text("5000\n")
    assert sorted(_cgroup_limits("0::/a/b\n", tmp_path)) == [1000, 5000]
    (tmp_path / "memory" / "job").mkdir(parents=True)
    (tmp_path / "memory" / "job" / "memory.limit_in_bytes").write_text("2000\n")
    assert _cgroup_limits("4:memory:/job\n1:cpu:/\n", tmp_path) == [2000]
    assert _cgroup_limits("1:cpu:/\n", tmp_path) == []


def test_memory_figures_named_mb_are_megabytes_of_a_million_bytes(tmp_path, monkeypatch):
    """Every ``*_mb`` figure is bytes / 10^6 (the unit of the issue's "at most 1.6 GB"); they were
    KiB / 1,024 and bytes / 2^20 (MiB, about 4.9 % smaller numbers) under the same names."""
    import resource
    from types import SimpleNamespace

    import src.bench_harness as harness
    import src.bench_data as bench_data
    import src.bench_graph as bench_graph
    from src.utils.memory import MB, MEMORY_UNIT, to_mb

    assert MB == 10**6 and MEMORY_UNIT == "MB = 10^6 bytes"
    assert to_mb(1_600_000_000) == 1600.0 and to_mb(2**20) == 1.048576
    # Linux's ru_maxrss counts KiB: 1,562,500 KiB = 1.6 x 10^9 bytes = 1,600 MB (1,525.9 MiB)
    monkeypatch.setattr(resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=1_562_500))
    assert harness._peak_rss_mb() == 1600.0
    assert bench_graph._peak_rss_mb(reset=False) == 1600.0
    status = tmp_path / "status"
    status.write_text("VmPeak:\t 9999999 kB\nVmHWM:\t  781250 kB\nVmRSS:\t  1000 kB\n")  # 800 x 10^6 bytes
    assert bench_graph._peak_rss_mb(reset=True, status=status) == 800.0
    (tmp_path / "cache" / "sub").mkdir(parents=True)
    (tmp_path / "cache" / "a.arrow").write_bytes(b"x" * 1_000_000)
    (tmp_path / "cache" / "sub" / "b.json").write_bytes(b"x" * 500_000)
    assert bench_data._folder_mb(tmp_path / "cache") == 1.5


@pytest.mark.parametrize("returncode, how", [(3, "exit status 3"), (-9, "killed by signal 9")])
def test_a_failed_data_preparation_run_is_one_error_line_and_writes_no_figures(tmp_path, monkeypatch, capsys,
                                                                               returncode, how):
    """``src.bench_data`` runs the preparation in a child process: a child that failed (its own
    error already on standard error) ended the parent with a ``CalledProcessError`` traceback. Now
    one line and exit status 2, as the other commands say a user's error."""
    import subprocess

    import src.bench_data as bench_data

    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, returncode, stdout=""))
    out = tmp_path / "figures.json"
    with pytest.raises(SystemExit) as stop:
        bench_data.main(["--rows", "20", "--work", str(tmp_path / "work"), "--out", str(out)])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: the cold run of the data preparation failed ({how}); no figures written\n"
    assert not out.exists()


def test_only_the_first_processor_counts_and_describe_says_what_it_lacks():
    """A later processor's fields are not mixed into the first's (a chip whose first block lacks
    flags reports none); ``describe`` says ``model ?`` and ``unknown CPU`` for what is missing and
    leaves out an empty flag list."""
    facts = parse_cpuinfo("processor\t: 0\ncpu family\t: 6\n\nprocessor\t: 1\nmodel\t\t: 85\nflags\t\t: avx2 fma\n")
    assert facts == {"family": 6, "isa": []}
    facts["torch_capability"] = "AVX2"
    assert describe(facts) == "unknown CPU (family 6, model ?; torch AVX2)"
    assert parse_cpuinfo("vendor_id\t: X\ncpu family\t: 0x19\nmodel\t\t: 17\n") == {
        "vendor": "X", "family": "0x19", "model": 17, "isa": []}


def test_the_memory_limits_stop_at_the_cgroup_root_and_kib_are_1024_bytes(tmp_path, monkeypatch):
    """A ``memory.max`` above the cgroup root (no control group's) is not read; Linux's ``kB`` and
    ``ru_maxrss`` are KiB."""
    import resource
    from types import SimpleNamespace

    from src.utils.memory import _cgroup_limits, kib_to_bytes, peak_rss_bytes

    root = tmp_path / "cgroup"
    (root / "a").mkdir(parents=True)
    (root / "a" / "memory.max").write_text("3000\n")
    (tmp_path / "memory.max").write_text("10\n")  # outside the hierarchy
    assert _cgroup_limits("0::/a\n", root) == [3000]
    assert kib_to_bytes(2) == 2048
    monkeypatch.setattr(resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=3))
    assert peak_rss_bytes() == 3072


def test_without_proc_cpuinfo_the_processor_name_comes_before_the_machine_type(tmp_path, monkeypatch):
    monkeypatch.setattr(platform, "processor", lambda: "Intel64 Family 6 Model 85")
    monkeypatch.setattr(platform, "machine", lambda: "AMD64")
    assert cpu_facts(tmp_path / "missing")["model_name"] == "Intel64 Family 6 Model 85"
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert cpu_facts(tmp_path / "missing")["model_name"] == "AMD64"


def test_the_machines_memory_is_the_lowest_of_physical_memory_and_the_cgroup_limits(monkeypatch):
    import os

    import src.utils.memory as memory

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1000}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    monkeypatch.setattr(memory, "_cgroup_limits", lambda text: [9_000_000, 2_000_000])
    assert memory.machine_memory_bytes() == 2_000_000
    monkeypatch.setattr(memory, "_cgroup_limits", lambda text: [9_000_000])
    assert memory.machine_memory_bytes() == 4_096_000

    def unknown(name):
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", unknown)
    monkeypatch.setattr(memory, "_cgroup_limits", lambda text: [])
    assert memory.machine_memory_bytes() is None
