"""The lifelong study: writers as tasks, EWC, ACC/BWT/FWT (papers/lifelong.md).

``plan`` (torch-free: runs, job inputs and params), ``job`` (data, the task
sequence, multi-task and curriculum jobs), ``report`` (Table 1 and the figures),
``spec`` (names shared by all three). This file imports nothing, so importing
``plan`` stays torch-free.
"""
