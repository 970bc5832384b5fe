"""Entry point of the Flex Template image (``FLEX_TEMPLATE_PYTHON_PY_FILE``).

The launcher runs ``python main.py --input=... --output=... [Beam options]``; this hands
them to the installed mediagen command line, adding ``--no-wait``: a Flex Template
launch must return once the job is submitted rather than wait for it to finish. The
submitted job's id and console URL are printed; Beam's "Created job with id" line is
logged at INFO (Airflow's Beam operator reads it).

``--sdk_container_image`` is required: this image sets no setup file, so workers of Beam's
default image would start without mediagen.
"""

from __future__ import annotations

import sys

from pipelines.generate import EXIT_USAGE, main


def has_worker_image(argv: list[str]) -> bool:
    """``--sdk_container_image`` (or Beam's older ``--worker_harness_container_image``) is given."""
    names = ("--sdk_container_image", "--worker_harness_container_image")
    return any(arg.split("=", 1)[0] in names for arg in argv)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if not has_worker_image(arguments) and "--help" not in arguments:
        print("error: --sdk_container_image is required: the image built from deploy/Dockerfile "
              "(workers of Beam's default image would not have mediagen)", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.exit(main([*arguments, "--no-wait"]))
