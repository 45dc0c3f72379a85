"""Linux audit (auditd / audisp-remote) decoder: line parser, event assembler, interpretation."""
