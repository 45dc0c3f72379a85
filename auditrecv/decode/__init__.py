"""Pure decoders: bytes in, plain data out; they import nothing else of auditrecv and never raise on input."""
