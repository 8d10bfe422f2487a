"""resolve_model: torchvision names, ONNX files, mbv2:/nb201: points, and clear errors."""

from __future__ import annotations

import pytest

import hwnas.spaces  # noqa: F401  (registers the mbv2: / nb201: model-name families)
from hwnas.errors import InputError
from hwnas.graph.models import parse_input_shape, resolve_model


def test_torchvision_name():
    r = resolve_model("resnet18", batch_size=2)
    assert r.model_id == "torchvision:resnet18" and r.name == "resnet18"
    assert r.input_shape == (2, 3, 224, 224) and r.onnx_path is None and r.module is not None
    assert r.spec.layers[0].batch_size == 2
    r2 = resolve_model("torchvision:mobilenet_v2", input_shape=(1, 3, 96, 96))
    assert r2.input_shape == (1, 3, 96, 96) and r2.spec.layers[0].input_shape == (1, 3, 96, 96)
    assert not r2.module.training


def test_onnx_export_and_reload(tmp_path):
    r = resolve_model("resnet18", input_shape=(1, 3, 32, 32))
    path = r.onnx(tmp_path)
    assert path.is_file() and r.onnx(tmp_path) == path  # exported once
    o = resolve_model(str(path))
    assert o.module is None and o.onnx_path == path.resolve()
    assert o.model_id.startswith(f"onnx:{path.name}@") and len(o.model_id.split("@")[1]) == 10
    assert o.input_shape == (1, 3, 32, 32)
    assert o.spec.macs == r.spec.macs
    assert o.onnx(tmp_path / "other") == o.onnx_path
    # same bytes, same id; other bytes, other id
    assert resolve_model(str(path)).model_id == o.model_id
    import onnx

    proto = onnx.load(str(path))
    proto.producer_name = "someone else"
    other = tmp_path / path.name
    onnx.save(proto, str(other))
    assert resolve_model(str(other)).model_id != o.model_id


def test_mbv2_point():
    from hwnas.spaces.mbv2 import MBV2Space

    arch = MBV2Space(seed=3).sample()
    r = resolve_model(f"mbv2:{arch}", input_shape=(1, 3, 96, 96))
    assert r.model_id == f"mbv2:{arch}" and r.input_shape == (1, 3, 96, 96)
    assert r.spec.layers[-1].output_shape == (1, 1000)
    short = "-".join(arch.split("-")[1:-1])  # the 20 searchable blocks only
    assert resolve_model(f"mbv2:{short}", input_shape=(1, 3, 64, 64)).model_id == f"mbv2:{arch}"


def test_nb201_point():
    nb201 = pytest.importorskip("hwnas.spaces.nb201")
    if not hasattr(nb201, "build_network"):
        pytest.skip("hwnas.spaces.nb201.build_network not available")
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    r = resolve_model(f"nb201:{arch}")
    assert r.input_shape == (1, 3, 32, 32)
    assert r.model_id == f"nb201:{arch}"
    assert r.spec.layers[-1].output_shape == (1, 10)
    if hasattr(nb201, "layers"):  # the space's own layer list counts the same
        own = nb201.layers(arch)
        assert (own.macs, own.params, len(own.layers)) == (r.spec.macs, r.spec.params, len(r.spec.layers))
        pools = [layer for layer in r.spec.layers if layer.op == "avgpool2d" and layer.padding != (0, 0)]
        assert pools and all(layer.attr("count_include_pad") is False for layer in pools)


def test_errors(tmp_path):
    with pytest.raises(InputError, match="unknown model 'resnet_eighteen'") as info:
        resolve_model("resnet_eighteen")
    assert "mobilenet_v2" in info.value.hint
    with pytest.raises(InputError) as info:
        resolve_model("resnet")
    assert "resnet18" in info.value.hint  # close names first
    with pytest.raises(InputError, match="does not exist"):
        resolve_model(str(tmp_path / "missing.onnx"))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not an onnx model")
    with pytest.raises(InputError, match="cannot be read"):
        resolve_model(str(corrupt))
    with pytest.raises(InputError, match="mbv2 arch"):
        resolve_model("mbv2:k3e6-k9e9")
    with pytest.raises(InputError):
        resolve_model("")


@pytest.mark.parametrize(
    "text,expected",
    [("1,3,224,224", (1, 3, 224, 224)), ("2x3x32x32", (2, 3, 32, 32)), (" 1, 8 ", (1, 8)), (None, None)],
)
def test_parse_input_shape(text, expected):
    assert parse_input_shape(text) == expected


@pytest.mark.parametrize("text", ["1,3,x", "a,b", "1,0,3", "-1,3", "1,,3", "1.5,3"])
def test_parse_input_shape_rejects(text):
    with pytest.raises(InputError, match="input shape"):
        parse_input_shape(text)


def test_mbv2_ids_with_resolution_and_width():
    from hwnas.spaces.mbv2 import MBV2Space

    space = MBV2Space(resolution=96, width=0.5, seed=3)
    arch = space.sample()
    mid = space.model_id(arch)
    assert mid == f"mbv2@96w0.5:{arch}"
    r = resolve_model(mid)
    assert r.model_id == mid and r.input_shape == (1, 3, 96, 96)
    assert [layer.key() for layer in r.spec.layers] == [layer.key() for layer in space.layers(arch).layers]
    direct = space.resolve(arch, batch_size=2)
    assert direct.model_id == mid and direct.input_shape == (2, 3, 96, 96) and not direct.module.training
    assert resolve_model(f"mbv2@64:{arch}").input_shape == (1, 3, 64, 64)
    # Single-Path+ SE tokens and searched end blocks resolve too
    se = resolve_model("mbv2:k3e1-k5e6se25" + "-k3e6" * 20, input_shape=(1, 3, 64, 64))
    assert sum(layer.op == "se" for layer in se.spec.layers) == 1
    assert resolve_model("mbv2@64:k5e6" + "-k3e6" * 21).model_id.startswith("mbv2@64:k5e6-")
    with pytest.raises(InputError, match="malformed"):
        resolve_model(f"mbv2@96x:{arch}")
    with pytest.raises(InputError, match="disagrees"):
        resolve_model(f"mbv2@96:{arch}", input_shape=(1, 3, 64, 64))


def test_onnx_files_of_similar_archs_do_not_collide(tmp_path):
    base = ["k3e1"] + ["k3e3"] * 20
    a = resolve_model("mbv2:" + "-".join([*base, "k3e6"]), input_shape=(1, 3, 32, 32))
    b = resolve_model("mbv2:" + "-".join([*base[:-1], "k5e6", "k3e6"]), input_shape=(1, 3, 32, 32))
    assert a.onnx(tmp_path) != b.onnx(tmp_path)


def test_space_families_resolve_through_the_registry(monkeypatch):
    from hwnas.graph import models

    assert {"mbv2", "nb201"} <= set(models.model_families())
    monkeypatch.setattr(models, "_FAMILIES", {})
    with pytest.raises(InputError, match="not registered") as exc:
        resolve_model("mbv2:k3e6")
    assert "hwnas.spaces" in exc.value.hint
    calls = []
    models.register_model_family("toy", lambda prefix, rest, shape, n: calls.append((prefix, rest, n)))
    resolve_model("toy@2:abc", batch_size=3)
    assert calls == [("toy@2", "abc", 3)]
