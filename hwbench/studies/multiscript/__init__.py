"""Multi-script digit recognition with multi-task learning (Gondere et al.; Table 4).

``spec`` (torch-free constants), ``plan`` (torch-free: config checks, runs, each
job's inputs and params; the .smk calls it), ``job`` (data, heads, losses, one
training job) and ``report`` (the paper's numbers, Table 4, the figures). This
file imports nothing, so importing ``plan`` stays torch-free.
"""
