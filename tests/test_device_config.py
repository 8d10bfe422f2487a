"""Device configs: the shipped ones load, and each kind of bad field gives an error naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.device_config import list_configs, load_device, parse_config
from hwnas.errors import ConfigError, InputError


def test_shipped_configs_all_load() -> None:
    paths = list_configs()
    assert any(p.stem == "local-cpu" for p in paths)
    for p in paths:
        cfg = load_device(str(p))
        assert cfg.name == p.stem, f"{p}: name field should match the file name"


def test_load_by_name_and_defaults() -> None:
    cfg = load_device("local-cpu")
    assert cfg.backend == "onnxruntime-cpu"
    assert 0 < cfg.repeat.target_ci_rel < 1
    assert cfg.repeat.max_repeats >= cfg.repeat.min_repeats


def test_unknown_device_lists_known_ones() -> None:
    with pytest.raises(InputError) as info:
        load_device("no-such-device")
    assert "no-such-device" in info.value.message
    assert "local-cpu" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("data", "field", "expected"),
    [
        ({"name": "x", "backend": "cuda"}, "backend", "one of"),
        ({"name": "x", "backend": "torch-cpu", "threads": 0}, "threads", "positive integer"),
        ({"name": "x", "backend": "torch-cpu", "repeat": {"target_ci_rel": 2}},
         "repeat.target_ci_rel", "fraction"),
        ({"name": "x", "backend": "torch-cpu", "repeat": {"min_repeats": 20, "max_repeats": 10}},
         "repeat.max_repeats", "min_repeats"),
        ({"name": "x", "backend": "torch-cpu", "power": {"sampler": "magic"}}, "power.sampler", "one of"),
        ({"name": "x", "backend": "torch-cpu", "peak_flops": "fast"}, "peak_flops", "FLOP/s"),
        ({"name": "", "backend": "torch-cpu"}, "name", "non-empty"),
    ],
)  # fmt: skip
def test_bad_field_names_file_field_and_form(data: dict, field: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "dev.yaml")
    msg = info.value.message
    assert msg.startswith("dev.yaml: field '" + field + "'"), msg
    assert expected in msg


def test_unknown_top_level_field_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        parse_config({"name": "x", "backend": "torch-cpu", "thread": 2}, "dev.yaml")


def test_invalid_yaml_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_device(str(bad))
