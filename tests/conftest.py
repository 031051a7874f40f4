"""Make ``pytest`` and ``python -m pytest`` import the same ``ui2c``: the installed one.

``python -m`` puts the working directory first on ``sys.path``.  From the checkout root
that exposes the bare ``ui2c/`` folder, which holds only the root package (its
sub-packages live in sibling folders mapped by ``setup.py``), so with a wheel installed
``python -m pytest`` would test a package that cannot import ``ui2c.runtime``.
Dropping the checkout root before any test imports ``ui2c`` leaves the installed
package, editable or not, as the only candidate.

Triton runs its kernels in the interpreter where torch sees no CUDA device, compiled
where it does; ``TRITON_INTERPRET`` is read when triton is first imported, so it is
set here, before any test module imports it, for the whole session (an explicit
setting wins).
"""
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]

if "TRITON_INTERPRET" not in os.environ:
    import torch

    os.environ["TRITON_INTERPRET"] = "0" if torch.cuda.is_available() else "1"
