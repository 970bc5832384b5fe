"""Entry point of the Flex Template image (``FLEX_TEMPLATE_PYTHON_PY_FILE``).

The launcher runs ``python main.py --input=... --output=... [Beam options]``; this hands
them to the installed mediagen command line, adding ``--no-wait``: a Flex Template
launch must return once the job is submitted rather than wait for it to finish.
"""

from __future__ import annotations

import sys

from pipelines.generate import main

if __name__ == "__main__":
    sys.exit(main([*sys.argv[1:], "--no-wait"]))
