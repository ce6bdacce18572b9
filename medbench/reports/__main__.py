"""`python -m medbench.reports {csv,plots,analyze,report,agreement} RESULTS_DIR ...`"""

import sys

from medbench.reports.cli import main

sys.exit(main())
