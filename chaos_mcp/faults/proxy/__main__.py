"""`python -m chaos_mcp.faults.proxy`: the proxy daemon (same as `chaos-mcp proxy`)."""

import sys

from chaos_mcp.faults.proxy.daemon import main

sys.exit(main())
