"""Every mismatch is explained in one sentence, before anything is built."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.compat import IncompatibleError, check, mismatches
from harness.specs import ComponentSpec, DatasetCaps, DecoderCaps, EncoderCaps, Kind, ProtocolCaps


@dataclass
class Empty:
    pass


def spec(kind: Kind, name: str, caps) -> ComponentSpec:
    return ComponentSpec(kind=kind, name=name, factory="builtins:dict", config=Empty, capabilities=caps)


RECON = spec(Kind.PROTOCOL, "reconstruction", ProtocolCaps(roles=("dataset", "encoder", "decoder"),
                                                           tasks=("occupancy", "udf")))
SHAPES = spec(Kind.DATASET, "synthetic_shapes", DatasetCaps(modalities=("points", "image"),
                                                            targets=("occupancy", "part", "label")))
POINTNET = spec(Kind.ENCODER, "pointnet", EncoderCaps(consumes="points", produces="global"))
R3D = spec(Kind.ENCODER, "r3d", EncoderCaps(consumes="video", produces="global"))
OCC = spec(Kind.DECODER, "occupancy", DecoderCaps(consumes=("global",), task="occupancy"))
UDF = spec(Kind.DECODER, "udf", DecoderCaps(consumes=("points", "grid"), task="udf"))
CLS = spec(Kind.DECODER, "classifier", DecoderCaps(consumes=("global",), task="classification"))


def test_compatible_combination_has_no_mismatch():
    assert mismatches(RECON, {"dataset": SHAPES, "encoder": POINTNET, "decoder": OCC}) == []


def test_modality_mismatch_sentence():
    assert mismatches(RECON, {"dataset": SHAPES, "encoder": R3D, "decoder": OCC}) == [
        "encoder r3d consumes video; dataset synthetic_shapes provides points, image"]


def test_encoding_task_and_target_mismatches_each_get_a_sentence():
    problems = mismatches(RECON, {"dataset": SHAPES, "encoder": POINTNET, "decoder": UDF})
    assert problems == ["decoder udf consumes points, grid encodings; encoder pointnet produces global",
                        "decoder udf trains on udf targets; dataset synthetic_shapes provides occupancy, part, label"]
    assert mismatches(RECON, {"dataset": SHAPES, "encoder": POINTNET, "decoder": CLS}) == [
        "protocol reconstruction takes a decoder for occupancy, udf; decoder classifier is for classification"]


def test_missing_role_and_check_raises_with_every_reason():
    with pytest.raises(IncompatibleError, match="protocol reconstruction needs a decoder; none was chosen"):
        check(RECON, {"dataset": SHAPES, "encoder": POINTNET, "decoder": None})


def test_protocol_restricting_encodings():
    multi = spec(Kind.PROTOCOL, "multitask", ProtocolCaps(roles=("dataset", "encoder"), encodings=("global",)))
    local = spec(Kind.ENCODER, "pointnet_per_point", EncoderCaps(consumes="points", produces="points"))
    assert mismatches(multi, {"dataset": SHAPES, "encoder": local}) == [
        "protocol multitask takes global encodings; encoder pointnet_per_point produces points"]
    assert mismatches(multi, {"dataset": SHAPES, "encoder": POINTNET}) == []
