"""The models of the compression papers as encoders (resnet_cifar, r3d, voxnet, shapenets_cnn): exact parameter
counts from hand-derived formulas, shapes and strides stage by stage, the option-A shortcut, declared compression
blocks, and that each one learns a separable toy problem."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from harness.compression import eligible_layers, parse_settings
from harness.data import DatasetInfo
from harness.registry import default_registry
from harness.specs import Kind
from harness_plugins.encoders.resnet_cifar.model import ZeroPadShortcut

NAMES = ("resnet_cifar", "r3d", "voxnet", "shapenets_cnn")
MODALITY = {"resnet_cifar": "image", "r3d": "video", "voxnet": "voxels", "shapenets_cnn": "voxels"}
SMOKE_INPUT = {"resnet_cifar": (3, 32, 32), "r3d": (3, 8, 32, 32), "voxnet": (1, 32, 32, 32),
               "shapenets_cnn": (1, 32, 32, 32)}
REGISTRY = default_registry()


def spec(name: str):
    return REGISTRY.get(Kind.ENCODER, name)


def info(modality: str, shape: tuple[int, ...] | None = None, classes: int = 10) -> DatasetInfo:
    return DatasetInfo(name="toy", modalities=(modality,), targets=("label",),
                       classes=tuple(f"c{i}" for i in range(classes)),
                       input_shapes={modality: shape} if shape else {})


def build(name: str, profile: str | None = "smoke", shape: tuple[int, ...] | None = None, **overrides) -> nn.Module:
    component = spec(name)
    settings = {**(component.profiles[profile] if profile else {}), **overrides}
    return component.build(component.config(**settings), info(MODALITY[name], shape))


def head(encoder: nn.Module, classes: int = 10) -> nn.Module:
    """The paper's head: the classifier decoder with hidden=0."""
    decoder = REGISTRY.get(Kind.DECODER, "classifier")
    return decoder.build(decoder.config(hidden=0), encoder.encoding, info("image", classes=classes))


def n_params(*modules: nn.Module) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


def conv(c_in: int, c_out: int, *kernel: int, bias: bool = False) -> int:
    weights = c_in * c_out
    for k in kernel:
        weights *= k
    return weights + (c_out if bias else 0)


def bn(channels: int) -> int:
    return 2 * channels  # scale and shift; the running statistics are buffers


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


# ---------------------------------------------------------------------------------------------- parameter counts

def resnet_cifar_params(depth: int, classes: int = 10) -> int:
    """He et al.'s CIFAR ResNet with option-A shortcuts: the 3x3 stem, then 3 stages of n blocks of two 3x3
    convs (+BN each) with 16, 32, 64 channels, where only the first conv of stages 2 and 3 sees fewer input
    channels; the shortcuts have no weights; a linear head."""
    n = (depth - 2) // 6
    total = conv(3, 16, 3, 3) + bn(16)
    for width, previous in ((16, 16), (32, 16), (64, 32)):
        total += conv(previous, width, 3, 3) + (2 * n - 1) * conv(width, width, 3, 3) + 2 * n * bn(width)
    return total + linear(64, classes)


def test_resnet20_and_resnet32_parameter_counts():
    # worked by hand: ResNet-20 = convs 267,696 + BN 1,376 + head 650
    assert resnet_cifar_params(20) == 269_722
    assert resnet_cifar_params(32) == 464_154
    for depth in (20, 32):
        encoder = build("resnet_cifar", profile=None, depth=depth)
        assert n_params(encoder, head(encoder)) == resnet_cifar_params(depth)
        assert not any(isinstance(m, ZeroPadShortcut) and list(m.parameters()) for m in encoder.modules())
    # the 272,474 sometimes quoted for ResNet-20 is option B: 1x1 conv + BN projections in stages 2 and 3
    assert resnet_cifar_params(20) + conv(16, 32, 1, 1) + bn(32) + conv(32, 64, 1, 1) + bn(64) == 272_474
    assert spec("resnet_cifar").config().depth == 20


def r3d_params(base: int, channels_in: int = 3) -> int:
    """R3D-18: 3x7x7 stem, 4 stages of 2 basic 3x3x3 blocks, 1x1x1 conv + BN projection in stages 2-4."""
    total = conv(channels_in, base, 3, 7, 7) + bn(base)
    previous = base
    for stage in range(4):
        width = base * 2 ** stage
        total += conv(previous, width, 3, 3, 3) + 3 * conv(width, width, 3, 3, 3) + 4 * bn(width)
        if stage:
            total += conv(previous, width, 1, 1, 1) + bn(width)
        previous = width
    return total


def test_r3d18_parameter_count_at_paper_size():
    encoder = build("r3d", profile=None)
    assert encoder.encoding.dim == 512
    assert n_params(encoder) == r3d_params(64) == 33_166_272
    # with a 400-class (Kinetics) linear head: the 33.4M usually quoted for R3D-18
    assert n_params(encoder, head(encoder, classes=400)) == 33_371_472
    assert n_params(build("r3d", shape=(1, 4, 16, 16))) == r3d_params(8, channels_in=1)


def test_voxnet_parameter_count_on_32_cubed():
    # conv 5^3 stride 2: 32 -> 14; conv 3^3: 14 -> 12; max pool 2: 12 -> 6
    expected = (conv(1, 32, 5, 5, 5, bias=True) + conv(32, 32, 3, 3, 3, bias=True) + linear(32 * 6 ** 3, 128)
                + linear(128, 10))
    encoder = build("voxnet", profile=None)
    assert n_params(encoder, head(encoder)) == expected == 917_866
    # the thesis's Table 3.3: 1,013 kb at 32 bits = the weights of the two convolutions it quantised
    assert (encoder.conv1.weight.numel() + encoder.conv2.weight.numel()) * 32 == 1_012_736


def test_shapenets_parameter_count_on_32_cubed():
    # 32 -> (32-6)/2+1 = 14 -> (14-5)//2+1 = 5 -> 5-4+1 = 2
    convs = conv(1, 48, 6, 6, 6, bias=True) + conv(48, 160, 5, 5, 5, bias=True) + conv(160, 512, 4, 4, 4, bias=True)
    expected = convs + linear(512 * 2 ** 3, 1200) + linear(1200, 4000) + linear(4000, 40)
    encoder = build("shapenets_cnn", profile=None)
    assert encoder.encoding.dim == 4000
    assert n_params(encoder, head(encoder, classes=40)) == expected == 16_094_408
    # the thesis's Table 3.3: 198,824 kb at 32 bits = the weights of the three convolutions
    conv_weights = sum(getattr(encoder, f"conv{i}").weight.numel() for i in (1, 2, 3))
    assert conv_weights == 6_213_248 and round(conv_weights * 32 / 1000) == 198_824
    short = build("shapenets_cnn", profile=None, hidden2=0)
    assert short.encoding.dim == 1200
    assert n_params(short) == convs + linear(4096, 1200)


# ---------------------------------------------------------------------------------------------- shapes and strides

@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (4, 20, 36), (3, 64, 64)])
def test_resnet_cifar_output_for_sizes_and_channels(shape):
    encoder = build("resnet_cifar", shape=shape)
    assert encoder.conv1.in_channels == shape[0]
    out = encoder(torch.rand(2, *shape))
    width = 4 * spec("resnet_cifar").profiles["smoke"]["base_width"]  # the third stage's channels
    assert out.shape == (2, width) and torch.isfinite(out).all()
    assert (encoder.encoding.kind, encoder.encoding.dim) == ("global", width)


def test_channels_default_to_three_when_the_dataset_does_not_say():
    for name in ("resnet_cifar", "r3d"):
        assert build(name).conv1.in_channels == 3
    assert build("voxnet").conv1.in_channels == 1
    with pytest.raises(ValueError, match="resnet_cifar.*expected 3 positive sizes"):
        build("resnet_cifar", shape=(28, 28))


@pytest.mark.parametrize("shape", [(3, 8, 32, 32), (1, 4, 28, 28), (3, 5, 17, 23)])
def test_r3d_output_for_clip_shapes(shape):
    encoder = build("r3d", shape=shape)
    out = encoder(torch.rand(2, *shape))
    assert out.shape == (2, 64) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["voxnet", "shapenets_cnn"])
@pytest.mark.parametrize("side", [32, 30, 26])
def test_voxel_models_output_for_grid_sizes(name, side):
    encoder = build(name, shape=(1, side, side, side))
    out = encoder(torch.rand(3, 1, side, side, side).round())
    assert out.shape == (3, encoder.encoding.dim) and torch.isfinite(out).all()


def test_voxel_models_reject_grids_too_small():
    with pytest.raises(ValueError, match="voxnet.*too small"):
        build("voxnet", shape=(1, 32, 10, 32))
    build("voxnet", shape=(1, 11, 11, 11))  # 11 -> 4 -> 2 -> 1
    with pytest.raises(ValueError, match="shapenets_cnn.*too small"):
        build("shapenets_cnn", shape=(1, 25, 32, 32))
    build("shapenets_cnn", shape=(1, 26, 26, 26))  # 26 -> 11 -> 4 -> 1


def stage_outputs(model: nn.Module, names: tuple[str, ...], x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    shapes = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda module, args, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))) for name in names]
    model(x)
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.mark.parametrize("size,sides", [(32, (32, 32, 16, 8)), (28, (28, 28, 14, 7))])
def test_resnet_cifar_stage_shapes(size, sides):
    encoder = build("resnet_cifar", profile=None, shape=(1, size, size))
    shapes = stage_outputs(encoder, ("conv1", "layer1", "layer2", "layer3"), torch.rand(2, 1, size, size))
    assert shapes == {name: (width, side, side)
                      for name, width, side in zip(("conv1", "layer1", "layer2", "layer3"), (16, 16, 32, 64), sides)}
    assert [len(encoder.get_submodule(f"layer{s}")) for s in (1, 2, 3)] == [3, 3, 3]
    assert [encoder.get_submodule(f"layer{s}")[0].conv1.stride for s in (1, 2, 3)] == [(1, 1), (2, 2), (2, 2)]


def test_r3d_stage_shapes_and_strides():
    encoder = build("r3d", shape=(3, 8, 32, 32))  # base width 8
    names = ("conv1", "layer1", "layer2", "layer3", "layer4")
    shapes = stage_outputs(encoder, names, torch.rand(2, 3, 8, 32, 32))
    assert shapes == {"conv1": (8, 8, 16, 16), "layer1": (8, 8, 16, 16), "layer2": (16, 4, 8, 8),
                      "layer3": (32, 2, 4, 4), "layer4": (64, 1, 2, 2)}
    assert (encoder.conv1.kernel_size, encoder.conv1.stride, encoder.conv1.padding) == ((3, 7, 7), (1, 2, 2),
                                                                                        (1, 3, 3))
    for stage in (2, 3, 4):
        first = encoder.get_submodule(f"layer{stage}")[0]
        assert first.conv1.stride == (2, 2, 2)
        projection, norm = first.downsample
        assert projection.kernel_size == (1, 1, 1) and projection.stride == (2, 2, 2)
        assert isinstance(norm, nn.BatchNorm3d)
    assert encoder.layer1[0].downsample is None


def test_voxel_model_feature_sizes():
    vox = build("voxnet", profile=None)
    assert stage_outputs(vox, ("conv1", "conv2", "pool", "fc1"), torch.rand(2, 1, 32, 32, 32)) == {
        "conv1": (32, 14, 14, 14), "conv2": (32, 12, 12, 12), "pool": (32, 6, 6, 6), "fc1": (128,)}
    shapenets = build("shapenets_cnn", shape=(1, 30, 30, 30))
    widths = [shapenets.get_submodule(f"conv{i}").out_channels for i in (1, 2, 3)]
    assert stage_outputs(shapenets, ("conv1", "conv2", "conv3"), torch.rand(2, 1, 30, 30, 30)) == {
        "conv1": (widths[0], 13, 13, 13), "conv2": (widths[1], 5, 5, 5), "conv3": (widths[2], 2, 2, 2)}


# ---------------------------------------------------------------------------------------------- option-A shortcut

def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.arange(32.0).view(1, 2, 4, 4)
    out = ZeroPadShortcut(2, 4, stride=2)(x)
    expected = torch.tensor([[[[0.0, 2.0], [8.0, 10.0]],
                              [[16.0, 18.0], [24.0, 26.0]],
                              [[0.0, 0.0], [0.0, 0.0]],
                              [[0.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(out, expected)
    assert torch.equal(ZeroPadShortcut(3, 3, stride=1)(x[:, :1].expand(1, 3, 4, 4)), x[:, :1].expand(1, 3, 4, 4))


def test_downsampling_block_adds_the_padded_input():
    """With its residual branch silenced (last BN scale and shift zero), the first block of stage 2 returns
    relu(shortcut(x)): x subsampled by 2 in the first 16 channels, zeros in the other 16."""
    encoder = build("resnet_cifar", profile=None).eval()
    block = encoder.layer2[0]
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(2, 16, 8, 8)
    out = block(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2].relu())
    assert torch.equal(out[:, 16:], torch.zeros(2, 16, 4, 4))


# ---------------------------------------------------------------------------------------------- compression blocks

LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
PAPER_BLOCKS = {"resnet_cifar": ("conv1", "layer1", "layer2", "layer3"),
                "r3d": ("conv1", "layer1", "layer2", "layer3", "layer4"),
                "voxnet": ("conv1", "conv2", "fc1"),
                "shapenets_cnn": ("conv1", "conv2", "conv3", "fc1", "fc2")}


@pytest.mark.parametrize("name", NAMES)
def test_declared_blocks_exist_cover_every_layer_in_forward_order(name):
    encoder = build(name, shape=SMOKE_INPUT[name])
    blocks = type(encoder).compression_blocks
    assert blocks == PAPER_BLOCKS[name]
    for block in blocks:
        encoder.get_submodule(block)  # raises when missing
    layers = [n for n, m in encoder.named_modules() if isinstance(m, LAYER_TYPES)]
    for layer in layers:
        assert sum(layer == b or layer.startswith(b + ".") for b in blocks) == 1, layer
    # the blocks run in the declared order
    order = []
    hooks = [encoder.get_submodule(b).register_forward_hook(lambda *args, b=b: order.append(b)) for b in blocks]
    encoder(torch.rand(2, *SMOKE_INPUT[name]))
    for hook in hooks:
        hook.remove()
    assert order == list(blocks)
    # the compression core sees one block per declared block, and every layer of the model
    found = eligible_layers(encoder, ("Conv2d", "Conv3d", "Linear"))
    assert [layer.name for layer in found] == layers
    assert len({layer.block for layer in found}) == len(blocks)


def test_resnet20_takes_the_papers_per_block_harmonics():
    encoder = build("resnet_cifar", profile=None)
    layers = eligible_layers(encoder, ("Conv2d",))
    assert len(layers) == 19  # 20 weighted layers minus the linear head
    harmonics = parse_settings("3,3,3,2", "harmonics").assign(layers, "harmonics")
    assert harmonics["conv1"] == 3 and harmonics["layer2.2.conv2"] == 3 and harmonics["layer3.0.conv1"] == 2
    assert list(harmonics.values()).count(2) == 6


# ---------------------------------------------------------------------------------------------- behaviour

def test_resnet_cifar_rejects_depths_that_are_not_6n_plus_2():
    for depth in (21, 18, 2, 5):
        with pytest.raises(ValueError, match=r"depth=\d+ is not a CIFAR ResNet depth.*6n\+2"):
            build("resnet_cifar", depth=depth)


def toy_batch(name: str, per_class: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes a linear probe of the input cannot tell by its mean: images/grids with mass in the upper
    vs lower half; clips that brighten vs darken over time."""
    generator = torch.Generator().manual_seed(0)
    shape = SMOKE_INPUT[name]
    x = 0.1 * torch.rand(2 * per_class, *shape, generator=generator)
    labels = torch.arange(2).repeat_interleave(per_class)
    if name == "r3d":
        ramp = torch.linspace(0, 1, shape[1]).view(1, -1, 1, 1)
        x[:per_class] += ramp
        x[per_class:] += 1 - ramp
    else:
        half = shape[-2] // 2
        x[:per_class, ..., :half, :] += 0.8
        x[per_class:, ..., half:, :] += 0.8
    return x, labels


@pytest.mark.parametrize("name", NAMES)
def test_tiny_training_loop_learns_a_separable_batch(name):
    torch.manual_seed(0)
    encoder = build(name, shape=SMOKE_INPUT[name])
    classifier = head(encoder, classes=2)
    optimizer = torch.optim.Adam([*encoder.parameters(), *classifier.parameters()], lr=3e-3)
    x, labels = toy_batch(name)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(classifier(encoder(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_smoke_and_quick_profiles(name):
    component = spec(name)
    assert component.capabilities.consumes == MODALITY[name] and component.capabilities.produces == "global"
    assert set(component.profiles) >= {"smoke", "quick"}
    for profile in ("smoke", "quick"):
        component.config(**component.profiles[profile])  # every override names a field
    assert component.factory.startswith(f"harness_plugins.encoders.{name}.model:")


def test_quick_profiles():
    assert build("resnet_cifar", profile="quick").depth == 20
    # the smoke ResNet keeps the 19 layers the quantisation bench's per-layer bit schedules are written for
    assert build("resnet_cifar", profile="smoke").depth == 20
    assert build("r3d", profile="quick").encoding.dim == 128
    assert n_params(build("voxnet", profile="quick")) == n_params(build("voxnet", profile=None))


def test_benched_on_their_synthetic_dataset_with_the_linear_head():
    from harness.bench import combinations

    expected = {"resnet_cifar": "synthetic_images", "r3d": "synthetic_videos", "voxnet": "synthetic_voxels",
                "shapenets_cnn": "synthetic_voxels"}
    found = [c for c in combinations(REGISTRY) if c.encoder in expected]
    assert {c.encoder for c in found if c.protocol == "classification"} == set(expected)
    for combination in found:
        assert combination.dataset == expected[combination.encoder]
        assert combination.decoder == "classifier" and "decoder.hidden=0" in combination.variant


# ---------------------------------------------------------------------------------------------- standardisation

def test_standardise_gives_each_item_and_channel_zero_mean_and_unit_variance():
    from harness_plugins.encoders.standardise import EPS, Standardise

    x = torch.rand(2, 3, 4, 5, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.2], dtype=torch.float64)[:, None, None]
    out = Standardise()(x)
    flat = x.reshape(2, 3, -1)
    expected = (flat - flat.mean(-1, keepdim=True)) / (flat.std(-1, unbiased=False, keepdim=True) + EPS)
    assert torch.allclose(out.reshape(2, 3, -1), expected)
    blank = Standardise()(torch.full((1, 3, 2, 4, 4), 0.7))  # a flat clip is centred, not blown up
    assert torch.equal(blank, torch.zeros_like(blank))


@pytest.mark.parametrize("name", ["resnet_cifar", "r3d"])
def test_standardising_encoders_ignore_a_per_item_colour_cast(name):
    """With ``standardise`` the features do not change when each channel of an item is scaled and shifted (a
    colour cast); without it they do."""
    torch.manual_seed(0)
    x = torch.rand(2, *SMOKE_INPUT[name])
    cast = x * torch.tensor([0.5, 1.5, 2.0]).view(1, 3, *[1] * (x.dim() - 2)) + torch.tensor([0.3, -0.2, 0.1]).view(
        1, 3, *[1] * (x.dim() - 2))
    for standardise, same in ((True, True), (False, False)):
        encoder = build(name, standardise=standardise).eval()
        with torch.no_grad():
            # (up to the EPS the deviation is divided by with: about 0.3% here)
            assert torch.allclose(encoder(x), encoder(cast), rtol=1e-2, atol=1e-3) is same
