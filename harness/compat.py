"""Compatibility of a combination, checked from capabilities before anything is built.

Each mismatch is explained in one sentence, e.g. "encoder r3d consumes video; dataset
synthetic_shapes provides points, image".
"""
from __future__ import annotations

from typing import Mapping

from harness.specs import TASK_TARGETS, ComponentSpec, Kind


class IncompatibleError(ValueError):
    """The chosen components cannot run together; the message lists every reason."""


def _listing(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(items) if items else "nothing"


def mismatches(protocol: ComponentSpec, parts: Mapping[str, ComponentSpec | None]) -> list[str]:
    """Every reason why ``parts`` (role -> spec) cannot run under ``protocol``; empty if they can."""
    caps = protocol.capabilities
    problems = [f"protocol {protocol.name} needs a {role}; none was chosen"
                for role in caps.roles if parts.get(role) is None]
    dataset, encoder, decoder = parts.get("dataset"), parts.get("encoder"), parts.get("decoder")
    if dataset is not None and encoder is not None:
        if encoder.capabilities.consumes not in dataset.capabilities.modalities:
            problems.append(f"encoder {encoder.name} consumes {encoder.capabilities.consumes}; "
                            f"dataset {dataset.name} provides {_listing(dataset.capabilities.modalities)}")
    if encoder is not None and caps.encodings and encoder.capabilities.produces not in caps.encodings:
        problems.append(f"protocol {protocol.name} takes {_listing(caps.encodings)} encodings; "
                        f"encoder {encoder.name} produces {encoder.capabilities.produces}")
    if encoder is not None and decoder is not None:
        if encoder.capabilities.produces not in decoder.capabilities.consumes:
            problems.append(f"decoder {decoder.name} consumes {_listing(decoder.capabilities.consumes)} encodings; "
                            f"encoder {encoder.name} produces {encoder.capabilities.produces}")
    if decoder is not None and caps.tasks and decoder.capabilities.task not in caps.tasks:
        problems.append(f"protocol {protocol.name} takes a decoder for {_listing(caps.tasks)}; "
                        f"decoder {decoder.name} is for {decoder.capabilities.task}")
    if decoder is not None and dataset is not None:
        target = TASK_TARGETS.get(decoder.capabilities.task)
        if target is not None and target not in dataset.capabilities.targets:
            problems.append(f"decoder {decoder.name} trains on {target} targets; "
                            f"dataset {dataset.name} provides {_listing(dataset.capabilities.targets)}")
    for role, spec in parts.items():
        if spec is not None and role in Kind._value2member_map_ and spec.kind != Kind(role):
            problems.append(f"{spec.kind} {spec.name} was given as the {role}")
    return problems


def check(protocol: ComponentSpec, parts: Mapping[str, ComponentSpec | None]) -> None:
    problems = mismatches(protocol, parts)
    if problems:
        raise IncompatibleError("; ".join(problems) + ".")
