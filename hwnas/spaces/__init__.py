"""Search spaces: describe points and build them through hwnas.graph."""
