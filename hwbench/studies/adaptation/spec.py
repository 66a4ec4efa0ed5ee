"""The adaptation study's constants, shared by its plan, jobs and report (torch-free)."""

KNN_KS = (2, 4, 6, 8, 10)  # the paper's KNN corrections
QUALITY_KS = (1, 2, 3, 4, 5, 7, 8, 9, 10, 15)  # section 3.2's clustering check
KNN_WEIGHTS = ("uniform", "distance")
WRITER_SPLITS = ("train", "val", "app")  # split names of the `writer` scheme
BASE_MODEL = {"name": "base_cnn"}  # the paper's network (hwbench.models)
# Per dataset, the jobs before the per-writer loop (one benchmark file each).
DATASET_STEPS = ("train", "features", "styles")

# The paper's base CNN (section 4.4.2) and its splits (Table 2), per split of the
# writer scheme: writers, images and accuracy in percent.
PAPER_BASE = {
    "nist": {
        "train": {"writers": 3057, "images": 659541, "accuracy": 88.36},
        "val": {"writers": 339, "images": 73209, "accuracy": 87.39},
        "app": {"writers": 200, "images": 81505, "accuracy": 87.35},
    },
    "deepwriting": {
        "train": {"writers": 242, "images": 298313, "accuracy": 87.65},
        "val": {"writers": 27, "images": 33484, "accuracy": 83.12},
        "app": {"writers": 70, "images": 37658, "accuracy": 82.12},
    },
}
