"""Unit tests of the server's and client's pure cores: no server, no database, fast."""
