"""On-disk formats and safe writes: atomic outputs, tensor shard folders, the flow set, project paths."""
