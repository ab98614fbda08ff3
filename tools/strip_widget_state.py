"""Old name of ``tools/tidy_outputs.py``, kept while branches that call it are merged."""

import sys
from pathlib import Path

from tidy_outputs import tidy_file

if __name__ == "__main__":
    for name in sys.argv[1:]:
        tidy_file(Path(name))
