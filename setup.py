"""Install the ``ui2c`` package.

The repository's top-level folders are the package's sub-packages (``export/`` is
``ui2c.export`` and so on), so the folder layout shows the architecture while every
import stays namespaced under ``ui2c``.  The rANS CPU coder is a C++ extension built
from ``entropy/csrc`` with pybind11 (declared in ``pyproject.toml``); nothing is
downloaded at build time beyond PyPI build requirements.
"""
from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

SUBPACKAGES = {
    "ui2c": "ui2c",
    "ui2c.models": "models",
    "ui2c.entropy": "entropy",
    "ui2c.plugins": "plugins",
    "ui2c.runtime": "runtime",
    "ui2c.export": "export",
    "ui2c.engines": "engines",
    "ui2c.benchmarks": "benchmarks",
    "ui2c.training": "training",
}

rans_extension = Pybind11Extension(
    "ui2c.entropy._rans",
    sources=["entropy/csrc/rans_binding.cpp", "entropy/csrc/rans.cpp"],
    include_dirs=["entropy/csrc"],
    cxx_std=17,
    extra_compile_args=["-O3", "-pthread"],
    extra_link_args=["-pthread"],
)

setup(
    name="ui2c",
    version="0.1.0",
    description="UI2C real-time neural video codec: models, ONNX export, TensorRT engines, runtime, benchmarks",
    python_requires=">=3.10",
    packages=list(SUBPACKAGES),
    package_dir=SUBPACKAGES,
    package_data={
        "ui2c": ["assets/*"],
        "ui2c.entropy": ["*.md", "csrc/*.hpp", "csrc/*.cpp"],
        "ui2c.runtime": ["*.md"],
        "ui2c.plugins": ["*.md"],
    },
    ext_modules=[rans_extension],
    cmdclass={"build_ext": build_ext},
    install_requires=[
        "torch==2.13.0",
        "numpy>=1.26",
        "onnx==1.23.2",
        "onnxscript==0.7.2",
        "onnxruntime==1.31.1",
        "av>=14,<20",
        "tqdm>=4.66",
        "matplotlib>=3.8",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "scipy>=1.11",
            "polygraphy==0.53.6",
            "triton==3.9.0",
            "constriction==0.5.0",
            "tensorrt-rtx-cu12-libs==1.7.1.116",
            "tensorrt-rtx-cu12-bindings==1.7.1.116",
        ],
        "gpu": ["cuda-bindings>=12.6,<13", "tensorrt-cu12>=10.8"],
    },
    entry_points={"console_scripts": ["ui2c=ui2c.cli:main"]},
)
