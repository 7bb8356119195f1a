"""Training checkpoints: whole on disk, and pushed to a DVC remote as they are written.

A checkpoint folder is whole once its marker (``.complete``) is there: the Trainer writes the files,
then ``write_marker`` lists them with their sizes and renames the marker into place, so a crash leaves
a folder without one (removed at the next start) or a whole one, never a torn one that looks whole.

A Colab or Kaggle session ends without warning (idle timeout, 12-hour limit, a closed tab) and takes
its disk with it. With ``train.push_checkpoints.remote`` set, each whole checkpoint and DVCLive's
history go to the DVC remote as they are written, in a thread of their own (``Pusher``), while the
steps go on; a fresh runtime fetches the last whole one with ``gabarito checkpoints pull`` (``make
resume``) and ``dvc repro`` resumes from it. On the remote a run's checkpoints sit beside DVC's own
objects, under ``gabarito-checkpoints/<fingerprint>/checkpoint-<step>/`` (the same marker last), so a
run of other params or data never picks them up; DVC's ``files/`` area, which ``dvc gc -c`` cleans, is
not touched. Credentials are the remote's, as ``dvc push`` finds them (the environment,
``.dvc/config.local``): nothing here reads or prints one.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

from gabarito.clikit import log
from gabarito.io import redact_url, scrub_secrets
from gabarito.params import TrainParams

COMPLETE = ".complete"  # written into a checkpoint folder once the Trainer has finished saving it


def run_fingerprint(p: TrainParams, records: list[dict], eval_records: list[dict] | None, base: str | Path) -> str:
    """What a checkpoint can only be resumed with: the train params (but the process count, checked on
    its own, and where checkpoints are pushed, which trains nothing), the training and validation records and the base model's config. A run resumed with
    other ones would continue the old optimizer, schedule and data order under the new params' name."""
    import hashlib

    config = Path(base) / "config.json"
    blob = json.dumps({"params": p.model_dump(exclude={"launch", "push_checkpoints"}), "records": records, "eval": eval_records or [],
                       "base": config.read_text(encoding="utf-8") if config.exists() else str(base)},
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_marker(ckpt: Path, step: int, world_size: int, fingerprint: str | None) -> None:
    """Mark ``ckpt`` whole: its files (with their sizes, to tell a torn one later) are on disk first,
    then the marker, written to a temporary name and renamed, so a power cut leaves none or all of it."""
    files = {}
    for f in sorted(ckpt.rglob("*")):
        if f.is_file() and f.name != COMPLETE:
            _fsync(f)
            files[f.relative_to(ckpt).as_posix()] = f.stat().st_size
    for d in sorted({f.parent for f in ckpt.rglob("*")} | {ckpt}):
        _fsync(d)
    tmp = ckpt / f"{COMPLETE}.tmp"
    tmp.write_text(json.dumps({"step": step, "world_size": world_size, "fingerprint": fingerprint, "files": files},
                              sort_keys=True), encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, ckpt / COMPLETE)
    _fsync(ckpt)


def read_marker(ckpt: Path) -> dict | None:
    """The marker of ``ckpt``, or None when there is none or it is unreadable. Markers of earlier
    versions held "STEP [WORLD_SIZE]" only."""
    try:
        text = (ckpt / COMPLETE).read_text(encoding="utf-8")
    except OSError:
        return None
    if text.lstrip().startswith("{"):
        try:
            marker = json.loads(text)
        except json.JSONDecodeError:  # cut short: the rename should make this impossible, but be sure
            return None
        return marker if isinstance(marker, dict) and "step" in marker else None
    fields = text.split()
    if not fields or not all(f.isdigit() for f in fields[:2]):
        return None
    return {"step": int(fields[0]), "world_size": int(fields[1]) if len(fields) > 1 else 1}


def whole(ckpt: Path, marker: dict) -> bool:
    """Every file the marker lists is there, at its size (a rotation cut short, a torn write)."""
    return all((ckpt / name).is_file() and (ckpt / name).stat().st_size == size
               for name, size in (marker.get("files") or {}).items())


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was saved completely; half-written or broken ones are removed."""
    if not folder.is_dir():
        return None
    found = []
    for ckpt in folder.glob("checkpoint-*"):
        if not ckpt.name.split("-")[-1].isdigit():
            continue
        marker = read_marker(ckpt)
        if marker is not None and whole(ckpt, marker):
            found.append((int(ckpt.name.split("-")[-1]), ckpt))
        else:  # the power went while this one was written, or while an old one was being deleted
            shutil.rmtree(ckpt, ignore_errors=True)
    return max(found)[1] if found else None




def step_of(name: str) -> int | None:
    """N of a folder named checkpoint-N, else None."""
    head, _, tail = name.rpartition("-")
    return int(tail) if head == "checkpoint" and tail.isdigit() else None


# --- the remote ------------------------------------------------------------------------------------
PREFIX = "gabarito-checkpoints"  # beside DVC's files/ area on the remote, never inside it


class Remote:
    """One run's folder on a DVC remote: ``fs`` is the remote's filesystem as DVC opens it (local
    folder, S3, Google Drive...), ``folder`` is ``<remote>/gabarito-checkpoints/<fingerprint>``."""

    def __init__(self, fs, root: str, fingerprint: str, name: str = "remote"):
        self.fs, self.name = fs, name
        self.folder = fs.join(root, PREFIX, fingerprint)

    def path(self, *parts: str) -> str:
        return self.fs.join(self.folder, *parts)

    def checkpoints(self) -> list[tuple[int, bool]]:
        """(step, whole) of every checkpoint folder in the run's folder, oldest first."""
        if not self.fs.exists(self.folder):
            return []
        found = []
        for entry in self.fs.ls(self.folder, detail=False):
            step = step_of(entry.rstrip("/").rsplit("/", 1)[-1])
            if step is not None:
                found.append((step, self.fs.exists(self.path(f"checkpoint-{step}", COMPLETE))))
        return sorted(found)

    def put_folder(self, local: Path, name: str, *, last: str | None = None) -> None:
        """Upload every file of ``local`` into ``name``; the file named ``last`` after all the others."""
        files = sorted(f for f in local.rglob("*") if f.is_file())
        for f in sorted(files, key=lambda f: f.name == last):  # False first: the marker goes last
            target = self.path(name, *f.relative_to(local).parts)
            self.fs.makedirs(self.fs.parent(target), exist_ok=True)
            self.fs.put_file(str(f), target)

    def remove(self, step: int) -> None:
        """The marker first, so a removal cut short never leaves a folder that looks whole."""
        folder = self.path(f"checkpoint-{step}")
        if self.fs.exists(self.path(f"checkpoint-{step}", COMPLETE)):
            self.fs.rm(self.path(f"checkpoint-{step}", COMPLETE))
        self.fs.rm(folder, recursive=True)

    def prune(self, keep: int) -> list[int]:
        """Keep the ``keep`` newest whole checkpoints; remove the older ones and the broken ones below them
        (a push cut short by the end of a session). Returns the steps removed."""
        found = self.checkpoints()
        kept = [s for s, ok in found if ok][-keep:]
        gone = [s for s, _ in found if s not in kept and (not kept or s < kept[-1])]
        for step in gone:
            self.remove(step)
        return gone

    def pull_last(self, dest: Path) -> Path | None:
        """The newest whole checkpoint, downloaded into ``dest/checkpoint-N`` (through ``dest/.pull``, the
        marker checked against the files' sizes), or None when the remote has none."""
        for step, ok in reversed(self.checkpoints()):
            if not ok:
                continue
            tmp = dest / ".pull" / f"checkpoint-{step}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            prefix = self.path(f"checkpoint-{step}").rstrip("/") + "/"
            for remote_file in sorted(self.fs.find(prefix)):
                local = tmp / remote_file[len(prefix):]
                local.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(remote_file, str(local))
            marker = read_marker(tmp)
            if marker is None or not whole(tmp, marker):
                log(f"checkpoints: checkpoint-{step} on {self.name} is not whole; trying an older one")
                continue
            target = dest / f"checkpoint-{step}"
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
            shutil.rmtree(dest / ".pull", ignore_errors=True)
            return target
        shutil.rmtree(dest / ".pull", ignore_errors=True)
        return None


def open_remote(name: str, fingerprint: str, root: str | Path = ".") -> Remote:
    """The run's folder on the DVC remote ``name`` ("default": the repository's default remote), opened
    as ``dvc push`` opens it (.dvc/config, then .dvc/config.local and the environment for credentials).
    ValueError naming what to set when there is no such remote."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            remote = repo.cloud.get_remote(None if name == "default" else name)
    except DvcException as exc:  # no default remote, an unknown name, a plugin missing (dvc-s3, dvc-gdrive)
        raise ValueError(f"train.push_checkpoints.remote={name}: {exc}. Add one (`dvc remote add -d NAME URL`; "
                         "docs/remotes.md), or set it to null to push nothing.") from None
    url = redact_url(f"{remote.fs.protocol}://{remote.path}" if remote.fs.protocol != "local" else remote.path)
    return Remote(remote.fs, remote.path, fingerprint, name=f"remote '{remote.name}' ({url})")


# --- pushing while training ----------------------------------------------------------------------
def snapshot(src: Path, dst: Path) -> None:
    """A copy of ``src`` that stays as it is while training goes on: the Trainer deletes old checkpoints
    (save_total_limit) and DVCLive rewrites its files. Big files are hard links (torch writes a new file
    each time, never into an old one), so a 7B run's ~300 MB checkpoint costs no copy; small ones
    (JSON rewritten in place) are copied."""
    shutil.rmtree(dst, ignore_errors=True)
    for f in sorted(src.rglob("*")):
        if not f.is_file():
            continue
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if f.stat().st_size < 2**20:
                raise OSError("small: copied")
            os.link(f, target)
        except OSError:  # small, or another filesystem
            shutil.copy2(f, target)


class Pusher:
    """Pushes checkpoints to ``remote`` in a thread of its own, one at a time, while training goes on.

    ``submit`` (at each save) takes a snapshot and returns: the step does not wait for the network. A
    checkpoint still waiting when a newer one comes is dropped for it (only the last one is resumed).
    After each push the remote keeps the ``keep`` newest. A failed push (the network, credentials) is
    logged and the next checkpoint tried: a lost session costs more steps, a stopped run costs them all.
    ``close`` waits for the last one, which is how a SIGTERM's checkpoint reaches the remote before the
    process ends.
    """

    def __init__(self, remote: Remote, keep: int, staging: Path, live_dir: Path | None = None):
        self.remote, self.keep, self.staging, self.live_dir = remote, keep, staging, live_dir
        self.pushed: list[int] = []
        self.failed: list[int] = []
        self._pending: tuple[int, Path] | None = None
        self._closed = False
        self._cond = threading.Condition()
        shutil.rmtree(staging, ignore_errors=True)  # a killed run's snapshots
        self._thread = threading.Thread(target=self._loop, name="gabarito-push", daemon=True)
        self._thread.start()

    def submit(self, ckpt: Path, step: int) -> None:
        snap = self.staging / f"checkpoint-{step}"
        snapshot(ckpt, snap)
        if self.live_dir is not None and Path(self.live_dir).is_dir():
            snapshot(Path(self.live_dir), snap.with_name(snap.name + ".live"))
        with self._cond:
            if self._pending is not None:  # superseded before its turn
                self._drop(self._pending[1])
            self._pending = (step, snap)
            self._cond.notify_all()

    def _drop(self, snap: Path) -> None:
        shutil.rmtree(snap, ignore_errors=True)
        shutil.rmtree(snap.with_name(snap.name + ".live"), ignore_errors=True)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                (step, snap), self._pending = self._pending, None
            self._push(step, snap)

    def _push(self, step: int, snap: Path) -> None:
        started = time.monotonic()
        try:
            self.remote.put_folder(snap, snap.name, last=COMPLETE)
            live = snap.with_name(snap.name + ".live")
            if live.is_dir():
                self.remote.put_folder(live, "live")
            removed = self.remote.prune(self.keep)
            self.pushed.append(step)
            gone = f"; removed {', '.join(f'checkpoint-{s}' for s in removed)}" if removed else ""
            log(f"train: checkpoint-{step} pushed to {self.remote.name} in {time.monotonic() - started:.1f} s{gone}")
        except Exception as exc:  # noqa: BLE001 -- any failure of the remote: say it, train on
            self.failed.append(step)
            log(f"train: WARNING: pushing checkpoint-{step} to {self.remote.name} failed ({type(exc).__name__}: "
                f"{scrub_secrets(str(exc))[:300]}); training goes on, the next checkpoint is tried")
        finally:
            self._drop(snap)

    def close(self) -> None:
        """Wait until the last submitted checkpoint is pushed, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        shutil.rmtree(self.staging, ignore_errors=True)
