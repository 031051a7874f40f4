"""UI2C: real-time neural video compression with unified intra and inter coding.

Sub-packages map to the repository's top-level folders:

* ``ui2c.models``     PyTorch networks (UI2C pair model, DCVC-RT P and I models)
* ``ui2c.entropy``    probability tables, the rANS bitstream format and its CPU coder
* ``ui2c.plugins``    GPU entropy-coding kernels (Triton)
* ``ui2c.runtime``    codec sessions, backends, container format, the C++ runtime (``cpp/``)
* ``ui2c.export``     ONNX export of the network stages
* ``ui2c.engines``    engines per target: TensorRT / TensorRT-RTX (from ONNX), AOTInductor packages
* ``ui2c.benchmarks`` complexity and speed measurement, RD evaluation (``.evaluation``)
* ``ui2c.training``   the trainer for demo weights (CPU or CUDA)

Video I/O and the command line live in this package itself (``video_io``, ``cli``).
"""
__version__ = "0.1.0"
