"""Study modules: what is particular to each paper (losses, protocol, table layout)."""
