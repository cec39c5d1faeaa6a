"""Plan approval: canonical digest, signatures, and the refusals `up` relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacks.design.approval import (
    ApprovalError,
    approve,
    check,
    digest,
    is_lab_or_staging,
    plan_document,
    require_approval,
)
from stacks.design.loader import InputError, load_and_design, validate_mapping
from stacks.design.signing import public_line


def _key(folder: Path, name: str) -> tuple[Path, str]:
    key = Ed25519PrivateKey.generate()
    path = folder / name
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    return path, public_line(key.public_key()) + f" {name}"


@pytest.fixture
def keys(tmp_path):
    return {name: _key(tmp_path, name) for name in ("gov", "partner", "stranger")}


@pytest.fixture
def reviewed(partnership_dict, keys):
    partnership_dict["approval"] = {
        "reviewers": [
            {"name": "Permanent Secretary", "kind": "government", "public_key": keys["gov"][1]},
            {"name": "Partner CTO", "kind": "partner", "public_key": keys["partner"][1]},
        ],
    }
    return partnership_dict


def _doc(data: dict, stack: str = "tl-prod"):
    partnership = validate_mapping(data, "test")
    from stacks.design.sizing import design

    return plan_document(stack, partnership, design(partnership)), partnership


def _require(data, folder, stack="tl-prod", allow=False):
    document, partnership = _doc(data, stack)
    return require_approval(document, partnership, folder, allow_unapproved=allow,
                            stack_is_lab_or_staging=is_lab_or_staging(stack))


def _approve_all(data, keys, folder, stack="tl-prod"):
    document, partnership = _doc(data, stack)
    for who in ("gov", "partner"):
        approve(document, partnership, keys[who][0], folder)
    return digest(document)


def test_digest_ignores_file_bytes_pulumi_rewrites(reviewed, write_stack):
    text = yaml.safe_dump({"config": {"sovereign:partnership": reviewed}}, sort_keys=False)
    first = write_stack(reviewed, "Pulumi.tl-prod.yaml", raw=text)
    p1, d1 = load_and_design(first)
    # What `pulumi config set` leaves behind: an encryptionsalt, 129.0 written as 129, keys reordered.
    rewritten = dict(reviewed, usd_rate=129)
    rewritten = {k: rewritten[k] for k in sorted(rewritten)}
    text2 = "encryptionsalt: v1:abc:def\n" + yaml.safe_dump({"config": {"sovereign:partnership": rewritten}})
    assert "usd_rate: 129\n" in text2
    second = write_stack(reviewed, "Pulumi.tl-prod2.yaml", raw=text2)
    p2, d2 = load_and_design(second)
    assert digest(plan_document("tl-prod", p1, d1)) == digest(plan_document("tl-prod", p2, d2))


def test_digest_binds_the_stack_and_the_content(reviewed):
    a, _ = _doc(reviewed, "tl-prod")
    b, _ = _doc(reviewed, "tl-staging")
    changed = dict(reviewed, usd_rate=130.0)
    c, _ = _doc(changed, "tl-prod")
    assert len({digest(a), digest(b), digest(c)}) == 3


def test_both_parties_approve_then_up_may_apply(reviewed, keys, tmp_path):
    folder = tmp_path / "approvals"
    value = _approve_all(reviewed, keys, folder)
    record = _require(reviewed, folder)
    assert record["approved"] is True and record["digest"] == value
    assert sorted(a["kind"] for a in record["approvals"]) == ["government", "partner"]
    assert record["allow_unapproved"] is False


def test_one_party_is_not_enough(reviewed, keys, tmp_path):
    folder = tmp_path / "approvals"
    document, partnership = _doc(reviewed)
    approve(document, partnership, keys["gov"][0], folder)
    with pytest.raises(ApprovalError, match=r"no valid signature from partner"):
        _require(reviewed, folder)


def test_changed_partnership_is_refused_naming_the_change(reviewed, keys, tmp_path):
    folder = tmp_path / "approvals"
    _approve_all(reviewed, keys, folder)
    grown = json.loads(json.dumps(reviewed))
    grown["sites"][0]["capacity"]["gpus"] = 2048
    with pytest.raises(ApprovalError) as err:
        _require(grown, folder)
    message = str(err.value)
    assert "changed since the last approved plan" in message
    assert "total new_gpus: 1,024 → 2,048" in message
    assert "sites[0].capacity.gpus: 1,024 → 2,048" in message


def test_signature_from_an_unlisted_key_is_refused(reviewed, keys, tmp_path):
    folder = tmp_path / "approvals"
    document, partnership = _doc(reviewed)
    with pytest.raises(ValueError, match="not one of the reviewers"):
        approve(document, partnership, keys["stranger"][0], folder)
    # A stranger who forges the file by hand, claiming to be the government, is refused too.
    approve(document, partnership, keys["gov"][0], folder)
    approve(document, partnership, keys["partner"][0], folder)
    sig = next(folder.glob("*.sig"))
    forged = json.loads(sig.read_text())
    from stacks.design.signing import fingerprint, load_private_key, sign

    stranger = load_private_key(keys["stranger"][0])
    for other in folder.glob("*.sig"):
        other.unlink()
    forged["signer"]["fingerprint"] = fingerprint(stranger.public_key())
    forged["signature"] = sign(stranger, b"anything")
    (folder / f"{forged['digest']}.stranger.sig").write_text(json.dumps(forged))
    with pytest.raises(ApprovalError, match=r"is not a reviewer the partnership lists"):
        _require(reviewed, folder)


def test_truncated_signature_is_refused(reviewed, keys, tmp_path):
    folder = tmp_path / "approvals"
    _approve_all(reviewed, keys, folder)
    sig = sorted(folder.glob("*.sig"))[0]
    data = json.loads(sig.read_text())
    data["signature"] = data["signature"][:40]
    sig.write_text(json.dumps(data))
    with pytest.raises(ApprovalError, match=r"does not verify \(altered or truncated\)"):
        _require(reviewed, folder)
    sig.write_text(sig.read_text()[:50])  # a truncated file, not just a truncated field
    with pytest.raises(ApprovalError, match="not a readable signature file"):
        _require(reviewed, folder)


def test_replayed_approval_of_an_older_digest_is_refused(reviewed, keys, tmp_path):
    folder = tmp_path / "approvals"
    old = _approve_all(reviewed, keys, folder)
    grown = json.loads(json.dumps(reviewed))
    grown["sites"][0]["capacity"]["gpus"] = 2048
    new_doc, _ = _doc(grown)
    new = digest(new_doc)
    # Copy the old approvals under the new digest's name, even rewriting the digest field.
    for sig in list(folder.glob(f"{old}.*.sig")):
        data = json.loads(sig.read_text())
        (folder / sig.name.replace(old, new)).write_text(json.dumps(data))
    with pytest.raises(ApprovalError, match=r"a replayed approval"):
        _require(grown, folder)
    for sig in folder.glob(f"{new}.*.sig"):
        data = json.loads(sig.read_text())
        data["digest"] = new
        sig.write_text(json.dumps(data))
    with pytest.raises(ApprovalError, match=r"does not verify"):
        _require(grown, folder)


def test_approval_of_another_stack_is_not_replayable(reviewed, keys, tmp_path):
    folder = tmp_path / "approvals"
    _approve_all(reviewed, keys, folder, stack="tl-staging")
    with pytest.raises(ApprovalError, match="not approved"):
        _require(reviewed, folder, stack="tl-prod")


def test_allow_unapproved_only_on_lab_or_staging_and_recorded(reviewed, tmp_path):
    record = _require(reviewed, tmp_path, stack="tl-staging", allow=True)
    assert record["approved"] is False and record["allow_unapproved"] is True
    assert record["missing"] == ["government", "partner"]
    with pytest.raises(ApprovalError, match="only for lab and staging"):
        _require(reviewed, tmp_path, stack="tl-prod", allow=True)


def test_partnership_without_reviewers_cannot_be_applied(partnership_dict, tmp_path):
    with pytest.raises(ApprovalError, match=r"lists no reviewers \(approval.reviewers\)"):
        _require(partnership_dict, tmp_path)


def test_reviewer_keys_are_validated(reviewed):
    reviewed["approval"]["reviewers"][0]["public_key"] = "ssh-rsa AAAAB3NzaC1yc2E nope"
    with pytest.raises(InputError) as err:
        validate_mapping(reviewed, "test.yaml")
    assert err.value.problems[0].field == "approval.reviewers[0].public_key"
    reviewed["approval"]["reviewers"] = reviewed["approval"]["reviewers"][1:]
    with pytest.raises(InputError, match="government has no reviewer"):
        validate_mapping(reviewed, "test.yaml")


def test_check_lists_valid_signatures(reviewed, keys, tmp_path):
    document, partnership = _doc(reviewed)
    approve(document, partnership, keys["partner"][0], tmp_path)
    result = check(document, partnership, tmp_path)
    assert [s.kind for s in result.valid] == ["partner"] and result.missing == ["government"]


def test_check_before_apply_uses_the_stacks_folder(reviewed, keys, tmp_path, monkeypatch):
    from stacks.design.approval import approvals_dir, check_before_apply
    from stacks.design.sizing import design

    monkeypatch.setenv("SOVEREIGN_APPROVALS_DIR", str(tmp_path))
    partnership = validate_mapping(reviewed, "test")
    with pytest.raises(ApprovalError, match="no earlier plan of this stack was approved"):
        check_before_apply("tl-prod", partnership, design(partnership))
    _approve_all(reviewed, keys, approvals_dir("tl-prod"))
    assert check_before_apply("tl-prod", partnership, design(partnership))["approved"] is True
    assert check_before_apply("tl-lab", partnership, design(partnership), allow_unapproved=True)["allow_unapproved"]



_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(junk=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                      _JSON.map(lambda v: json.dumps(v).encode())))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_signature_or_plan_file_is_refused_without_a_traceback(reviewed, tmp_path, junk):
    document, partnership = _doc(reviewed)
    folder = tmp_path / "junk"
    folder.mkdir(exist_ok=True)
    value = digest(document)
    (folder / f"{value}.junk.sig").write_bytes(junk)
    (folder / f"{'0' * 64}.plan.json").write_bytes(junk)
    with pytest.raises(ApprovalError, match="not approved"):
        require_approval(document, partnership, folder, allow_unapproved=False, stack_is_lab_or_staging=False)


def test_fingerprint_is_the_one_ssh_keygen_prints():
    from stacks.design.signing import fingerprint, parse_public_key

    # Known answer: `ssh-keygen -lf` on this key printed SHA256:uP2/o8Q8RDudTd3w5pTu/pGeVqB7JN0L2gFCAxuBkyU.
    key = parse_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKD32izXp04/EEkMiJNCtX13kczQwyAHBygT/bZJ1t66 rev@example")
    assert fingerprint(key) == "SHA256:uP2/o8Q8RDudTd3w5pTu/pGeVqB7JN0L2gFCAxuBkyU"
