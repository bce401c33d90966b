"""The ResNet-18 image encoder: shapes, the ResNet-18 parameter count, normalisation, local weights files."""
from __future__ import annotations

import pytest
import torch

from harness.data import DatasetInfo
from harness.registry import default_registry
from harness.specs import Kind
from harness_plugins.encoders.resnet18_image import SPEC
from harness_plugins.encoders.resnet18_image.model import IMAGENET_MEAN, ResNet18Image

INFO = DatasetInfo(name="toy", modalities=("image",), targets=("occupancy",), classes=("sphere",))
SMOKE = dict(SPEC.profiles["smoke"])


def encoder(**overrides) -> ResNet18Image:
    return SPEC.build(SPEC.config(**overrides), INFO)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def backbone_params(base: int) -> int:
    """ResNet-18 without its classifier, from its layer sizes (convolutions have no bias; BN has a scale and a
    shift per channel, its running statistics are buffers)."""
    def conv(c_in: int, c_out: int, kernel: int) -> int:
        return c_in * c_out * kernel * kernel

    total = conv(3, base, 7) + 2 * base
    channels = base
    for stage in range(4):
        width = base * 2 ** stage
        for block in range(2):
            c_in = channels if block == 0 else width
            total += conv(c_in, width, 3) + conv(width, width, 3) + 2 * 2 * width
            if c_in != width:  # projection shortcut
                total += conv(c_in, width, 1) + 2 * width
        channels = width
    return total


def test_paper_size_parameter_count():
    assert backbone_params(64) == 11_176_512  # torchvision's resnet18 (11,689,512) minus its 512 x 1000 fc
    model = encoder()
    assert SPEC.config().code_size == 256 and SPEC.config().weights == ""
    assert n_params(model.backbone) == backbone_params(64)
    assert n_params(model) == backbone_params(64) + 512 * 256 + 256
    assert n_params(encoder(**SMOKE)) == backbone_params(8) + 64 * 16 + 16


@pytest.mark.parametrize("size", [137, 64, 32])
def test_output_shape_for_image_sizes(size):
    model = encoder(**SMOKE)
    assert SPEC.capabilities.consumes == "image" and SPEC.capabilities.produces == "global"
    assert (model.encoding.kind, model.encoding.dim) == ("global", SMOKE["code_size"])
    code = model(torch.rand(2, 3, size, size))
    assert code.shape == (2, SMOKE["code_size"]) and torch.isfinite(code).all()
    code.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_inputs_are_normalised_with_imagenet_statistics():
    model = encoder(**SMOKE).eval()
    mean_image = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(2, 3, 40, 40)
    assert torch.allclose(model(mean_image), model.fc(model.backbone(torch.zeros(2, 3, 40, 40))), atol=1e-6)
    assert {"mean", "std"}.isdisjoint(model.state_dict())  # constants, not state


def test_spec_builds_every_profile():
    assert default_registry().get(Kind.ENCODER, "resnet18_image").plugin == "builtin_encoders"
    for profile, overrides in SPEC.profiles.items():
        model = SPEC.build(SPEC.config(**overrides), INFO)
        assert model.encoding.dim == overrides["code_size"], profile
        assert model.backbone.out_channels == 8 * overrides["base_width"], profile


def trained_backbone_state(tmp_path, **extra: torch.Tensor):
    """A backbone file whose weights and BN running statistics differ from a fresh model's."""
    torch.manual_seed(0)
    source = encoder(**SMOKE)
    for parameter in source.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    source(torch.rand(4, 3, 32, 32))  # moves the running statistics
    path = tmp_path / "backbone.pt"
    torch.save({**source.backbone.state_dict(), **extra}, path)
    return source.eval(), path


def test_weights_file_round_trip(tmp_path):
    source, path = trained_backbone_state(tmp_path, **{"fc.weight": torch.zeros(1000, 64),
                                                       "fc.bias": torch.zeros(1000)})  # a classifier is ignored
    loaded = encoder(**SMOKE, weights=str(path)).eval()
    images = torch.rand(2, 3, 48, 48)
    assert torch.equal(loaded.backbone(images), source.backbone(images))
    loaded.fc.load_state_dict(source.fc.state_dict())
    assert torch.equal(loaded(images), source(images))


def test_bad_weights_files_name_the_file_and_keys(tmp_path):
    missing = tmp_path / "nowhere.pt"
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        encoder(**SMOKE, weights=str(missing))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt.*not a tensor state dict"):
        encoder(**SMOKE, weights=str(garbage))
    _, path = trained_backbone_state(tmp_path, extra_head=torch.zeros(3))
    with pytest.raises(ValueError, match=r"backbone.pt.*unexpected keys: extra_head") as error:
        encoder(**SMOKE, weights=str(path))
    assert "missing" not in str(error.value)
    with pytest.raises(ValueError, match=r"backbone.pt.*wrong shapes: bn1.bias \(8,\) instead of \(16,\)"):
        encoder(**{**SMOKE, "base_width": 16}, weights=str(path))
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(1)}}, wrapped)
    with pytest.raises(ValueError, match=r"checkpoint.pt.*missing keys: bn1.bias, .*\(\d+ in all\); "
                                         r"unexpected keys: model"):
        encoder(**SMOKE, weights=str(wrapped))
