"""The writer-adaptation study ("Learn the Way We Write"): plan (torch-free), job (the
base CNN), loop (writing styles and the per-writer KNN/Beta loop), report."""
