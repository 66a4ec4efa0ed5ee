"""The adaptation study's constants, shared by its plan, jobs and report (torch-free)."""

KNN_KS = (2, 4, 6, 8, 10)  # the paper's KNN corrections
QUALITY_KS = (1, 2, 3, 4, 5, 7, 8, 9, 10, 15)  # section 3.2's clustering check
KNN_WEIGHTS = ("uniform", "distance")
WRITER_SPLITS = ("train", "val", "app")  # split names of the `writer` scheme
BASE_MODEL = {"name": "base_cnn"}  # the paper's network (hwbench.models)
# Per dataset, the jobs before the per-writer loop (one benchmark file each).
DATASET_STEPS = ("train", "features", "styles")
