import sys

from hybi.cli import main

sys.exit(main())
