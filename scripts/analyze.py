"""Print the analysis of a results directory, or compare two models.

Same as `python -m medbench.reports analyze`; run with --help for the options.
"""

import sys

from medbench.reports.cli import main

if __name__ == "__main__":
    sys.exit(main(command="analyze", prog="scripts/analyze.py"))
