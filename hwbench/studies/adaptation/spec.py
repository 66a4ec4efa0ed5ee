"""The adaptation study's constants, shared by its plan, jobs and report (torch-free)."""

KNN_KS = (2, 4, 6, 8, 10)  # the paper's KNN corrections
QUALITY_KS = (1, 2, 3, 4, 5, 7, 8, 9, 10, 15)  # section 3.2's clustering check
KNN_WEIGHTS = ("uniform", "distance")
WRITER_SPLITS = ("train", "val", "app")  # split names of the `writer` scheme
BASE_MODEL = {"name": "base_cnn"}  # the paper's network (hwbench.models)
# Per dataset, the jobs before the per-writer loop (one benchmark file each).
DATASET_STEPS = ("train", "features", "styles")

# The paper's base CNN (section 4.4.2) and its splits (Table 2): per split of the
# writer scheme, (writers, images, accuracy in percent).
PAPER_BASE_COLUMNS = ("writers", "images", "accuracy")
PAPER_BASE = {
    "nist": {
        "train": (3057, 659541, 88.36),
        "val": (339, 73209, 87.39),
        "app": (200, 81505, 87.35),
    },
    "deepwriting": {
        "train": (242, 298313, 87.65),
        "val": (27, 33484, 83.12),
        "app": (70, 37658, 82.12),
    },
}
