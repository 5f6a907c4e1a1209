"""Bad arguments raise clear exceptions naming the argument (a one-rank communicator in this
process: the checks need a communicator, not peers), and errors carry their code."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import eccl


def test_non_contiguous(solo):
    t = torch.arange(12.0).view(3, 4).t()
    with pytest.raises(eccl.InvalidArgument, match="tensor 'tensor' is not contiguous"):
        solo.all_reduce(t)
    with pytest.raises(ValueError, match="array 'input' is not C-contiguous"):
        solo.all_gather(np.zeros(4), np.zeros((4, 2))[:, 0])


def test_wrong_output_size(solo):
    with pytest.raises(eccl.InvalidArgument, match=r"'output' has 3 elements, all_gather needs 4 \(1 ranks x 4\)"):
        solo.all_gather(torch.empty(3), torch.empty(4))
    with pytest.raises(eccl.InvalidArgument, match=r"'input' has 5 elements, reduce_scatter needs 4"):
        solo.reduce_scatter(torch.empty(4), torch.empty(5))


def test_dtype_mismatch(solo):
    with pytest.raises(eccl.InvalidArgument, match="'input' is float32 but 'output' is int64"):
        solo.all_gather(torch.empty(4, dtype=torch.int64), torch.empty(4))
    with pytest.raises(eccl.InvalidArgument, match="'input' is int32 but 'output' is float64"):
        solo.all_to_all_v(np.zeros(2), np.zeros(2, dtype=np.int32))


def test_all_to_all_splits(solo):
    with pytest.raises(eccl.InvalidArgument, match="'input_split_sizes' sums to 3 but 'input' has 4 rows"):
        solo.all_to_all_v(torch.empty(4), torch.empty(4), [4], [3])
    with pytest.raises(eccl.InvalidArgument, match="'output_split_sizes' has 2 entries"):
        solo.all_to_all_v(torch.empty(4), torch.empty(4), [2, 2], [4])


def test_peer_out_of_range_named_by_c(solo):
    with pytest.raises(eccl.InvalidArgument, match="peer 1 is not a rank of the group") as e:
        solo.send(torch.zeros(2), dst=1)
    assert e.value.code == eccl.Result.INVALID_ARGUMENT and e.value.code_name == "ecclInvalidArgument"
    with pytest.raises(eccl.InvalidArgument, match="'src'"):
        solo.recv(torch.zeros(2), src=-1)  # would wrap to 2^32-1 in ctypes: refused in Python
    with pytest.raises(eccl.InvalidArgument, match="'tag'"):
        solo.isend(torch.zeros(2), 0, tag=-3)


def test_device_and_readonly_and_type(solo):
    with pytest.raises(eccl.InvalidArgument, match="tensor 'tensor' is on device 'meta'"):
        solo.all_reduce(torch.empty(4, device="meta"))
    ro = np.zeros(4)
    ro.setflags(write=False)
    with pytest.raises(eccl.InvalidArgument, match="array 'tensor' is read-only"):
        solo.recv(ro, 0)
    with pytest.raises(eccl.InvalidArgument, match="'tensor' must be a torch.Tensor or a numpy.ndarray"):
        solo.all_reduce([1.0, 2.0])
    with pytest.raises(eccl.InvalidArgument, match="complex64"):
        solo.all_reduce(torch.zeros(2, dtype=torch.complex64))
    with pytest.raises(eccl.InvalidArgument, match="'op'"):
        solo.all_reduce(torch.zeros(2), op="avg")


def test_one_rank_collectives_work(solo):
    # The happy path on one rank, so the checks above are not the only thing exercised here.
    x = torch.arange(4.0)
    solo.all_reduce(x)
    assert torch.equal(x, torch.arange(4.0))
    out = torch.empty(4)
    solo.all_gather(out, x)
    assert torch.equal(out, x)
    assert solo.async_error() is None
    assert (solo.rank, solo.size) == (0, 1)


def test_destroyed_communicator(store):
    c = eccl.Communicator.from_store(store, "short-lived", 0, 1)
    c.destroy()
    c.destroy()  # idempotent
    with pytest.raises(eccl.InvalidArgument, match="destroyed"):
        c.all_reduce(torch.zeros(1))


def test_p2pop_validation():
    with pytest.raises(eccl.InvalidArgument, match="'op'"):
        eccl.P2POp("broadcast", torch.zeros(1), 0)
    with pytest.raises(eccl.InvalidArgument, match="'peer'"):
        eccl.P2POp(eccl.isend, torch.zeros(1), -1)
    with pytest.raises(eccl.InvalidArgument, match="exactly one communicator"):
        eccl.batch_isend_irecv([eccl.P2POp("send", torch.zeros(1), 0)])


def test_missing_library_names_where_it_looked(tmp_path):
    env = dict(os.environ, ECCL_LIBRARY_PATH=str(tmp_path / "nowhere"))
    code = "import eccl\ntry:\n    eccl.load_library()\nexcept ImportError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert "libeccl_eplb.so not found" in out.stdout, out.stdout + out.stderr
    assert str(tmp_path / "nowhere") in out.stdout
