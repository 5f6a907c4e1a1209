"""dtype mapping and the no-copy buffer checks: pure Python, no C library needed."""
import numpy as np
import pytest
import torch

import eccl
from eccl import buffers, dtypes
from eccl.dtypes import DataType


@pytest.mark.parametrize("name,code", [("float32", 5), ("float16", 3), ("bfloat16", 4), ("float64", 6), ("int8", 0),
                                       ("uint8", 7), ("int16", 8), ("int32", 1), ("int64", 2), ("bool", 9)])
def test_torch_round_trip(name, code):
    t = getattr(torch, name)
    assert dtypes.to_eccl(t) == code
    assert dtypes.to_torch(code) == t
    assert dtypes.name(t) == name


@pytest.mark.parametrize("name", ["float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"])
def test_numpy_round_trip(name):
    code = dtypes.to_eccl(np.dtype(name))
    assert dtypes.to_numpy(code) == np.dtype(name)
    assert dtypes.to_eccl(name) == code


def test_bfloat16_and_fp8():
    with pytest.raises(eccl.InvalidArgument, match="numpy has no dtype for bfloat16"):
        dtypes.to_numpy(DataType.BFLOAT16)
    assert dtypes.to_eccl("bfloat16") == DataType.BFLOAT16
    if hasattr(torch, "float8_e4m3fn"):
        assert dtypes.to_eccl(torch.float8_e4m3fn) == DataType.FLOAT8_E4M3
        assert dtypes.to_eccl(torch.float8_e5m2) == DataType.FLOAT8_E5M2
    else:
        with pytest.raises(eccl.InvalidArgument):
            dtypes.to_torch(DataType.FLOAT8_E4M3)
    assert dtypes.from_dtype(torch.complex64) is None
    assert dtypes.from_dtype(np.dtype(">f4")) is None  # byte-swapped: not native


def test_buffer_is_the_memory_itself():
    t = torch.arange(12, dtype=torch.int32).view(3, 4)
    b = buffers.as_buffer(t, "x")
    assert (b.ptr, b.count, b.dtype, b.nbytes) == (t.data_ptr(), 12, DataType.INT32, 48)
    a = np.zeros((2, 3), dtype=np.float64)
    b = buffers.as_buffer(a, "x", writable=True)
    assert (b.ptr, b.count, b.dtype) == (a.ctypes.data, 6, DataType.FLOAT64)
    v = t[1]  # a contiguous view: its own address
    assert buffers.as_buffer(v, "x").ptr == t.data_ptr() + 16
    assert buffers.as_buffer(torch.empty(0), "x").count == 0


def test_buffer_errors_name_the_argument():
    with pytest.raises(ValueError, match="tensor 'output' is not contiguous"):
        buffers.as_buffer(torch.zeros(4, 4).t(), "output")
    with pytest.raises(ValueError, match="tensor 'output' is on device 'meta'"):
        buffers.as_buffer(torch.zeros(4, device="meta"), "output")
    ro = np.zeros(3)
    ro.setflags(write=False)
    assert buffers.as_buffer(ro, "input").count == 3  # fine to read
    with pytest.raises(ValueError, match="array 'output' is read-only"):
        buffers.as_buffer(ro, "output", writable=True)
    with pytest.raises(ValueError, match="'output' must be a torch.Tensor or a numpy.ndarray, not list"):
        buffers.as_buffer([1, 2], "output")
    with pytest.raises(eccl.InvalidArgument, match="'input' is float32 but 'output' is int64"):
        buffers.same_dtype(buffers.as_buffer(torch.zeros(1), "input"), "input",
                           buffers.as_buffer(torch.zeros(1, dtype=torch.int64), "output"), "output")


def test_errors_map_codes_and_pickle():
    import pickle

    e = eccl.errors.make_error(3, "rank 2 (127.0.0.1:1) left the group")
    assert isinstance(e, eccl.ConnectionClosed) and isinstance(e, eccl.EcclError) and isinstance(e, RuntimeError)
    assert e.code == 3 and e.code_name == "ecclConnectionClosed"
    assert isinstance(eccl.errors.make_error(1, "x"), ValueError)
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is eccl.ConnectionClosed and again.code == 3 and str(again) == str(e)
    assert str(eccl.errors.make_error(6, "")) == "ecclAborted"


def test_loads_json():
    j = eccl.loads_json(np.array([[1, 2, 3], [4, 5, 6]]))
    assert j == {"num_experts": 3, "layers": [{"layer_id": 0, "load": [1, 2, 3]}, {"layer_id": 1, "load": [4, 5, 6]}]}
    j = eccl.loads_json(torch.ones(1, 2, 3, dtype=torch.bfloat16))
    assert j["layers"][0]["episodes"] == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
