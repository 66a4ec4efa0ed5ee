"""Model shapes, features, heads, freezing and the offline pretrained error."""

import urllib.error

import pytest
import torch

from hwbench import models
from hwbench.models import PretrainedWeightsUnavailable, build_model, set_trainable

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["resnet18", "base_cnn", "small_cnn"])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_output_and_feature_shapes(name, in_channels, stem):
    model = build_model(name, num_classes=7, in_channels=in_channels, stem=stem).eval()
    x = torch.rand(2, in_channels, 28, 28)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
        feats = model.features(x)
    expected = {"resnet18": 512, "base_cnn": 256, "small_cnn": 64}[name]
    assert feats.shape == (2, expected) == (2, model.feature_dim)


def test_resnet152_feature_dim():
    model = build_model("resnet152", 30, stem="cifar").eval()
    with torch.no_grad():
        assert model.features(torch.rand(1, 1, 28, 28)).shape == (1, 2048)


def test_cifar_stem_keeps_resolution():
    cifar = build_model("resnet18", 10, stem="cifar")
    imagenet = build_model("resnet18", 10, stem="imagenet")
    assert cifar.body.conv1.kernel_size == (3, 3) and cifar.body.conv1.stride == (1, 1)
    assert isinstance(cifar.body.maxpool, torch.nn.Identity)
    assert imagenet.body.conv1.kernel_size == (7, 7)
    assert isinstance(imagenet.body.maxpool, torch.nn.MaxPool2d)


def test_base_cnn_layout():
    model = build_model("base_cnn", 62)
    convs = [m.out_channels for m in model.body if isinstance(m, torch.nn.Conv2d)]
    assert convs == [32, 32, 48, 48, 64, 64]
    dense = [m.out_features for m in model.body if isinstance(m, torch.nn.Linear)]
    assert dense == [768, 256]
    assert model.head_dropout.p == 0.25
    # The paper: "more than 350,000 parameters".
    assert sum(p.numel() for p in model.parameters()) > 350_000


@pytest.mark.parametrize("name", ["small_cnn", "base_cnn"])
def test_cnns_take_non_square_input(name):
    # (height, width): the dense layer follows both sides (e.g. a 32 x 64 canvas)
    model = build_model(name, 7, input_size=(32, 64)).eval()
    assert model(torch.zeros(2, 1, 32, 64)).shape == (2, 7)
    pooled = {"small_cnn": 32 * 8 * 16, "base_cnn": 64 * 4 * 8}[name]
    first_dense = next(m for m in model.body if isinstance(m, torch.nn.Linear))
    assert first_dense.in_features == pooled


def test_extra_heads_return_dict():
    model = build_model("small_cnn", 30).eval()
    model.add_head("digit", 10)
    model.add_head("script", 3)
    out = model(torch.rand(4, 1, 28, 28))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "main": (4, 30),
        "digit": (4, 10),
        "script": (4, 3),
    }
    with pytest.raises(ValueError, match="already exists"):
        model.add_head("digit", 2)


def test_replace_head_and_set_trainable():
    model = build_model("small_cnn", 10)
    model.replace_head(52)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 52)
    names = set_trainable(model, ["head"])
    assert names == ["head.weight", "head.bias"]
    assert not any(p.requires_grad for p in model.body.parameters())
    with pytest.raises(ValueError, match="match no parameter"):
        set_trainable(model, ["nope"])


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", 10)
    with pytest.raises(ValueError, match="unknown stem"):
        build_model("resnet18", 10, stem="tiny")
    with pytest.raises(ValueError, match="no pretrained"):
        build_model("base_cnn", 10, pretrained="imagenet")


def test_offline_pretrained_error_names_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HWBENCH_OFFLINE", "1")
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert models.pretrained_cache_file("resnet18") == expected
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        build_model("resnet18", 10, pretrained="imagenet")
    assert str(expected) in str(err.value) and "download.pytorch.org" in str(err.value)


def test_failed_download_gives_the_same_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("HWBENCH_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(PretrainedWeightsUnavailable, match="no route to host") as err:
        build_model("resnet18", 10, pretrained="imagenet")
    assert "resnet18-f37072fd.pth" in str(err.value)


def test_pretrained_loads_from_cache_and_sums_rgb_kernel(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HWBENCH_OFFLINE", "1")
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    cache = models.pretrained_cache_file("resnet18")
    cache.parent.mkdir(parents=True)
    torch.save(reference, cache)

    grey = build_model("resnet18", 10, in_channels=1, stem="imagenet", pretrained="imagenet")
    rgb = build_model("resnet18", 10, in_channels=3, stem="imagenet", pretrained="imagenet")
    torch.testing.assert_close(rgb.body.conv1.weight, reference["conv1.weight"])
    torch.testing.assert_close(
        grey.body.conv1.weight, reference["conv1.weight"].sum(1, keepdim=True)
    )
    torch.testing.assert_close(grey.body.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])
    # A grey image gives the same features through the summed kernel as its RGB copy.
    x = torch.rand(2, 1, 28, 28)
    grey.eval(), rgb.eval()
    with torch.no_grad():
        torch.testing.assert_close(grey.features(x), rgb.features(x.repeat(1, 3, 1, 1)))
