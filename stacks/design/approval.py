"""Plan approval: a digest over canonical content, ed25519 signatures, and the check `up` runs.

The digest covers the *validated* partnership and the design derived from it, serialised
canonically — never file bytes: Pulumi rewrites the
stack file (it adds `encryptionsalt`, writes `129.0` as `129`) and that must not void an approval.
The stack name is part of the document, so an approval of `ke-staging` cannot be replayed on
`ke-prod`, and the digest is inside every signed message, so an old approval cannot be replayed
on a new plan.

Files in an approvals folder (one per stack, committed beside the stack config):
  <digest>.plan.json         the canonical document that was approved (for "what changed")
  <digest>.<signer>.sig      one detached signature per reviewer: JSON naming key and time
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stacks.design import atomic
from stacks.design.partnership import Partnership
from stacks.design.plan_diff import Change, plan_changes
from stacks.design.project import current_project_or_none
from stacks.design.signing import UnusableKey, fingerprint, load_private_key, parse_public_key, sign, verify
from stacks.design.sizing import PartnershipDesign
from stacks.design.summary import plan_summary

FORMAT = 1
_CONTEXT = b"sovereign plan approval v1\n"  # domain separation: these bytes sign nothing else
LAB_OR_STAGING = ("lab", "staging")


class ApprovalError(ValueError):
    """The plan may not be applied; the message says why and what changed since the last approval."""


def approvals_dir(stack: str) -> Path:
    project = current_project_or_none()
    default = (project.root if project else Path.cwd()) / "approvals"
    root = Path(os.environ.get("SOVEREIGN_APPROVALS_DIR") or default)
    return root / stack


def is_lab_or_staging(stack: str) -> bool:
    """`ke-staging`, `tl-lab`: the environments where `--allow-unapproved` may be used."""
    return stack.rsplit("-", 1)[-1] in LAB_OR_STAGING


# --- canonical document and digest ------------------------------------------------------


def plan_document(stack: str, partnership: Partnership, design: PartnershipDesign) -> dict[str, Any]:
    # The engine's preview is left out on purpose: it moves with the state (a refresh, someone
    # else's edit in the cluster), and an approval must not lapse when nothing reviewed changed.
    # The report records the preview it showed by its own hash (stacks.design.preview).
    return _canonical({
        "format": FORMAT,
        "stack": stack,
        "partnership": partnership.model_dump(mode="json"),
        "design": plan_summary(partnership, design),
        # Always null: the key stays so that approvals signed before the preview was left out
        # still match their digest.
        "preview": None,
    })


def canonical_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(_canonical(document))).hexdigest()


def _canonical(value: Any) -> Any:
    # One spelling per number: 129.0 and 129 are the same figure to a reviewer, and float noise
    # beyond nine significant decimals is not a change anyone approved or refused.
    if isinstance(value, float):
        rounded = round(value, 9)
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


# --- signing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    stack: str
    digest: str
    name: str
    kind: str
    fingerprint: str
    signed_at: str
    signature: str

    def message(self) -> bytes:
        fields = {"stack": self.stack, "digest": self.digest, "kind": self.kind,
                  "fingerprint": self.fingerprint, "signed_at": self.signed_at}
        return _CONTEXT + canonical_bytes(fields)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "stack": self.stack, "digest": self.digest,
                "signer": {"name": self.name, "kind": self.kind, "fingerprint": self.fingerprint},
                "signed_at": self.signed_at, "signature": self.signature}


def approve(document: dict[str, Any], partnership: Partnership, key_file: Path, folder: Path,
            now: datetime | None = None) -> tuple[Signature, Path]:
    """Sign the document's digest with a reviewer's key; write the document and the signature."""
    key = load_private_key(key_file)
    fp = fingerprint(key.public_key())
    reviewer = next((r for r in _reviewers(partnership) if fingerprint(parse_public_key(r.public_key)) == fp), None)
    if reviewer is None:
        raise UnusableKey(f"{key_file}: key {fp} is not one of the reviewers the partnership lists "
                        "(approval.reviewers)")
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = digest(document)
    unsigned = Signature(document["stack"], value, reviewer.name, reviewer.kind.value, fp, when, "")
    signed = Signature(**{**_fields(unsigned), "signature": sign(key, unsigned.message())})
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_file(folder / f"{value}.plan.json", json.dumps(document, indent=2, sort_keys=True) + "\n")
    path = folder / f"{value}.{_slug(fp)}.sig"
    atomic.write_file(path, json.dumps(signed.to_dict(), indent=2) + "\n")
    return signed, path


def _fields(sig: Signature) -> dict[str, Any]:
    return {f: getattr(sig, f) for f in Signature.__slots__}


def _slug(fp: str) -> str:
    return fp.removeprefix("SHA256:").replace("/", "_").replace("+", "-")


def _reviewers(partnership: Partnership) -> list:
    return list(partnership.approval.reviewers) if partnership.approval else []


# --- checking ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    valid: list[Signature]
    rejected: list[str]  # "<file>: why", for signatures that claim this digest but do not count
    missing: list[str]  # required party kinds without a valid signature


def check(document: dict[str, Any], partnership: Partnership, folder: Path) -> Check:
    """Which signatures in `folder` validly approve this document, and which parties are missing."""
    value = digest(document)
    reviewers = {fingerprint(parse_public_key(r.public_key)): r for r in _reviewers(partnership)}
    valid: list[Signature] = []
    rejected: list[str] = []
    for path in sorted(folder.glob(f"{value}.*.sig")) if folder.is_dir() else []:
        sig, why = _read_signature(path)
        if sig is None:
            rejected.append(f"{path.name}: {why}")
            continue
        reviewer = reviewers.get(sig.fingerprint)
        if sig.stack != document["stack"] or sig.digest != value:
            rejected.append(f"{path.name}: signs stack {sig.stack} plan {sig.digest[:12]}, not {document['stack']} "
                            f"plan {value[:12]} (a replayed approval)")
        elif reviewer is None:
            rejected.append(f"{path.name}: key {sig.fingerprint} is not a reviewer the partnership lists")
        elif reviewer.kind.value != sig.kind:
            rejected.append(f"{path.name}: key {sig.fingerprint} signs for {reviewer.kind.value}, not {sig.kind}")
        elif not verify(parse_public_key(reviewer.public_key), sig.message(), sig.signature):
            rejected.append(f"{path.name}: the signature does not verify (altered or truncated)")
        else:
            valid.append(sig)
    required = [k.value for k in partnership.approval.required] if partnership.approval else []
    missing = [k for k in required if not any(s.kind == k for s in valid)]
    return Check(valid, rejected, missing)


def _read_signature(path: Path) -> tuple[Signature | None, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        signer = raw["signer"]
        sig = Signature(str(raw["stack"]), str(raw["digest"]), str(signer["name"]), str(signer["kind"]),
                        str(signer["fingerprint"]), str(raw["signed_at"]), str(raw["signature"]))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return None, f"not a readable signature file ({type(exc).__name__}: {exc})"
    return sig, ""


def last_approved(folder: Path, stack: str, exclude: str = "") -> tuple[dict[str, Any], Check] | None:
    """The most recently signed document in `folder` that its own reviewers fully approved."""
    best: tuple[str, dict[str, Any], Check] | None = None
    for path in folder.glob("*.plan.json") if folder.is_dir() else []:
        name = path.name.removesuffix(".plan.json")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            partnership = Partnership.model_validate(document["partnership"])
            if name == exclude or document["stack"] != stack or digest(document) != name:
                continue  # another stack's, or edited after it was approved
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable, or written by a schema this version no longer reads
        result = check(document, partnership, folder)
        if result.valid and not result.missing:
            when = max(s.signed_at for s in result.valid)
            if best is None or when > best[0]:
                best = (when, document, result)
    return None if best is None else (best[1], best[2])


def require_approval(
    document: dict[str, Any],
    partnership: Partnership,
    folder: Path,
    *,
    allow_unapproved: bool,
    stack_is_lab_or_staging: bool,
) -> dict[str, Any]:
    """Raise ApprovalError unless the document is approved; return what to record in the outputs.

    `document` is `plan_document(stack, partnership, design)` for what is about to be
    applied. `--allow-unapproved` is honoured only on lab and staging stacks, and recorded.
    """
    stack, value = document["stack"], digest(document)
    if allow_unapproved and not stack_is_lab_or_staging:
        raise ApprovalError(f"stack {stack}: --allow-unapproved is only for lab and staging stacks")
    result = check(document, partnership, folder)
    record = {
        "digest": value,
        "approved": not result.missing and partnership.approval is not None,
        "approvals": [{"name": s.name, "kind": s.kind, "fingerprint": s.fingerprint, "signed_at": s.signed_at}
                      for s in result.valid],
        "allow_unapproved": False,
    }
    if record["approved"]:
        return record
    if allow_unapproved:
        return {**record, "allow_unapproved": True, "missing": result.missing}
    raise ApprovalError(_refusal(stack, value, partnership, result, folder, document))


def _refusal(stack: str, value: str, partnership: Partnership, result: Check, folder: Path,
             document: dict[str, Any]) -> str:
    if partnership.approval is None:
        head = f"stack {stack}: plan {value[:12]} cannot be approved: the partnership lists no reviewers (approval.reviewers)"
    else:
        head = (f"stack {stack}: plan {value[:12]} is not approved: no valid signature from "
                f"{', '.join(result.missing)} in {folder}")
    lines = [head, *(f"  refused {why}" for why in result.rejected)]
    previous = last_approved(folder, stack, exclude=value)
    if previous is None:
        lines.append("  no earlier plan of this stack was approved")
    else:
        old, old_check = previous
        signers = ", ".join(f"{s.kind} {s.signed_at}" for s in old_check.valid)
        changes: list[Change] = plan_changes(old, document)
        lines.append(f"  changed since the last approved plan {digest(old)[:12]} ({signers}):")
        lines += [f"    - {c.describe()}" for c in changes[:40]]
        if len(changes) > 40:
            lines.append(f"    … and {len(changes) - 40} more")
    lines.append(f"  review it (sovereign report {stack} --since …) and sign it: sovereign approve {stack} --key KEY")
    return "\n".join(lines)


def check_before_apply(stack: str, partnership: Partnership, design: PartnershipDesign, *,
                       allow_unapproved: bool = False, folder: Path | None = None) -> dict[str, Any]:
    """What `sovereign up` calls before applying: the stack's approvals folder and environment rule."""
    document = plan_document(stack, partnership, design)
    return require_approval(document, partnership, folder or approvals_dir(stack),
                            allow_unapproved=allow_unapproved, stack_is_lab_or_staging=is_lab_or_staging(stack))
