"""A Helm chart repository built from a directory of unpacked charts: packaged charts + index.yaml.

A sovereign site serves the charts it mirrored from its own repository; the lab does the same with
the real upstream charts (`../shared/charts` in CI). Charts are packaged as `helm package` does
(one top folder named after the chart, gzip) but reproducibly — sorted entries, fixed times — so
the same chart always has the same digest and a re-seed changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from lab.errors import LabInputError
from stacks.design.atomic import write_file

_EPOCH = 315532800  # 1980-01-01: zip/tar tools treat 0 as "no time"


@dataclass(frozen=True)
class PackagedChart:
    name: str
    version: str
    file: str  # relative to the repository root
    digest: str  # sha256 of the packaged file
    metadata: dict


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    return yaml


def chart_metadata(chart_dir: Path) -> dict:
    try:
        data = _yaml().load(chart_dir.joinpath("Chart.yaml").read_text())
    except (OSError, ValueError) as exc:
        raise LabInputError(f"{chart_dir / 'Chart.yaml'}: not a readable chart ({exc})") from None
    if not isinstance(data, dict) or not data.get("name") or not data.get("version"):
        raise LabInputError(f"{chart_dir / 'Chart.yaml'}: a chart needs `name` and `version`")
    return data


def find_charts(source: Path) -> list[Path]:
    """Top-level chart folders of a seed directory (subcharts travel inside their parent)."""
    if not source.is_dir():
        raise LabInputError(f"chart source {source} is not a directory")
    return sorted(p for p in source.iterdir() if (p / "Chart.yaml").is_file())


def package(chart_dir: Path) -> bytes:
    meta = chart_metadata(chart_dir)
    raw = io.BytesIO()
    with tarfile.TarFile(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:  # in memory
        for path in sorted(chart_dir.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue  # helm refuses links in a chart; so does the mirror
            rel = Path(meta["name"]) / path.relative_to(chart_dir)
            info = tar.gettarinfo(str(path), arcname=str(rel))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = _EPOCH
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=_EPOCH) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_repository(source: Path, dest: Path) -> list[PackagedChart]:
    """Package every chart of `source` into `dest` and write `dest/index.yaml` (last, atomically,
    so a reader never sees an index naming a package that is not there yet)."""
    dest.mkdir(parents=True, exist_ok=True)
    packaged = []
    for chart_dir in find_charts(source):
        meta = chart_metadata(chart_dir)
        data = package(chart_dir)
        file = f"{meta['name']}-{meta['version']}.tgz"
        target = dest / file
        if not target.is_file() or target.read_bytes() != data:
            write_file(target, data)
        packaged.append(PackagedChart(meta["name"], str(meta["version"]), file, hashlib.sha256(data).hexdigest(), meta))
    entries: dict[str, list[dict]] = {}
    for chart in packaged:
        entry = {k: v for k, v in chart.metadata.items() if k != "dependencies" or v}
        entry.update({"digest": chart.digest, "urls": [chart.file], "created": "1980-01-01T00:00:00Z"})
        entries.setdefault(chart.name, []).append(entry)
    buf = io.StringIO()
    _yaml().dump({"apiVersion": "v1", "entries": entries, "generated": "1980-01-01T00:00:00Z"}, buf)
    write_file(dest / "index.yaml", buf.getvalue())
    return packaged


def default_source() -> Path | None:
    """`$SOVEREIGN_CHARTS`, else the `shared/charts` folder next to the checkout (as CI has it)."""
    explicit = os.environ.get("SOVEREIGN_CHARTS")
    if explicit:
        return Path(explicit)
    candidate = Path(__file__).resolve().parents[2] / "shared" / "charts"
    return candidate if candidate.is_dir() else None
