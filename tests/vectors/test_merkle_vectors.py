"""Golden Merkle vectors: the RFC 6962 leaf set, the RFC's 7-leaf example, our 1000-entry vector,
and the transparency-dev/merkle conformance suite (reference/ledger.md §1.6).

The suite is read at test time from `<repo>/../shared/vectors/merkle` and never copied into the
project. Set DETENTE_VECTORS to the directory that holds `merkle/` to read it from elsewhere.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from detente.core.merkle import EMPTY_ROOT, leaf_hash, node_hash, prove_consistency, prove_inclusion, tree_hash
from detente.core.merkle_memory import MemoryHashStore
from detente.core.merkle_verify import verify_consistency, verify_inclusion
from detente.errors import VerificationError


def _vectors_dir() -> Path:
    override = os.environ.get("DETENTE_VECTORS")
    if override:
        return Path(override) / "merkle"
    # parents[2] is the repository root (/work/main); the shared vectors sit beside it.
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "merkle"


VECTORS = _vectors_dir()


def _cases(kind: str) -> list[str]:
    root = VECTORS / kind
    if not root.is_dir():
        return []
    return sorted(p.relative_to(VECTORS).as_posix() for p in root.rglob("*.json"))


INCLUSION_CASES = _cases("inclusion")
CONSISTENCY_CASES = _cases("consistency")

# Cases where our verdict differs from the suite's `wantErr`, each with its justification.
DIVERGENCES = {
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": (
        "its roots are 12-byte dummies ('don't care 2'); transparency-dev/merkle only compares them "
        "when the sizes are equal, we reject every hash that is not 32 bytes (ledger.md §1.6)"
    ),
}

# Cases where we agree with `wantErr` but for another reason than transparency-dev/merkle, which
# rejects every proof from size 0; we follow C2SP tlog-witness (empty proof, old root SHA-256("")).
SAME_VERDICT_OTHER_REASON = {
    "consistency/additional/size1-is-zero-and-size2-is-not-zero.json": (
        "root1 is SHA-256('') and the proof is empty, so we would accept from size 0; we reject "
        "only because root2 is a 12-byte dummy"
    ),
    "consistency/additional/consistency-check-on-empty-tree-size1-is-zero-is-useless.json": (
        "we reject because a proof from size 0 must be empty"
    ),
}


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def test_vector_directory_present() -> None:
    # Fail loudly rather than silently collecting no cases.
    assert VECTORS.is_dir(), f"merkle vectors not found at {VECTORS}; set DETENTE_VECTORS"
    assert len(INCLUSION_CASES) == 98
    assert len(CONSISTENCY_CASES) == 98
    for name in [*DIVERGENCES, *SAME_VERDICT_OTHER_REASON]:
        assert name in CONSISTENCY_CASES, name


@pytest.mark.parametrize("name", INCLUSION_CASES)
def test_inclusion_vector(name: str) -> None:
    case = _load(name)
    args = (
        case["leafIdx"],
        case["treeSize"],
        _b64(case["leafHash"]),
        [_b64(p) for p in case["proof"] or []],
        _b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("name", CONSISTENCY_CASES)
def test_consistency_vector(name: str) -> None:
    case = _load(name)
    args = (
        case["size1"],
        case["size2"],
        _b64(case["root1"]),
        _b64(case["root2"]),
        [_b64(p) for p in case["proof"] or []],
    )
    want_err = case["wantErr"]
    if name in DIVERGENCES:
        assert not want_err
        with pytest.raises(VerificationError, match="32 bytes"):
            verify_consistency(*args)
    elif want_err:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_subtree_vectors_not_applicable() -> None:
    pytest.skip(
        "subtreeinclusion/ and subtreeconsistency/ test MTC-style subtree proofs "
        "(arbitrary [start, end) subtrees); Détente proves only whole-tree inclusion and consistency"
    )


# --- RFC 6962 leaf set (transparency-dev/merkle testonly/constants.go) ------------------------

RFC_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
RFC_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
RFC_STORE = MemoryHashStore(RFC_LEAVES)


@pytest.mark.parametrize("size", range(9))
def test_rfc6962_roots(size: int) -> None:
    assert tree_hash(size, RFC_STORE).hex() == RFC_ROOTS[size]
    assert MemoryHashStore(RFC_LEAVES[:size]).root().hex() == RFC_ROOTS[size]


def test_rfc6962_empty_root() -> None:
    assert EMPTY_ROOT.hex() == RFC_ROOTS[0]


def test_rfc6962_eight_leaf_proof() -> None:
    proof = [
        _b64("lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c="),
        _b64("Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4="),
        _b64("a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="),
    ]
    root = bytes.fromhex(RFC_ROOTS[8])
    assert leaf_hash(b"") == _b64("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    assert prove_inclusion(0, 8, RFC_STORE) == proof
    assert prove_consistency(1, 8, RFC_STORE) == proof
    verify_inclusion(0, 8, leaf_hash(b""), proof, root)
    verify_consistency(1, 8, bytes.fromhex(RFC_ROOTS[1]), root, proof)


# The RFC 6962 §2.1.3 example tree of 7 leaves: a-f are d0-d5, j is d6, g=(a,b), h=(c,d), i=(e,f),
# k=(g,h), l=(i,j).
_a, _b, _c, _d, _e, _f, _j = (leaf_hash(b"d%d" % n) for n in range(7))
_g, _h, _i = node_hash(_a, _b), node_hash(_c, _d), node_hash(_e, _f)
_k, _l = node_hash(_g, _h), node_hash(_i, _j)
SEVEN = MemoryHashStore(b"d%d" % n for n in range(7))


@pytest.mark.parametrize(
    ("index", "path"),
    [(0, [_b, _h, _l]), (3, [_c, _g, _l]), (4, [_f, _j, _k]), (6, [_i, _k])],
)
def test_rfc6962_example_inclusion(index: int, path: list[bytes]) -> None:
    assert SEVEN.root() == node_hash(_k, _l)
    assert prove_inclusion(index, 7, SEVEN) == path
    verify_inclusion(index, 7, leaf_hash(b"d%d" % index), path, SEVEN.root())


@pytest.mark.parametrize(
    ("old", "proof"),
    [(3, [_c, _d, _g, _l]), (4, [_l]), (6, [_i, _j, _k])],
)
def test_rfc6962_example_consistency(old: int, proof: list[bytes]) -> None:
    assert prove_consistency(old, 7, SEVEN) == proof
    verify_consistency(old, 7, tree_hash(old, SEVEN), SEVEN.root(), proof)


# --- the deterministic 1000-entry vector of ledger.md §1.6 -------------------------------------


def test_thousand_entry_vector() -> None:
    store = MemoryHashStore(b"entry %d" % n for n in range(1000))
    root_1000 = _b64("NGxrnLicS3b6ydyyDNqG46AcCldBfBOQKOrNRTj96Vs=")
    root_700 = _b64("xw5zSZqcGcWQ2YSUvQUOs6ZGvzjJ96OX3OWj/t47JAc=")
    leaf_123 = _b64("q/rc2yuyProuQmGxna2ZcQeboSC25mJIUJ3+EOJTkUY=")
    assert store.root() == tree_hash(1000, store) == root_1000
    assert tree_hash(700, store) == root_700
    assert leaf_hash(b"entry 123") == leaf_123

    inclusion = prove_inclusion(123, 1000, store)
    assert len(inclusion) == 10
    verify_inclusion(123, 1000, leaf_123, inclusion, root_1000)

    consistency = prove_consistency(700, 1000, store)
    assert len(consistency) == 9
    verify_consistency(700, 1000, root_700, root_1000, consistency)
