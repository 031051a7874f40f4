"""Install the ``ui2c`` package.

The repository's top-level folders are the package's sub-packages (``export/`` is
``ui2c.export`` and so on), so the folder layout shows the architecture while every
import stays namespaced under ``ui2c``.  Only that folder map is written by hand:
every package below a mapped folder is discovered, so a new sub-package (such as
``runtime/backends/``) cannot be left out of a wheel.  Two C++ extensions are built
from ``entropy/csrc`` with pybind11 (declared in ``pyproject.toml``): ``_rans``, the CPU
rANS coder, and ``_container``, the container shared with the C++ runtime; nothing is
downloaded at build time beyond PyPI build requirements.
"""
from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent

FOLDERS = {
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

# Files the installed package reads (assets), the C++ headers and sources of the coder and
# container (the format's documentation, rans_format.hpp, travels with the code that reads
# it) and the design documents that sit beside the code; benchmark results stay in the repository.
PACKAGE_DATA = {
    "ui2c": ["assets/*"],
    "ui2c.entropy": ["csrc/*.hpp", "csrc/*.cpp"],
    "ui2c.models": ["*.md"],
    "ui2c.runtime": ["*.md"],
    "ui2c.export": ["*.md"],
}


def package_dirs(folders: dict[str, str] = FOLDERS, root: Path = ROOT) -> dict[str, str]:
    """Every package under the mapped folders → its folder (relative, as setuptools wants)."""
    dirs = {}
    for name, folder in folders.items():
        dirs[name] = folder
        for sub in find_packages(where=str(root / folder)):
            dirs[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
    return dirs


if __name__ == "__main__":
    from pybind11.setup_helpers import Pybind11Extension, build_ext

    rans_extension = Pybind11Extension(
        "ui2c.entropy._rans",
        sources=["entropy/csrc/rans_binding.cpp", "entropy/csrc/rans.cpp"],
        include_dirs=["entropy/csrc"],
        cxx_std=17,
        extra_compile_args=["-O3", "-pthread"],
        extra_link_args=["-pthread"],
    )
    # The container of runtime/CONTAINER.md, compiled from libui2c's C++ (runtime/cpp), so
    # Python and the C++ runtime cannot disagree on the format.
    container_extension = Pybind11Extension(
        "ui2c.entropy._container",
        sources=["entropy/csrc/container_binding.cpp", "runtime/cpp/src/container.cpp"],
        include_dirs=["runtime/cpp/src", "runtime/cpp/include"],
        cxx_std=17,
        extra_compile_args=["-O2"],
    )
    dirs = package_dirs()
    setup(
        name="ui2c",
        version="0.1.0",
        description="UI2C real-time neural video codec: models, ONNX export, TensorRT engines, runtime, benchmarks",
        python_requires=">=3.10",
        packages=list(dirs),
        package_dir=dirs,
        package_data=PACKAGE_DATA,
        include_package_data=False,
        ext_modules=[rans_extension, container_extension],
        cmdclass={"build_ext": build_ext},
        install_requires=[
            "torch==2.13.0",
            "numpy>=1.26",
            "onnx==1.23.2",
            "onnxscript==0.7.2",
            "onnxruntime==1.31.1",
            "av>=14,<20",
            "tqdm>=4.66",
            "pillow>=10",  # ui2c train's data files (YCbCr JPEGs)
        ],
        extras_require={
            "eval": ["matplotlib>=3.8"],  # ui2c eval's plots only
            "dev": [
                "matplotlib>=3.8",
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
