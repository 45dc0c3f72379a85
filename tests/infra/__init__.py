"""Real test infrastructure (search engines, Kerberos realm, audisp-remote) and the tests proving it is real."""
