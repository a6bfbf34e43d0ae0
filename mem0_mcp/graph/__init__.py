"""The entity graph: derived from memories, kept in an embedded graph store."""
