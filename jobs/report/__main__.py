"""``python -m jobs.report``: write the HTML report (see ``jobs.report.main``)."""

import sys

from jobs.report import main

sys.exit(main())
