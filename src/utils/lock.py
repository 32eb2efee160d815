"""The exact versions of every package an install of this project needs: ``requirements/cpu-lock.txt``.

``requirements/cpu.txt`` (what ``make install`` and CI install) names lower bounds, so a fresh
install takes each library's newest release, and a run's numbers can move with them. Every run
records the versions it ran with and those that differ from the lock (``summary.json``,
``machine.versions`` and ``machine.lock_differences``; a ``libraries:`` line in its log); the lock
is the whole set the test suite last passed with, so that a recorded run can be repeated on the
libraries it had::

    make install-locked VENV=.venv-locked    # a new virtualenv from the lock alone, then pip check
    make lock                                # rewrite the lock from .venv (after make install)

The lock is written from the installed packages' own metadata, not from ``pip freeze``: it holds
the packages ``requirements/cpu.txt`` asks for, with their extras, and what those require in turn
(environment markers evaluated for this machine), and nothing else a virtualenv may hold. Local
version labels (torch's ``+cpu``) are dropped, as ``requirements/cpu.txt`` pins ``torch==2.13.0``.

    python -m src.utils.lock [--requirements requirements/cpu.txt] [--out requirements/cpu-lock.txt]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import platform
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from src.utils.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements" / "cpu.txt"
LOCK = ROOT / "requirements" / "cpu-lock.txt"
PROJECT = "autoattend"

# (name) -> (its name as published, its version, its requirement strings); None: not installed
Metadata = Callable[[str], "tuple[str, str, list[str]] | None"]


class LockError(RuntimeError):
    """A requirement that cannot be resolved from the installed packages, or a malformed file."""


def installed_metadata(name: str) -> tuple[str, str, list[str]] | None:
    """What the installed distribution ``name`` says of itself (``importlib.metadata``)."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    return dist.metadata["Name"], dist.version, list(dist.requires or [])


def root_requirements(path: Path = REQUIREMENTS) -> list[Requirement]:
    """The requirements a requirements file names: one per line, ``#`` comments, ``-e .[extras]``
    for this project (read as ``autoattend[extras]``). Other pip options are refused, naming the line."""
    roots = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #")[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.startswith("-e"):
            target = line[2:].strip()
            if not target.startswith("."):
                raise LockError(f"{path}:{number}: only '-e .' or '-e .[extras]' (this project) is understood, got {line!r}")
            line = PROJECT + target[1:]
        elif line.startswith("-"):
            raise LockError(f"{path}:{number}: pip option {line!r} is not understood here; expected a requirement")
        try:
            roots.append(Requirement(line))
        except InvalidRequirement as exc:
            raise LockError(f"{path}:{number}: {line!r} is not a requirement ({exc})") from exc
    return roots


def _applies(req: Requirement) -> bool:
    """Whether ``req`` holds on this machine for a package installed without extras."""
    return req.marker is None or req.marker.evaluate({"extra": ""})


def closure(roots: Iterable[Requirement], metadata: Metadata | None = None) -> dict[str, tuple[str, str]]:
    """Every package the ``roots`` need, by canonical name -> (published name, installed version),
    following each package's requirements (with the extras asked of it) to the end. Raises
    :class:`LockError` for a needed package that is not installed or whose version breaks a
    requirement, naming which package needs it. ``metadata``: :func:`installed_metadata` if not given."""
    metadata = metadata or installed_metadata
    found: dict[str, tuple[str, str]] = {}
    extras_done: dict[str, set[str]] = {}
    todo: list[tuple[Requirement, str]] = [(req, "the requirements file") for req in roots]
    while todo:
        req, needed_by = todo.pop()
        if not _applies(req):
            continue
        key = canonicalize_name(req.name)
        meta = metadata(req.name)
        if meta is None:
            raise LockError(f"{req.name} (needed by {needed_by}) is not installed: run make install first")
        name, version, requires = meta
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            raise LockError(f"{name} {version} is installed, but {needed_by} needs {req}")
        asked = set(req.extras)
        if key in extras_done and asked <= extras_done[key]:
            continue
        new_extras = asked - extras_done.get(key, set())
        first_visit = key not in extras_done
        extras_done.setdefault(key, set()).update(asked)
        found[key] = (name, version)
        # on a first visit every requirement that holds here; later, those only the new extras add
        for text in requires:
            sub = Requirement(text)
            for_new_extras = sub.marker is not None and any(sub.marker.evaluate({"extra": e}) for e in new_extras)
            if (first_visit and _applies(sub)) or for_new_extras:
                sub.marker = None
                todo.append((sub, f"{name}[{','.join(sorted(asked))}]" if for_new_extras else name))
    return found


def public_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: the local label names a build, not a release."""
    return version.split("+", 1)[0]


def environment_name() -> str:
    """The environment this interpreter runs in (``sys.prefix``), relative to the checkout when inside it
    (``.venv``, ``.venv-locked``), else its absolute path."""
    prefix = Path(sys.prefix).resolve()
    return str(prefix.relative_to(ROOT)) if prefix.is_relative_to(ROOT) else str(prefix)


def lock_text(packages: dict[str, tuple[str, str]], requirements: Path = REQUIREMENTS) -> str:
    """The lock file's text: a header saying what it is and where it was written, then one
    ``name==version`` line per package (this project left out), sorted by canonical name."""
    lines = [
        f"# Exact versions of everything {requirements.name} installs, with what it needs in turn: written by",
        f"# `make lock` (python -m src.utils.lock, from the packages installed in {environment_name()}) on "
        f"{datetime.date.today().isoformat()},",
        f"# Python {platform.python_version()}, {sys.platform} {platform.machine()}. Install with `make install-locked`"
        " (pip --no-deps, then pip check).",
    ]
    lines += [f"{name}=={public_version(version)}" for key, (name, version) in sorted(packages.items())
              if key != PROJECT]
    return "\n".join(lines) + "\n"


def read_lock(path: Path = LOCK) -> dict[str, tuple[str, str]]:
    """The lock's pins, canonical name -> (name, version). Refuses anything but ``name==version``
    lines (one exact PEP 440 version: not ``===2.1``, read as version ``=2.1``, nor ``2.*``) and
    comments, and a package named twice, naming the line."""
    pins: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        if not sep or not name or any(c in line for c in " ;@<>!~[") or not _exact_version(version):
            raise LockError(f"{path}:{number}: expected 'name==version', got {line!r}")
        key = canonicalize_name(name)
        if key in pins:
            raise LockError(f"{path}:{number}: {name} is pinned twice")
        pins[key] = (name, version)
    return pins


def _exact_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@functools.lru_cache(maxsize=None)
def differences(path: Path = LOCK) -> dict[str, dict[str, str | None]] | None:
    """The locked packages whose installed version is another one (local labels aside), name ->
    ``{"installed": version or None, "locked": version}``: ``{}`` where this environment holds
    exactly the lock's versions, ``None`` where there is no lock to compare with (a copy of the code
    without ``requirements/``, or a lock that cannot be read). What a run records beside its versions."""
    try:
        pins = read_lock(path)
    except (OSError, LockError):
        return None
    found: dict[str, dict[str, str | None]] = {}
    for name, locked in pins.values():
        meta = installed_metadata(name)
        installed = public_version(meta[1]) if meta else None
        if installed is None or not same_version(installed, locked):
            found[name] = {"installed": installed, "locked": locked}
    return found


def same_version(installed: str, locked: str) -> bool:
    """Whether two versions are one under PEP 440, as pip's ``==`` pin reads them (``2.1.0.0`` is
    ``2.1.0``); compared as text where either is not a PEP 440 version."""
    try:
        return Version(installed) == Version(locked)
    except InvalidVersion:
        return installed == locked


def describe_differences(found: dict[str, dict[str, str | None]] | None, path: Path = LOCK, shown: int = 5) -> str:
    """One line for a run's log: whether its libraries are the lock's, and the first ``shown`` that are not."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if found is None:
        return f"not compared with a lock ({name} cannot be read)"
    if not found:
        return f"the versions {name} pins"
    items = [f"{pkg} {v['installed'] or 'not installed'} (locked {v['locked']})" for pkg, v in sorted(found.items())]
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    verb = "differs" if len(items) == 1 else "differ"
    return f"{len(items)} {verb} from {name}: " + ", ".join(items[:shown]) + more


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.utils.lock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS, help="the file whose closure is locked")
    parser.add_argument("--out", type=Path, default=LOCK, help="where the lock is written")
    args = parser.parse_args(argv)
    try:
        text = lock_text(closure(root_requirements(args.requirements)), args.requirements)
        if not args.out.parent.is_dir():  # atomic_write_text would create it: a mistyped --out is refused
            raise OSError(f"{args.out.parent}: no such folder to write {args.out.name} in")
        if args.out.is_dir():  # the rename of atomic_write_text's temporary file would be the error
            raise OSError(f"--out {args.out}: a folder; give the lock file's path (e.g. {args.out / LOCK.name})")
        atomic_write_text(args.out, text)
    except (LockError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2  # as every entry point says a bad input or an unwritable place (and argparse a bad option)
    print(f"{args.out}: {sum(1 for line in text.splitlines() if not line.startswith('#'))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
