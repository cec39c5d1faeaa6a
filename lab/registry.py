"""Host-wide claims on lab names and subnets, kept in /run under one lock.

Bridges, routes and iptables rules are host-wide, while lab state directories are not (tests
point SOVEREIGN_STATE elsewhere). So two labs in two state roots still must not pick the same
subnet or the same node names: every lab claims its name and octet here before touching the
network, and releases them on `down`.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.paths import RUN_ROOT
from stacks.design import atomic


@dataclass(frozen=True)
class Claim:
    name: str
    lab_dir: str
    octet: int


class Registry:
    def __init__(self, root: Path = RUN_ROOT) -> None:
        self.root = root
        self._labs = root / "labs"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise subnet choice, network changes and ip_forward bookkeeping across processes."""
        self._labs.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.root / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def lab_lock(self, name: str) -> Iterator[None]:
        """One operation at a time on one lab. Kept here, not in the lab dir, which `down` deletes."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(locks / f"{name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def claims(self) -> list[Claim]:
        """Live claims; a claim whose lab directory is gone is stale and dropped."""
        found: list[Claim] = []
        for path in sorted(self._labs.glob("*.json")) if self._labs.is_dir() else []:
            try:
                claim = Claim(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if Path(claim.lab_dir).is_dir():
                found.append(claim)
            else:
                path.unlink(missing_ok=True)
        return found

    def get(self, name: str) -> Claim | None:
        return next((c for c in self.claims() if c.name == name), None)

    def put(self, claim: Claim) -> None:
        self._labs.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic.write_file(self._labs / f"{claim.name}.json", json.dumps(asdict(claim)))

    def release(self, name: str) -> None:
        (self._labs / f"{name}.json").unlink(missing_ok=True)

    # ip_forward is host-wide: the first lab saves the original value, the last one restores it.
    @property
    def forward_file(self) -> Path:
        return self.root / "ip_forward.orig"
