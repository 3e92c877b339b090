import sys

from clinrlhf.cli import main

sys.exit(main())
