"""`python -m auditrecv` is the same as the `auditrecv` command."""

from auditrecv.cli import main

raise SystemExit(main())
