"""The run files (:mod:`pwflow.store`): ``write_npz`` writes what ``np.load`` reads back."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pwflow.store import write_npz

DTYPES = st.sampled_from([np.float64, np.int64, np.int8, np.bool_])


@settings(deadline=None)
@given(arrays=st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=40)),
    min_size=1, max_size=5), compress=st.booleans())
def test_write_npz_round_trips_and_deflates(tmp_path_factory, arrays, compress):
    path = tmp_path_factory.mktemp("npz") / "run.npz"
    arrays = dict(arrays, record=np.array('{"a": "ü"}'))
    write_npz(path, compress=compress, **arrays)
    with np.load(path, allow_pickle=False) as back:
        assert sorted(back.files) == sorted(arrays)
        for name, value in arrays.items():
            assert back[name].dtype == value.dtype and back[name].shape == value.shape
            np.testing.assert_array_equal(back[name], value)
    with zipfile.ZipFile(path) as zf:
        kinds = {info.compress_type for info in zf.infolist()}
    assert kinds == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}


def test_write_npz_compresses_and_refuses_objects(tmp_path):
    zeros = np.zeros((200, 100))
    small = write_npz(tmp_path / "z.npz", compress=True, W=zeros).stat().st_size
    plain = write_npz(tmp_path / "p.npz", compress=False, W=zeros).stat().st_size
    assert small * 50 < plain
    # an object array would need pickle, which no run file is read with: refused at writing
    for compress in (True, False):
        with pytest.raises(ValueError):
            write_npz(tmp_path / "o.npz", compress=compress,
                      obj=np.array([{"a": 1}], dtype=object))
        assert not (tmp_path / "o.npz").exists()
