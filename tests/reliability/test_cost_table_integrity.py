"""Cost tables (finding 6): the checksum covers everything in the file; loaders bound the payload's depth
and refuse trees with cycles, even behind a recomputed checksum; schema versions are checked by type."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwnas.cli.app import main
from hwnas.cost_models import export
from hwnas.errors import SchemaError


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("ct")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.uniform(1, 5, 50), "b": rng.uniform(1, 5, 50)})
    df["y"] = 2 * df["a"] + df["b"] ** 2
    df.to_csv(d / "T.csv", index=False)
    out = {}
    for kind in ("linear", "boosted"):
        path = d / f"{kind}.json"
        assert main(["fit", "--data", str(d / "T.csv"), "--target", "y", "--kind", kind,
                     "--n-estimators", "5", "--out", str(path), "--json"]) == 0  # fmt: skip
        out[kind] = path
    out["data"] = d / "T.csv"
    return out


def test_editing_meta_is_detected(tmp_path, tables, capsys):
    doc = json.loads(tables["linear"].read_text())
    assert doc["meta"]["checksum_scope"] == "file"
    doc["meta"]["fit_model_ids"] = doc["meta"]["fit_model_ids"][:1]  # training rows would count as held out
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="checksum mismatch"):
        export.load_cost_table(bad)
    capsys.readouterr()
    assert main(["evaluate", "--table", str(bad), "--data", str(tables["data"]), "--target", "y"]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    for field, value in (("metric", "energy_mj"), ("unit", "s"), ("estimator", "lut")):
        doc = json.loads(tables["linear"].read_text())
        doc["meta"][field] = value
        bad.write_text(json.dumps(doc))
        with pytest.raises(SchemaError, match="checksum"):
            export.load_cost_table(bad)


def test_a_table_with_the_old_partial_checksum_is_refused(tmp_path, tables):
    doc = json.loads(tables["linear"].read_text())
    tbl = export.load_cost_table(tables["linear"])
    del doc["meta"]["checksum_scope"]
    doc["meta"]["checksum"] = export._checksum(export._normalise_rows(tbl.rows), doc["payload"])
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="older hwnas"):
        export.load_cost_table(old)


@pytest.mark.parametrize("version", ["1", 1.0, True, None, [1]])
def test_schema_version_of_the_wrong_type_is_named(tmp_path, tables, version):
    doc = json.loads(tables["linear"].read_text())
    doc["schema_version"] = version
    bad = tmp_path / "v.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(SchemaError) as info:
        export.load_cost_table(bad)
    assert "is not an integer" in info.value.message and "reads version" not in info.value.message


def _first_tree(payload):
    stack = [payload]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            if "left" in obj and "right" in obj:
                return obj
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
    raise AssertionError("no tree")


@pytest.mark.parametrize("attack", ["cycle", "self-loop", "out-of-range", "one-child", "deep-nesting"])
def test_crafted_payloads_with_a_valid_checksum_are_refused(tmp_path, tables, capsys, attack):
    tbl = export.load_cost_table(tables["boosted"])
    tree = _first_tree(tbl.payload)
    inner = [i for i, v in enumerate(tree["left"]) if v != -1]
    if attack == "cycle":
        child = tree["left"][inner[0]]
        tree["left"][child], tree["right"][child] = inner[0], inner[0]  # back to the root
    elif attack == "self-loop":
        tree["left"][inner[0]] = inner[0]
    elif attack == "out-of-range":
        tree["right"][inner[0]] = 10**6
    elif attack == "one-child":
        tree["right"][inner[-1]] = -1
    else:
        nested: list = []
        for _ in range(200):
            nested = [nested]
        tbl.payload["junk"] = nested
    crafted = tmp_path / "crafted.json"
    export.save_cost_table(tbl, crafted)  # a recomputed, valid checksum: the attacker's best case
    with pytest.raises(SchemaError, match="bad tree|nested deeper"):
        export.load_cost_table(crafted)
    capsys.readouterr()
    assert main(["predict", "--table", str(crafted), "--data", str(tables["data"])]) == 2
    assert "not a readable hwnas cost table" in " ".join(capsys.readouterr().err.split())


def test_check_tree_accepts_what_sklearn_writes(tables):
    from hwnas.cost_models.boosted import check_tree

    tbl = export.load_cost_table(tables["boosted"])
    assert check_tree(_first_tree(tbl.payload)) is None
