"""Write the analysis tables of a results directory as CSV files.

Same as `python -m medbench.reports csv`; run with --help for the options.
"""

import sys

from medbench.reports.cli import main

if __name__ == "__main__":
    sys.exit(main(command="csv", prog="scripts/generate_csvs.py"))
