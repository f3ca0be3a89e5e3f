"""The adapter registry: one :class:`~memix.datasets.adapter.Adapter` per dataset name (SMIC's per camera)."""

from __future__ import annotations

from memix.config import SourceParams
from memix.datasets import casme2, casme3, mmew, samm, smic
from memix.datasets.adapter import Adapter

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
