"""Where this process stands in a ``torch.distributed`` job; one process outside of one.

The gathers that training losses use (``all_gather``, ...) land with training.
"""

from __future__ import annotations

import sys

from sentrs._unavailable import unavailable_getattr
from sentrs.util.environment import is_dist_initialized

__all__ = ["get_rank", "get_world_size"]

__getattr__ = unavailable_getattr(
    __name__,
    {
        "all_gather": "training",
        "all_gather_padded": "training of multi-vector models",
        "all_gather_with_grad": "training",
        "distributed_evaluation": "evaluators",
    },
)


def get_rank() -> int:
    """This process's rank in the process group; 0 without one."""
    return int(sys.modules["torch"].distributed.get_rank()) if is_dist_initialized() else 0


def get_world_size() -> int:
    """The number of processes in the process group; 1 without one."""
    return int(sys.modules["torch"].distributed.get_world_size()) if is_dist_initialized() else 1
