"""Atomic file writes: a reader (or a crashed run) never sees a half-written result."""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import resource
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from src.utils.errors import AutoAttendError


@contextmanager
def atomic_target(path: str | Path, prefix: str | None = None) -> Iterator[Path]:
    """A temporary path in ``path``'s folder to write; renamed to ``path`` when the block ends, removed
    if it raises. The file gets an ordinary new file's mode (``mkstemp`` would make it private).
    ``prefix``: the temporary's name before its random part (default ``.<name>.``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        # before the temporary's space is freed
        full = isinstance(exc, RuntimeError) and _nearly_full(path.parent)
        too_large = isinstance(exc, RuntimeError) and _at_file_size_limit(Path(tmp))
        Path(tmp).unlink(missing_ok=True)
        # a full disk as an OSError naming the file (src.utils.errors.machine_error says it in one line): a write's
        # flush at close raises one without a file name, and torch.save a RuntimeError ("unexpected pos ..."), also
        # for a write past the file-size limit (EFBIG)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        if full or too_large:
            code = errno.ENOSPC if full else errno.EFBIG
            raise OSError(code, os.strerror(code), str(path)) from exc
        raise


def _at_file_size_limit(path: Path) -> bool:
    """Whether the file at ``path`` has reached the process's file-size limit (``ulimit -f``; within a page)."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    try:
        return limit != resource.RLIM_INFINITY and path.stat().st_size >= limit - 4096
    except OSError:
        return False


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has under 1 MiB left for this user."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 2 ** 20


def _umask() -> int:
    """The process's umask, read without changing it where Linux reports it (setting and restoring
    it would briefly affect files other threads create)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_target(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """``data`` as JSON (:func:`atomic_write_text`); a NaN or infinity in it is a ValueError, not a bare ``NaN``
    token that strict JSON readers refuse (a record of NaN is a bug upstream: see ``check_finite_loss``)."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


RECOMPUTE = "restore it, or delete it and re-run the run's command (with the settings that made it) to compute it again"
SEED_RESULT_KEYS = ("step", "val_acc", "test_acc")


def is_number(value: Any) -> bool:
    """A number as a run's records hold one: an int or a float, not a bool (``true`` is an int to
    Python) nor a quoted number (``"0.7"`` passes ``float()``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_record(path: str | Path, what: str, key: str | None = None, needs: tuple[str, ...] = (),
                numbers: tuple[str, ...] = (), remedy: str = RECOMPUTE) -> Any:
    """A stage's JSON record (``path[key]`` with ``key``), or one error line naming the file: a damaged one
    (a full disk, a copy cut short) ended a resume in a JSONDecodeError or KeyError traceback. ``what``
    says what the file holds, for that line; ``needs``: keys the record (a JSON object) must hold;
    ``numbers``: keys it must hold as numbers (:func:`is_number`); ``remedy``: what the line tells the user to do."""
    try:
        value = json.loads(Path(path).read_text())
        if (needs or numbers) and not (isinstance(value, dict) and all(k in value for k in needs)
                                       and all(is_number(value.get(k)) for k in numbers)):
            raise KeyError(needs)
        return value if key is None else value[key]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise AutoAttendError(f"{path}: unreadable (expected {what}); {remedy}") from None


def read_seed_record(path: str | Path) -> dict:
    """A finished retrain seed's ``seed_<s>.json`` (its selected step, validation and test score, numbers as
    written: a quoted ``"0.7"`` failed the summary's mean and the table's format), or one error line naming it.
    Read so by the retrain stages when they resume and by ``src.evaluate`` / ``src.predict``."""
    return read_record(path, "the seed's result: " + ", ".join(SEED_RESULT_KEYS), numbers=SEED_RESULT_KEYS,
                       remedy="restore it, or delete it and re-run the run's command to train that seed again")


def remove_left_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary files :func:`atomic_target` left beside ``path`` (``.<name>.<random>``) when a
    process was killed while writing it (SIGKILL, the OOM killer: no ``except`` runs); a stage calls it
    where it alone writes ``path`` (its run folder's lock held). For a checkpoint of the paper supernet
    each is as large as the checkpoint. Returns those removed."""
    path = Path(path)
    left = sorted(path.parent.glob(f".{path.name}.*")) if path.parent.is_dir() else []
    for tmp in left:
        tmp.unlink(missing_ok=True)
    return left


BUILD_PREFIX = ".building-"  # a cache's temporary build folder: .building-<pid>.<machine>-<what>-<random>
# a build of another machine or PID namespace (a cache shared between them), whose process cannot be
# looked up from here, is removed once it is this old (a cache build takes seconds to minutes)
FOREIGN_BUILD_MAX_AGE_S = 24 * 3600


@functools.lru_cache(maxsize=1)
def machine_tag() -> str:
    """8 hex digits naming this machine and PID namespace (its host name and ``/proc/self/ns/pid``):
    what tells the build folders of this namespace's processes, which :func:`pid_alive` can look up,
    from those of another machine or container sharing the cache."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}|{namespace}".encode()).hexdigest()[:8]


def build_prefix(what: str) -> str:
    """The name prefix of this process's temporary build of ``what`` (:data:`BUILD_PREFIX`, its PID and
    :func:`machine_tag`), which :func:`remove_stale_builds` reads back."""
    return f"{BUILD_PREFIX}{os.getpid()}.{machine_tag()}-{what}-"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs in this PID namespace (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_builds(folder: Path, now: float | None = None) -> None:
    """Delete the temporary build folders and files (:data:`BUILD_PREFIX`) in ``folder`` whose process is
    gone (a killed run); those of running processes are theirs. A build of another machine or PID
    namespace (another :func:`machine_tag`) is removed only once it is :data:`FOREIGN_BUILD_MAX_AGE_S`
    old: its PID says nothing here (the build of a run in another container was deleted under it).
    A name without a tag (written before the tags) counts as this namespace's."""
    now = time.time() if now is None else now
    for tmp in folder.glob(BUILD_PREFIX + "*"):
        pid, _, tag = tmp.name[len(BUILD_PREFIX):].split("-", 1)[0].partition(".")
        if not pid.isdigit():
            continue
        if tag and tag != machine_tag():
            try:
                stale = now - tmp.lstat().st_mtime > FOREIGN_BUILD_MAX_AGE_S
            except OSError:
                continue
        else:
            stale = not pid_alive(int(pid))
        if stale:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


def refused_by_weights_only(exc: BaseException) -> bool:
    """Whether ``torch.load(weights_only=True)`` raised ``exc`` for a file holding objects other than tensors and
    plain values (a pickle whose rebuilding could run code), rather than for a damaged file."""
    import pickle

    return isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in str(exc)


def file_stamp(path: str | Path) -> dict[str, int]:
    """What keys a cache built from the file at ``path``: its size and its modification and change
    times. The change time too, because ``cp -p``, ``rsync -a``, ``tar x`` and ``touch -r`` carry a
    modification time over (a label fixed in place, same size, kept the stale cache) while the
    change time can only move forward."""
    status = Path(path).stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "ctime_ns": status.st_ctime_ns}


def _stamped_files(record: Any) -> Iterator[dict]:
    """The file identities (``{"path": ..., **file_stamp}``) anywhere in a cache key or source record."""
    if isinstance(record, dict):
        if isinstance(record.get("path"), str) and "ctime_ns" in record:
            yield record
        for value in record.values():
            yield from _stamped_files(value)
    elif isinstance(record, (list, tuple)):
        for value in record:
            yield from _stamped_files(value)


def sources_changed(record: Any) -> bool:
    """Whether a file a cache entry was built from (its key or source ``record`` names it with its
    :func:`file_stamp`) now exists with another stamp. Such an entry can never be read again: the change
    time only moves forward. A file that cannot be read now (gone, a disk not mounted) decides nothing,
    since it may come back as it was."""
    for identity in _stamped_files(record):
        try:
            now = file_stamp(identity["path"])
        except OSError:
            continue
        if any(identity.get(field) != value for field, value in now.items()):
            return True
    return False


def source_record(files: list[Path]) -> dict:
    """The identity of the files a cache folder is built from, for :func:`sources_changed` (paths resolved)."""
    return {"files": [{"path": str(Path(f).resolve()), **file_stamp(f)} for f in files]}


SOURCES_FILE = "sources.json"  # in a cache folder keyed by its source files' stamps: which files, which stamps


def remove_superseded_folders(parent: Path, keep: Path, pattern: str = "*", record: str = SOURCES_FILE) -> list[Path]:
    """Delete the cache folders in ``parent`` matching ``pattern`` (but ``keep``) whose JSON ``record`` file
    names a source file changed since (:func:`sources_changed`): each was a full copy of data no setting can
    read again. A folder whose record names no file (a download, a hub dataset) or that has none (written
    before the record existed) is kept. Each goes in one step (renamed to this process's build name, then
    deleted), so no run finds it half-deleted. Returns those deleted."""
    removed = []
    for folder in sorted(parent.glob(pattern)) if parent.is_dir() else ():
        if folder == keep or folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            sources = json.loads((folder / record).read_text())
        except (OSError, ValueError):
            continue
        if not sources_changed(sources):
            continue
        doomed = parent / (build_prefix(folder.name) + "superseded")
        try:
            os.rename(folder, doomed)
        except OSError:  # another run removed it first
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(folder)
    return removed


def remove_superseded_files(folder: Path, pattern: str, keep: Path) -> list[Path]:
    """Delete the cache files in ``folder`` matching ``pattern`` (but ``keep``): ``torch.save``'d dicts whose
    ``key`` names a source file changed since (:func:`sources_changed`). An unreadable file, or one of another
    layout, is kept (a rebuild of its settings replaces it). Returns those deleted."""
    import torch

    removed = []
    for entry in sorted(folder.glob(pattern)):
        if entry == keep or entry.name.startswith("."):
            continue
        try:  # the key alone: the tensors are mapped, not read
            key = torch.load(entry, weights_only=True, mmap=True).get("key")
        except Exception:
            continue
        if sources_changed(key):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


MAX_YAML_VALUES = 100_000  # a run's config has some 500, an architecture file under 100


def check_yaml_size(text: str) -> None:
    """Refuse YAML whose aliases expand past :data:`MAX_YAML_VALUES` values (an "alias bomb": a few hundred
    bytes naming billions of strings, which a loader builds one by one) before a loader expands them: counted on
    the composed nodes, where each alias is one shared node. YAML that does not parse is left to the loader."""
    import yaml

    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return
    sizes: dict[int, int] = {}

    def size(node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 0  # a recursive alias counts once
            if isinstance(node, yaml.SequenceNode):
                sizes[id(node)] = 1 + sum(size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                sizes[id(node)] = 1 + sum(size(k) + size(v) for k, v in node.value)
            else:
                sizes[id(node)] = 1
        return sizes[id(node)]

    if root is not None and size(root) > MAX_YAML_VALUES:
        raise yaml.YAMLError(f"its aliases (*name) expand to over {MAX_YAML_VALUES:,} values, where this project's "
                             "files hold a few hundred (a crafted file?)")


def load_config(path: Path):
    """``OmegaConf.load`` of the YAML file ``path`` after :func:`check_yaml_size`, from one read of it (a file
    replaced between a check and a second read was loaded unchecked). Raises what they raise."""
    from omegaconf import OmegaConf

    text = Path(path).read_text(encoding="utf-8")
    check_yaml_size(text)
    return OmegaConf.create(text)


def safe_yaml(text: str, fast: bool = False) -> Any:
    """``yaml.safe_load`` of ``text`` after :func:`check_yaml_size`; ``fast``: with the C loader where there is
    one (its errors name other lines than the Python loader's, which users' files are read with)."""
    import yaml

    check_yaml_size(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader)
