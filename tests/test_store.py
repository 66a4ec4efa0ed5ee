"""The processed format: grey N x H x W images, or colour N x H x W x 3."""

import numpy as np
import pandas as pd
import pytest

from hwbench.store import META_COLUMNS, DatasetFormatError, load_processed, save_processed


def meta(n):
    return pd.DataFrame({c: [""] * n for c in META_COLUMNS}).assign(label=range(n))


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 32, 32, 3)])
def test_round_trip_grey_and_colour(tmp_path, shape):
    images = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape).astype(np.uint8)
    save_processed(tmp_path, images, meta(4))
    back = load_processed(tmp_path)
    assert back.images.shape == shape and np.array_equal(back.images, images)
    assert back.subset([1, 3]).images.shape == (2, *shape[1:])


@pytest.mark.parametrize("shape", [(4, 28), (4, 8, 8, 2), (4, 8, 8, 3, 1)])
def test_other_shapes_are_refused(tmp_path, shape):
    with pytest.raises(DatasetFormatError, match="N x H x W"):
        save_processed(tmp_path, np.zeros(shape, np.uint8), meta(4))
    np.save(tmp_path / "images.npy", np.zeros(shape, np.uint8))
    meta(4).to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(DatasetFormatError, match="expected uint8 N x H x W"):
        load_processed(tmp_path)
