"""The adapter registry (one :class:`~memix.datasets.adapter.Adapter` per dataset name, SMIC's per camera) and
:class:`Source`, one dataset being ingested."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from memix.config import SourceParams
from memix.datasets import casme2, casme3, mmew, samm, smic
from memix.datasets.adapter import Adapter
from memix.datasets.classmaps import ClassMap

ADAPTERS: dict[str, Adapter] = {
    a.name: a for a in (casme2.ADAPTER, samm.ADAPTER, smic.adapter("hs"), casme3.ADAPTER, mmew.ADAPTER)
}


def adapter_for(source: SourceParams) -> Adapter:
    """The adapter that reads ``source`` (SMIC's bound to its camera)."""
    if source.name == "smic":
        return smic.adapter(source.camera)
    if source.name not in ADAPTERS:
        raise ValueError(f"dataset.name: no adapter for {source.name!r} (have {sorted(ADAPTERS)})")
    return ADAPTERS[source.name]


@dataclass(frozen=True)
class Source:
    """One dataset being ingested: its adapter and class map, its folder, and how its subject ids read."""

    params: SourceParams
    adapter: Adapter
    cmap: ClassMap
    root: Path  # the source's folder on disk
    prefix: PurePosixPath  # that folder relative to dataset.root ("." for a single dataset)
    namespace: bool  # composite: subject ids are "<dataset>/<subject>"
    # a published sample list this source follows: (canonical subject, Filename) -> class name; None = class rule
    protocol: dict[tuple[str, str], str] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def source_key(self) -> str | None:
        """The ``source:`` a params entry needs for this dataset (None for a single dataset)."""
        return self.name if self.namespace else None

    def subject_id(self, canonical: str) -> str:
        return f"{self.adapter.name}/{canonical}" if self.namespace else canonical

    def canonical(self, value: Any) -> str | None:
        try:
            return self.adapter.canonical_subject(value)
        except ValueError:
            return None
