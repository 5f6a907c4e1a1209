"""An elastic group grows 2 -> 3 (a new process joins epoch 1) and shrinks 3 -> 2 (that rank
leaves), serving collectives throughout."""
import pytest
import torch

import eccl
from _multiproc import run_ranks

NAME = "elastic"


def _sum_of_ranks(comm):
    x = torch.tensor([float(comm.rank + 1)])
    comm.all_reduce(x)
    return x.item()


def _rank_main(rank, size, address, extra):
    store = eccl.TcpStore.connect(address)
    if rank < 2:
        g = eccl.ElasticGroup.join(store, NAME, rank, 2)
        assert g.epoch == 0 and g.comm.size == 2
        assert _sum_of_ranks(g.comm) == 3
        g.prepare(3, [0, 1])
        assert g.renumbering == [0, 1] and g.next_rank == rank
        assert _sum_of_ranks(g.comm) == 3  # the old epoch keeps serving while the next builds
        standby = g.standby_comm()
        assert (standby.rank, standby.size) == (rank, 3)
        state = torch.arange(4.0) if rank == 0 else torch.zeros(4)
        standby.broadcast(state, src=0)  # hand state to the joiner before the switch
        old = g.comm
        assert g.switch_over() is True
        with pytest.raises(eccl.InvalidArgument, match="stale"):
            old.all_reduce(torch.zeros(1))  # borrowed handles die at the switch
    else:
        g = eccl.ElasticGroup.join(store, NAME, 2, 3, epoch=1)
        state = torch.zeros(4)
        g.comm.broadcast(state, src=0)
        assert torch.equal(state, torch.arange(4.0))
    comm = g.comm
    assert g.epoch == 1 and (comm.rank, comm.size) == (rank, 3)
    assert _sum_of_ranks(comm) == 6

    g.prepare(2, [0, 1, -1])
    assert g.next_rank == (-1 if rank == 2 else rank)
    member = g.switch_over()
    if rank == 2:
        assert member is False
        g.destroy()
        store.close()
        return "left"
    assert member is True
    comm = g.comm
    assert g.epoch == 2 and (comm.rank, comm.size) == (rank, 2)
    assert _sum_of_ranks(comm) == 3
    comm.destroy()  # borrowed: only detaches the wrapper
    assert _sum_of_ranks(g.comm) == 3
    g.destroy()
    store.close()
    return "stayed"


def test_grow_then_shrink():
    assert run_ranks(_rank_main, 3) == ["stayed", "stayed", "left"]
