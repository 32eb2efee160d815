"""The lock file (requirements/cpu-lock.txt) and the module that writes it (src/utils/lock.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from src.utils import lock

ROOT = Path(__file__).resolve().parents[1]


def fake_metadata(packages: dict[str, tuple[str, list[str]]]):
    """A ``metadata`` callable over ``{name: (version, requirement strings)}``."""
    def metadata(name):
        for known, (version, requires) in packages.items():
            if canonicalize_name(known) == canonicalize_name(name):
                return known, version, requires
        return None
    return metadata


def test_closure_follows_requirements_extras_and_markers():
    packages = {
        "app": ("1.0", ["Lib_A>=1", "tool; extra == 'dev'", "never; sys_platform == 'nonexistent-os'",
                        "base-only; python_version >= '3'"]),
        "lib-a": ("1.5", ["lib-b[fast]", "app"]),  # a cycle back to app
        "lib-b": ("2.0", ["plain", "speedup; extra == 'fast'", "slow; extra == 'slow'"]),
        "plain": ("0.1", []), "speedup": ("3.0", []), "slow": ("9.9", []), "tool": ("4.0", []),
        "never": ("1.0", []), "base-only": ("1.0", []),
    }
    roots = [Requirement("app[dev]"), Requirement("never; sys_platform == 'nonexistent-os'")]
    found = lock.closure(roots, fake_metadata(packages))
    assert found == {"app": ("app", "1.0"), "lib-a": ("lib-a", "1.5"), "lib-b": ("lib-b", "2.0"),
                     "plain": ("plain", "0.1"), "speedup": ("speedup", "3.0"), "tool": ("tool", "4.0"),
                     "base-only": ("base-only", "1.0")}
    # without the extra, its requirement is not followed
    assert "tool" not in lock.closure([Requirement("app")], fake_metadata(packages))


def test_closure_adds_an_extra_asked_later():
    """A package first reached without extras, then with one: the extra's requirements are added."""
    for order in (["lib", "other"], ["other", "lib"]):  # either may be reached first
        packages = {"root": ("1", order), "other": ("1", ["lib[x]"]),
                    "lib": ("1", ["core", "addon; extra == 'x'"]), "core": ("1", []), "addon": ("1", [])}
        found = lock.closure([Requirement("root")], fake_metadata(packages))
        assert set(found) == {"root", "other", "lib", "core", "addon"}, order


def test_closure_names_the_package_that_needs_a_missing_or_wrong_one():
    with pytest.raises(lock.LockError, match=r"ghost \(needed by app\) is not installed"):
        lock.closure([Requirement("app")], fake_metadata({"app": ("1", ["ghost>=2"])}))
    with pytest.raises(lock.LockError, match=r"lib 1.0 is installed, but app needs lib>=2"):
        lock.closure([Requirement("app")], fake_metadata({"app": ("1", ["lib>=2"]), "lib": ("1.0", [])}))


def test_a_local_version_label_satisfies_the_pin_and_is_dropped_from_the_lock(tmp_path):
    found = lock.closure([Requirement("torch==2.13.0")], fake_metadata({"torch": ("2.13.0+cpu", [])}))
    text = lock.lock_text({**found, "autoattend": ("autoattend", "0.1.0")}, tmp_path / "cpu.txt")
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    assert pins == ["torch==2.13.0"]  # the project itself is not pinned


def test_root_requirements_reads_the_project_line_and_refuses_other_pip_options(tmp_path):
    good = tmp_path / "req.txt"
    good.write_text("# comment\ntorch==2.13.0\nmimalloc>=3; sys_platform == 'linux'  # why\n\n-e .[dev]\n")
    assert [str(r) for r in lock.root_requirements(good)] == \
        ["torch==2.13.0", 'mimalloc>=3; sys_platform == "linux"', "autoattend[dev]"]
    bad = tmp_path / "bad.txt"
    bad.write_text("torch\n--index-url https://example.org\n")
    with pytest.raises(lock.LockError, match=r"bad.txt:2: pip option"):
        lock.root_requirements(bad)


def test_read_lock_refuses_ranges_and_packages_named_twice(tmp_path):
    path = tmp_path / "lock.txt"
    path.write_text("# header\nnumpy==2.0\nNumPy==2.1\n")
    with pytest.raises(lock.LockError, match=r"lock.txt:3: NumPy is pinned twice"):
        lock.read_lock(path)
    path.write_text("numpy>=2.0\n")
    with pytest.raises(lock.LockError, match=r"lock.txt:1: expected 'name==version'"):
        lock.read_lock(path)


def test_main_writes_the_whole_file_or_nothing(tmp_path, monkeypatch, capsys):
    req = tmp_path / "req.txt"
    req.write_text("app\n")
    out = tmp_path / "lock.txt"
    out.write_text("the old lock\n")
    monkeypatch.setattr(lock, "installed_metadata", fake_metadata({"app": ("1", ["ghost"])}))
    assert lock.main(["--requirements", str(req), "--out", str(out)]) == 1
    assert "ghost (needed by app) is not installed" in capsys.readouterr().err
    assert out.read_text() == "the old lock\n" and not list(tmp_path.glob("*.partial"))


def _declared_requirements() -> list[Requirement]:
    """pyproject's dependencies and dev extra, and requirements/cpu.txt's other lines."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    return reqs + [r for r in lock.root_requirements(ROOT / "requirements" / "cpu.txt") if r.name != lock.PROJECT]


def test_the_lock_pins_every_declared_requirement_within_its_range():
    pins = lock.read_lock(ROOT / "requirements" / "cpu-lock.txt")
    for req in _declared_requirements():
        key = canonicalize_name(req.name)
        assert key in pins, f"{req.name} (declared) is missing from requirements/cpu-lock.txt: run make lock"
        assert req.specifier.contains(pins[key][1], prereleases=True), \
            f"the lock pins {pins[key][0]}=={pins[key][1]}, outside the declared {req}"
    assert lock.PROJECT not in pins


def test_the_lock_is_the_closure_of_this_environment_when_it_holds_the_locked_versions():
    """Written by ``make lock`` and not edited since: where this environment holds exactly the locked
    versions (an install from the lock, or the one it was written from), its closure is the lock."""
    pins = lock.read_lock(ROOT / "requirements" / "cpu-lock.txt")
    for key, (name, version) in pins.items():
        meta = lock.installed_metadata(name)
        if meta is None or lock.public_version(meta[1]) != version:
            pytest.skip(f"this environment's {name} is {meta[1] if meta else 'not installed'}, the lock's {version}")
    found = lock.closure(lock.root_requirements())
    assert {k: (n, lock.public_version(v)) for k, (n, v) in found.items() if k != lock.PROJECT} == pins


def test_main_says_which_file_it_cannot_write(tmp_path, monkeypatch, capsys):
    req = tmp_path / "req.txt"
    req.write_text("app\n")
    monkeypatch.setattr(lock, "installed_metadata", fake_metadata({"app": ("1", [])}))
    out = tmp_path / "missing" / "lock.txt"
    assert lock.main(["--requirements", str(req), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(out.parent) in err and "Traceback" not in err
    assert lock.main(["--requirements", str(tmp_path / "absent.txt"), "--out", str(tmp_path / "l.txt")]) == 1
    assert "absent.txt" in capsys.readouterr().err and not (tmp_path / "l.txt").exists()


def test_differences_name_each_locked_package_installed_at_another_version(tmp_path):
    pytest_version = lock.installed_metadata("pytest")[1]
    path = tmp_path / "lock.txt"
    path.write_text(f"# header\npytest=={pytest_version}\nPyYAML==0.0.1\nno-such-package-here==1.0\n")
    yaml_version = lock.installed_metadata("pyyaml")[1]
    found = lock.differences(path)
    assert found == {"PyYAML": {"installed": yaml_version, "locked": "0.0.1"},
                     "no-such-package-here": {"installed": None, "locked": "1.0"}}
    assert lock.describe_differences(found, path, shown=1) == \
        f"2 differ from {path}: PyYAML {yaml_version} (locked 0.0.1) and 1 more"
    assert lock.describe_differences(found, path) == \
        f"2 differ from {path}: PyYAML {yaml_version} (locked 0.0.1), no-such-package-here not installed (locked 1.0)"
    same = tmp_path / "same.txt"
    same.write_text(f"pytest=={pytest_version}\n")
    assert lock.differences(same) == {} and lock.describe_differences({}, same) == f"the versions {same} pins"
    one = {"torchmetrics": {"installed": "1.10.0", "locked": "1.9.0"}}
    assert lock.describe_differences(one, path) == f"1 differs from {path}: torchmetrics 1.10.0 (locked 1.9.0)"
    assert lock.differences(tmp_path / "absent.txt") is None
    assert "cannot be read" in lock.describe_differences(None, tmp_path / "absent.txt")
    # a lock in the checkout is named from its root
    assert lock.describe_differences({}) == "the versions requirements/cpu-lock.txt pins"
