"""Traffic split between published versions of a workflow (`ACTIVE` as a weighted choice).

A start with version `ACTIVE` picks a version by a stable hash of its `workflowId`: the same
id always picks the same version under the same split, whatever process picks it. Without a
split the active version has weight 100.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec

from drift_schema.api import ProblemError
from drift_schema.base import Shape
from drift_schema.workflow import is_published_version

BUCKETS = 10_000
"""Resolution of the hash: weights are percents, so every version gets exactly its share of buckets."""


class VersionWeight(Shape, frozen=True):
    """One version's share of `ACTIVE` starts, in percent."""

    version: str
    weight: Annotated[int, msgspec.Meta(ge=0, le=100)]


class TrafficSplit(Shape, frozen=True):
    """Body and answer of `PUT /workflowDefinition/{id}/traffic`."""

    split: list[VersionWeight]


def split_faults(split: TrafficSplit) -> list[ProblemError]:
    """What makes a split unusable on its own: unknown numbers, repeated versions, weights not summing to 100."""
    faults: list[ProblemError] = []
    if not split.split:
        faults.append(ProblemError(pointer="/split", message="a split needs at least one version"))
    seen: set[int] = set()
    for index, entry in enumerate(split.split):
        if not is_published_version(entry.version):
            faults.append(
                ProblemError(pointer=f"/split/{index}/version", message=f"'{entry.version}' is not a version number")
            )
            continue
        number = int(entry.version)
        if number in seen:
            faults.append(ProblemError(pointer=f"/split/{index}/version", message=f"version {number} appears twice"))
        seen.add(number)
    total = sum(entry.weight for entry in split.split)
    if split.split and total != 100:
        faults.append(ProblemError(pointer="/split", message=f"weights sum to {total}, not 100"))
    return faults


def heaviest(weights: list[tuple[int, int]]) -> int:
    """The version with the largest weight (the earliest listed among equals): what `ACTIVE` reads answer."""
    return max(weights, key=lambda entry: entry[1])[0]


def pick(weights: list[tuple[int, int]], workflow_id: str) -> int:
    """The version a start of `workflow_id` runs under the split `(version, weight)`.

    Versions are laid out in number order over `BUCKETS` buckets and the id's hash picks one, so
    the choice does not depend on the order a caller listed them in. Versions of weight 0 are
    never picked.
    """
    digest = hashlib.sha256(workflow_id.encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % BUCKETS
    edge = 0
    live = sorted((version, weight) for version, weight in weights if weight > 0)
    for version, weight in live:
        edge += weight * BUCKETS // 100
        if bucket < edge:
            return version
    return live[-1][0]
