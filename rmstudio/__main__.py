import sys

from rmstudio.cli import main

sys.exit(main())
