"""The Tor transport: tor launched or attached through stem, SOCKS isolation, a private Tor network."""
