"""The lock file (requirements/cpu-lock.txt) and the module that writes it (src/utils/lock.py)."""

from __future__ import annotations

import sys
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


def test_installed_metadata_gives_the_published_name_version_and_requirements():
    """What the lock is built from, whatever this environment's versions are (the closure-of-this-
    environment test skips where they are not the lock's): the name as published (``PyYAML`` asked
    as ``pyyaml``), the installed version, and the distribution's own requirements; None where the
    package is not installed."""
    assert lock.installed_metadata("pyyaml")[0] == "PyYAML"
    name, version, requires = lock.installed_metadata("PyTest")
    assert (name, version) == ("pytest", pytest.__version__)
    assert "pluggy" in {canonicalize_name(Requirement(r).name) for r in requires}
    assert lock.installed_metadata("no-such-package-here") is None


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
    # a short option (another file's requirements, constraints) is refused as one too, not read as a
    # malformed requirement; '-e.' (no space) is this project as '-e .' is
    bad.write_text("-r other.txt\n")
    with pytest.raises(lock.LockError, match=r"bad.txt:1: pip option '-r other.txt'"):
        lock.root_requirements(bad)
    good.write_text("-e.[dev]\n")
    assert [str(r) for r in lock.root_requirements(good)] == ["autoattend[dev]"]


def test_read_lock_refuses_ranges_and_packages_named_twice(tmp_path):
    path = tmp_path / "lock.txt"
    path.write_text("# header\nnumpy==2.0\nNumPy==2.1\n")
    with pytest.raises(lock.LockError, match=r"lock.txt:3: NumPy is pinned twice"):
        lock.read_lock(path)
    path.write_text("numpy>=2.0\n")
    with pytest.raises(lock.LockError, match=r"lock.txt:1: expected 'name==version'"):
        lock.read_lock(path)
    for line in ("numpy==2.0==2.1", "numpy[extra]==2.0", "==2.0", "numpy==", "numpy===2.1.0", "numpy==2.*",
                 "numpy==latest"):
        path.write_text(f"# header\n{line}\n")
        with pytest.raises(lock.LockError, match=r"lock.txt:2: expected 'name==version'"):
            lock.read_lock(path)
    # one package however its name is spelt (PEP 503: case, '_', '.' and '-' alike), not only by case
    path.write_text("Foo_Bar==1.0\nfoo.bar==1.0\n")
    with pytest.raises(lock.LockError, match=r"lock.txt:2: foo.bar is pinned twice"):
        lock.read_lock(path)


def test_main_writes_the_whole_file_or_nothing(tmp_path, monkeypatch, capsys):
    req = tmp_path / "req.txt"
    req.write_text("app\n")
    out = tmp_path / "lock.txt"
    out.write_text("the old lock\n")
    monkeypatch.setattr(lock, "installed_metadata", fake_metadata({"app": ("1", ["ghost"])}))
    assert lock.main(["--requirements", str(req), "--out", str(out)]) == 2
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
    assert lock.main(["--requirements", str(req), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(out.parent) in err and "Traceback" not in err
    assert lock.main(["--requirements", str(tmp_path / "absent.txt"), "--out", str(tmp_path / "l.txt")]) == 2
    assert "absent.txt" in capsys.readouterr().err and not (tmp_path / "l.txt").exists()


def test_main_writes_the_sorted_lock_of_the_closure_and_counts_its_packages(tmp_path, monkeypatch, capsys):
    """``make lock``'s success: exit 0, the lock written (a header naming the requirements file it
    locks, then the closure's pins, the project and local labels left out) and read back as written,
    and the count it prints is the pins', not the header's lines too. Guards the success path, which
    no failure test reaches: a wrong exit status fails ``make lock`` after writing, a wrong count misleads."""
    req = tmp_path / "mine.txt"
    req.write_text("app\n-e .\n")
    monkeypatch.setattr(lock, "installed_metadata", fake_metadata({
        "autoattend": ("0.1.0", ["app"]), "app": ("1.0", ["Lib_B>=2"]), "lib-b": ("2.0+cpu", [])}))
    out = tmp_path / "lock.txt"
    assert lock.main(["--requirements", str(req), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{out}: 2 packages\n"
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# Exact versions of everything mine.txt installs")
    assert [line for line in lines if not line.startswith("#")] == ["app==1.0", "lib-b==2.0"]
    assert lock.read_lock(out) == {"app": ("app", "1.0"), "lib-b": ("lib-b", "2.0")}
    assert not list(tmp_path.glob("*.partial"))


def test_lock_text_sorts_pins_by_canonical_name_and_ends_with_one_newline(tmp_path):
    """The pins in canonical-name order whatever order the closure found them in (a lock that
    reorders with each ``make lock`` is a noisy diff), ``PyYAML`` among the p's rather than before
    every lower-case name, and the text ends in exactly one newline (a last line without one is
    glued to whatever is appended to the file)."""
    packages = {"zope-interface": ("zope.interface", "7.0"), "pyyaml": ("PyYAML", "6.0.2"), "numpy": ("numpy", "2.1.0"),
                "autoattend": ("autoattend", "0.1.0"), "markupsafe": ("MarkupSafe", "3.0")}
    text = lock.lock_text(packages, tmp_path / "mine.txt")
    assert [line for line in text.splitlines() if not line.startswith("#")] == \
        ["MarkupSafe==3.0", "numpy==2.1.0", "PyYAML==6.0.2", "zope.interface==7.0"]
    assert text.endswith("zope.interface==7.0\n") and not text.endswith("\n\n")


def test_differences_ignore_local_labels_and_an_unreadable_lock_is_no_lock(tmp_path, monkeypatch):
    """torch ``2.13.0+cpu`` installed where the lock pins ``torch==2.13.0`` is the locked version
    (every run on the CPU wheel would otherwise report torch as differing); a lock that is there
    but malformed is "not compared" (None), never an exception in the middle of a run's summary."""
    installed = {"torch": ("2.13.0+cpu", []), "numpy": ("2.1.0", [])}
    monkeypatch.setattr(lock, "installed_metadata", fake_metadata(installed))
    same = tmp_path / "same.txt"
    same.write_text("torch==2.13.0\nnumpy==2.1.0\n")
    assert lock.differences(same) == {}
    older = tmp_path / "older.txt"
    older.write_text("torch==2.12.0\nnumpy==2.1.0\n")
    assert lock.differences(older) == {"torch": {"installed": "2.13.0", "locked": "2.12.0"}}
    bad = tmp_path / "bad.txt"
    bad.write_text("numpy>=2\n")
    assert lock.differences(bad) is None


def test_a_locked_package_not_installed_or_of_an_unreadable_version_differs(tmp_path, monkeypatch):
    """A pinned package that is not installed differs (installed None), and so does one whose installed
    version is no PEP 440 version (compared as text, never taken for the pin)."""
    monkeypatch.setattr(lock, "installed_metadata", fake_metadata({"numpy": ("nightly", [])}))
    path = tmp_path / "lock.txt"
    path.write_text("numpy==2.1.0\nscipy==1.14.0\n")
    assert lock.differences(path) == {"numpy": {"installed": "nightly", "locked": "2.1.0"},
                                      "scipy": {"installed": None, "locked": "1.14.0"}}


def test_describe_differences_sorts_and_counts_only_what_it_leaves_out(tmp_path):
    """Packages named in sorted order whatever order they were found in, and "and N more" only
    where some are left out (not "and 0 more" when exactly ``shown`` differ)."""
    path = tmp_path / "lock.txt"
    found = {"zlib-ng": {"installed": "2.0", "locked": "1.0"}, "numpy": {"installed": None, "locked": "2.1.0"}}
    assert lock.describe_differences(found, path, shown=2) == \
        f"2 differ from {path}: numpy not installed (locked 2.1.0), zlib-ng 2.0 (locked 1.0)"
    assert lock.describe_differences(found, path, shown=1) == \
        f"2 differ from {path}: numpy not installed (locked 2.1.0) and 1 more"


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


@pytest.mark.parametrize("prefix, shown", [(lock.ROOT / ".venv-locked", ".venv-locked"), (Path("/opt/env"), "/opt/env")])
def test_the_lock_header_names_the_environment_it_was_written_from(prefix, shown, monkeypatch, tmp_path):
    """Was: the header always said "from the packages installed in .venv", also for a lock written from
    ``make lock VENV=.venv-locked`` or another environment. Now: it names the interpreter's environment, relative
    to the checkout when inside it."""
    monkeypatch.setattr(sys, "prefix", str(prefix))
    text = lock.lock_text({"numpy": ("numpy", "2.1.0")}, tmp_path / "cpu.txt")
    assert f"from the packages installed in {shown}) on " in text.replace("\n# ", " ")
